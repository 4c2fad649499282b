"""The opportunity board: stages per organization (defaults, settings), columns with
totals per currency, and moving a deal between columns under the pipeline's rules."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import DealStage, Opportunity, StageTransition
from tests.factories import OpportunityFactory
from tests.pipeline.support import pipeline_only, rep

__all__ = ["pipeline_only"]

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, org, **kwargs) -> str:
    return reverse(f"pipeline:{name}", kwargs={"org_slug": org.slug, **kwargs})


def stages_of(org) -> dict[str, DealStage]:
    with tenant_scope(org):
        return {s.name: s for s in services.deal_stages_install(organization_id=org.pk)}


def deal(org, owner, status="open", amount=1000, currency="USD", **kwargs):
    lead_stage = {"open": "opportunity", "won": "won", "lost": "lost"}[status]
    closed = {} if status == "open" else {"closed_at": timezone.now()}
    with tenant_scope(org):
        return OpportunityFactory(
            lead__organization=org, lead__owner=owner, lead__stage=lead_stage, owner=owner,
            status=status, amount=amount, currency=currency, **closed, **kwargs,
        )  # fmt: skip


def columns(html: str) -> dict[str, dict]:
    """Each column of the board page by stage name: count, total and weighted text, cards."""
    out = {}
    for part in html.split('data-testid="board-column"')[1:]:
        name = re.search(r'id="board-title-\d+">([^<]+)<', part).group(1)
        total = re.search(
            r'data-testid="board-total">(.*?)</div>\s*(?:<div class="small|</div>)', part, re.S
        )
        weighted = re.search(r'data-testid="board-weighted">(.*?)</div>', part, re.S)
        out[name] = {
            "count": int(re.search(r'data-testid="board-count"[^>]*>(\d+)<', part).group(1)),
            "total": " ".join(total.group(1).split()) if total else "",
            "weighted": " ".join(weighted.group(1).split()) if weighted else "",
            "cards": [int(pk) for pk in re.findall(r'data-deal="(\d+)"', part)],
        }  # fmt: skip
    return out


def state(org, opportunity) -> tuple:
    with tenant_scope(org):
        fresh = Opportunity.objects.select_related("stage").get(pk=opportunity.pk)
        lead = Lead.objects.get(pk=fresh.lead_id)
        return fresh.status, fresh.stage.name if fresh.stage else None, lead.stage


@pytest.fixture
def rep_client(sales_rep, client_for):
    return client_for(sales_rep)


# --- Stages per organization ------------------------------------------------------------


def test_a_new_organization_gets_the_default_stages(db, make_member, other_org):
    from accounts.services import organization_create
    from tests.factories import UserFactory

    org = organization_create(name="Initech", owner=UserFactory())
    with tenant_scope(org):
        stages = list(DealStage.objects.values_list("name", "probability", "kind"))
    assert stages == [
        ("Qualification", 10, "open"),
        ("Proposal", 40, "open"),
        ("Negotiation", 70, "open"),
        ("Won", 100, "won"),
        ("Lost", 0, "lost"),
    ]
    with scopes_disabled():
        assert not DealStage.objects.filter(organization=other_org).exists()


def test_the_migration_gives_existing_organizations_stages_and_their_deals_one(
    org, other_org, sales_rep
):
    migration = __import__(
        "pipeline.migrations.0007_deal_stage_defaults", fromlist=["install_defaults"]
    )
    won, lost = deal(org, sales_rep, "won"), deal(org, sales_rep, "lost")
    open_ = deal(org, sales_rep)
    with scopes_disabled():
        migration.install_defaults(django_apps, None)
        migration.install_defaults(django_apps, None)  # runs once per organization
        assert DealStage.objects.filter(organization=org).count() == 5
        assert DealStage.objects.filter(organization=other_org).count() == 5
    assert state(org, won)[1] == "Won" and state(org, lost)[1] == "Lost"
    assert state(org, open_)[1] == "Qualification"


# --- The board ---------------------------------------------------------------------------


def test_columns_count_and_total_per_currency_reps_see_their_own(
    rep_client, admin_client, org, other_org, sales_rep
):
    stages = stages_of(org)
    with tenant_scope(org):
        other = rep(org)
    deal(org, sales_rep, amount=1000, stage=stages["Proposal"], probability=40)
    deal(org, sales_rep, amount=500, currency="EUR", stage=stages["Proposal"], probability=40)
    deal(org, sales_rep, amount=2000, stage=stages["Negotiation"], probability=70)
    deal(org, sales_rep, "won", amount=2500, probability=20)  # no stage: the first won column
    deal(org, other, "lost", amount=9999, stage=stages["Lost"], probability=0)
    with tenant_scope(other_org):
        deal(other_org, rep(other_org), amount=77777)

    board = columns(rep_client.get(url("board", org)).content.decode())
    assert list(board) == ["Qualification", "Proposal", "Negotiation", "Won", "Lost"]
    assert [board[name]["count"] for name in board] == [0, 2, 1, 1, 0]
    # Never EUR added to USD: one line per currency, with its weighted total.
    assert board["Proposal"]["total"].count("USD") == 1
    assert "1,000" in board["Proposal"]["total"] and "500" in board["Proposal"]["total"]
    assert board["Proposal"]["weighted"] == "weighted 200 EUR · 400 USD"
    assert board["Negotiation"]["weighted"] == "weighted 1,400 USD"
    assert "2,500" in board["Won"]["total"]
    assert board["Won"]["weighted"] == "weighted 2,500 USD"  # won weighs 100 %
    html = admin_client.get(url("board", org)).content.decode()
    assert columns(html)["Lost"]["count"] == 1 and "9,999" in html and "77,777" not in html


def test_board_query_count_is_pinned_at_two_sizes(
    admin_client, org, other_org, admin, django_assert_num_queries
):
    stages = stages_of(org)
    names = list(stages)

    def load(n):
        for i in range(n):
            stage = stages[names[i % 5]]
            status = stage.kind
            deal(org, admin, status, stage=stage)
        with django_assert_num_queries(BOARD_QUERIES):
            html = admin_client.get(url("board", org)).content.decode()
        return html.count('data-testid="deal-card"')

    assert load(5) == 5
    assert load(20) == 25


BOARD_QUERIES = 6  # middleware (3) + the stages + the sums + the cards (one window query)


# --- Moving a deal ----------------------------------------------------------------------


def move(client, org, opportunity, stage, reason="", htmx=True):
    data = {"stage": stage.pk, "reason": reason}
    return client.post(
        url("board_move", org, opportunity_id=opportunity.pk), data, **(HX if htmx else {})
    )


def test_move_between_open_stages_takes_the_stage_probability(
    rep_client, org, other_org, sales_rep
):
    stages = stages_of(org)
    opportunity = deal(org, sales_rep, stage=stages["Qualification"], probability=10)
    response = move(rep_client, org, opportunity, stages["Negotiation"])
    assert response.status_code == 200
    assert "moved to Negotiation" in response.content.decode()
    assert b"<html" not in response.content  # the board's columns only, for the script
    assert columns(response.content.decode())["Negotiation"]["cards"] == [opportunity.pk]
    assert state(org, opportunity) == ("open", "Negotiation", "opportunity")
    with tenant_scope(org):
        assert Opportunity.objects.get(pk=opportunity.pk).probability == 70
    page = rep_client.get(url("opportunity", org, opportunity_id=opportunity.pk)).content.decode()
    assert 'data-testid="deal-stage">Negotiation<' in page


def test_move_to_won_closes_the_deal_and_moves_the_lead(rep_client, org, other_org, sales_rep):
    stages = stages_of(org)
    opportunity = deal(org, sales_rep, stage=stages["Proposal"])
    assert move(rep_client, org, opportunity, stages["Won"]).status_code == 200
    assert state(org, opportunity) == ("won", "Won", "won")
    with tenant_scope(org):
        assert StageTransition.objects.filter(lead_id=opportunity.lead_id, to_stage="won").exists()


def test_move_to_lost_needs_a_reason_and_a_refused_move_snaps_back(
    rep_client, org, other_org, sales_rep
):
    stages = stages_of(org)
    opportunity = deal(org, sales_rep, stage=stages["Proposal"])
    response = move(rep_client, org, opportunity, stages["Lost"])
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="board-error"' in html and "reason" in html.lower()
    assert columns(html)["Proposal"]["cards"] == [opportunity.pk]  # back where it was
    assert state(org, opportunity) == ("open", "Proposal", "opportunity")

    assert (
        move(rep_client, org, opportunity, stages["Lost"], "Chose a competitor").status_code == 200
    )
    assert state(org, opportunity) == ("lost", "Lost", "lost")
    with tenant_scope(org):
        assert Opportunity.objects.get(pk=opportunity.pk).close_reason == "Chose a competitor"


def test_a_won_deal_cannot_be_dragged_back_a_lost_one_reopens_with_a_reason(
    rep_client, org, other_org, sales_rep
):
    stages = stages_of(org)
    won = deal(org, sales_rep, "won", stage=stages["Won"])
    response = move(rep_client, org, won, stages["Proposal"])
    assert response.status_code == 400 and "cannot be reopened" in response.content.decode()
    assert state(org, won) == ("won", "Won", "won")
    assert move(rep_client, org, won, stages["Lost"], "oops").status_code == 400
    assert state(org, won) == ("won", "Won", "won")

    lost = deal(org, sales_rep, "lost", stage=stages["Lost"], close_reason="Budget")
    assert move(rep_client, org, lost, stages["Proposal"]).status_code == 400
    assert move(rep_client, org, lost, stages["Proposal"], "Budget came back").status_code == 200
    assert state(org, lost) == ("open", "Proposal", "opportunity")


def test_moves_of_deals_the_member_may_not_touch_are_404s(
    rep_client, admin_client, client_for, org, other_org, sales_rep, marketer
):
    stages = stages_of(org)
    with tenant_scope(org):
        other_rep = rep(org)
    theirs = deal(org, other_rep, stage=stages["Proposal"])
    # A rep moves only their own deals: another rep's is a 404, and stays put.
    assert move(rep_client, org, theirs, stages["Won"]).status_code == 404
    assert state(org, theirs) == ("open", "Proposal", "opportunity")
    # An admin may move anyone's.
    assert move(admin_client, org, theirs, stages["Negotiation"]).status_code == 200
    assert state(org, theirs)[1] == "Negotiation"
    # A marketer does not work deals.
    assert move(client_for(marketer), org, theirs, stages["Won"]).status_code in (403, 404)
    # Another organization's deal, or its stage, is a 404.
    foreign_stages = stages_of(other_org)
    with tenant_scope(other_org):
        foreign = deal(other_org, rep(other_org))
    assert move(admin_client, org, foreign, stages["Won"]).status_code == 404
    mine = deal(org, sales_rep, stage=stages["Proposal"])
    assert move(rep_client, org, mine, foreign_stages["Won"]).status_code == 404
    assert state(org, mine) == ("open", "Proposal", "opportunity")
    assert state(other_org, foreign)[0] == "open"


def test_move_without_javascript_redirects_with_a_message(rep_client, org, other_org, sales_rep):
    stages = stages_of(org)
    opportunity = deal(org, sales_rep, stage=stages["Proposal"])
    response = move(rep_client, org, opportunity, stages["Lost"], htmx=False)
    assert response.status_code == 302 and response["Location"] == url("board", org)
    page = rep_client.get(url("board", org)).content.decode()
    assert "Give a reason" in page
    bad = rep_client.post(url("board_move", org, opportunity_id=opportunity.pk), {"stage": "x"})
    assert bad.status_code == 302 and state(org, opportunity)[1] == "Proposal"


# --- Stage settings ----------------------------------------------------------------------


def test_stage_settings_add_rename_reorder_delete(admin_client, org, other_org):
    stages = stages_of(org)
    response = admin_client.post(
        url("deal_stage_create", org), {"name": "Demo", "probability": 25, "kind": "open"}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        demo = DealStage.objects.get(name="Demo")
    assert demo.position == 5  # added last
    # Rename, and a duplicate name is refused.
    edit = url("deal_stage_edit", org, deal_stage_id=demo.pk)
    data = {"name": "Product demo", "probability": 30, "kind": "open"}
    assert admin_client.post(edit, data).status_code == 302
    dup = admin_client.post(edit, {**data, "name": "proposal"})
    assert dup.status_code == 400 and "already a stage" in dup.content.decode()
    # Reorder: two places left.
    reorder = url("deal_stage_reorder", org, deal_stage_id=demo.pk)
    admin_client.post(reorder, {"direction": "up"})
    admin_client.post(reorder, {"direction": "up"})
    with tenant_scope(org):
        order = list(DealStage.objects.order_by("position").values_list("name", flat=True))
    assert order == ["Qualification", "Proposal", "Negotiation", "Product demo", "Won", "Lost"]
    page = admin_client.get(url("deal_stages", org)).content.decode()
    assert page.index("Product demo") < page.index(">Won<")
    board = columns(admin_client.get(url("board", org)).content.decode())
    assert list(board)[3] == "Product demo"
    # Delete.
    assert (
        admin_client.post(url("deal_stage_delete", org, deal_stage_id=demo.pk)).status_code == 302
    )
    with tenant_scope(org):
        assert not DealStage.objects.filter(pk=demo.pk).exists()
    assert stages["Won"].pk  # the others stay


def test_a_stage_holding_deals_or_the_last_of_its_kind_is_not_deleted(
    admin_client, org, other_org, admin
):
    stages = stages_of(org)
    deal(org, admin, stage=stages["Proposal"])
    for name, message in (("Proposal", "holds 1 deal"), ("Won", "at least one won stage")):
        response = admin_client.post(url("deal_stage_delete", org, deal_stage_id=stages[name].pk))
        assert response.status_code == 302
        assert message in admin_client.get(response["Location"]).content.decode()
        with tenant_scope(org):
            assert DealStage.objects.filter(pk=stages[name].pk).exists()
    # Its kind does not change under its deals either.
    edit = url("deal_stage_edit", org, deal_stage_id=stages["Proposal"].pk)
    response = admin_client.post(edit, {"name": "Proposal", "probability": 40, "kind": "won"})
    assert response.status_code == 400 and "holds deals" in response.content.decode()


def test_stage_settings_are_for_admins_and_their_own_organization(
    rep_client, admin_client, org, other_org
):
    stages_of(org)
    foreign = stages_of(other_org)["Proposal"]
    assert rep_client.get(url("deal_stages", org)).status_code in (403, 404)
    for name in ("deal_stage_edit", "deal_stage_delete", "deal_stage_reorder"):
        assert admin_client.post(url(name, org, deal_stage_id=foreign.pk)).status_code == 404
    with scopes_disabled():
        assert DealStage.objects.filter(pk=foreign.pk, name="Proposal").exists()


def test_bad_stage_input_is_refused(admin_client, org, other_org):
    stages_of(org)
    for data in (
        {"name": "", "probability": 10, "kind": "open"},
        {"name": "X", "probability": 101, "kind": "open"},
        {"name": "X", "probability": 10, "kind": "maybe"},
        {"name": "X" * 61, "probability": 10, "kind": "open"},
    ):
        assert admin_client.post(url("deal_stage_create", org), data).status_code == 400, data
    with tenant_scope(org):
        assert DealStage.objects.count() == 5


def test_role_matters_for_the_board_service(org, other_org, sales_rep, marketer):
    stages = stages_of(org)
    opportunity = deal(org, sales_rep, stage=stages["Proposal"])
    with tenant_scope(org), pytest.raises(Exception) as refused:
        services.opportunity_move(opportunity=opportunity, stage=stages["Won"], actor=marketer)
    assert "role" in str(refused.value).lower()
    assert state(org, opportunity)[0] == "open"
    assert Decimal(opportunity.amount) == Decimal(1000)
    assert marketer.role == Role.MARKETER
