"""Pipeline pages: the rep queue and its htmx quick actions (accept, reject,
touch, BANT, convert, close), the team view, the opportunity board, and the
tenant wall around them. Settings pages are in test_pages_settings.py."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity
from pipeline.models import Assignment, Opportunity, OpportunityStatus, Qualification
from tests.factories import LeadFactory, OpportunityFactory
from tests.pipeline.support import fresh, history, mql_for, pipeline_only, rep, team_with

__all__ = ["pipeline_only"]  # the autouse fixture, imported for this module

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-testid="queue-row" data-lead="(\d+)"', html)]


def url(name: str, org, **kwargs) -> str:
    return reverse(f"pipeline:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def rep_client(sales_rep, client_for):
    return client_for(sales_rep)


def _mql(org, membership, **kwargs):
    with tenant_scope(org):
        return mql_for(membership, **kwargs)


def _stage(org, lead) -> str:
    with tenant_scope(org):
        return fresh(lead).stage


# --- The queue --------------------------------------------------------------------------


def test_empty_queue_says_so(rep_client, org):
    response = rep_client.get(url("queue", org))
    assert response.status_code == 200
    assert "pipeline/queue.html" in [t.name for t in response.templates]
    assert "Nothing assigned to you right now" in response.content.decode()


def test_queue_shows_own_open_leads_in_priority_order(rep_client, org, other_org, sales_rep):
    now = timezone.now()
    with tenant_scope(org):
        cold = mql_for(sales_rep, first_name="Cold", band="cold", score=10, scored_at=now)
        hot = mql_for(sales_rep, first_name="Hot", band="hot", score=90, scored_at=now)
        due = mql_for(sales_rep, first_name="Due", band="cold", score=1, scored_at=now)
        Assignment.objects.filter(lead=due).update(
            first_touch_due_at=now - dt.timedelta(minutes=5), reason="Matched rule EMEA"
        )
        Assignment.objects.filter(lead=hot).update(first_touch_due_at=now + dt.timedelta(hours=2))
        mql_for(rep(org), first_name="Someoneelse")
        LeadFactory(organization=org, owner=sales_rep, stage="won", first_name="Closed")
    with tenant_scope(other_org):
        mql_for(rep(other_org), first_name="Foreign")
    html = rep_client.get(url("queue", org)).content.decode()
    assert row_ids(html) == [due.pk, hot.pk, cold.pk]
    assert "overdue 5m" in html and "Matched rule EMEA" in html
    assert "due in 1h 59m" in html or "due in 2h" in html
    for absent in ("Someoneelse", "Closed", "Foreign"):
        assert absent not in html


def test_queue_query_count_is_pinned(rep_client, org, sales_rep, django_assert_num_queries):
    def load(n):
        with tenant_scope(org):
            for _ in range(n):
                lead = mql_for(sales_rep)
                Activity.objects.create(
                    organization=org, lead=lead, kind="call", occurred_at=timezone.now()
                )
        with django_assert_num_queries(QUEUE_QUERIES):
            response = rep_client.get(url("queue", org))
        return response.content.decode().count('data-testid="queue-row"')

    assert load(2) == 2
    assert load(9) == 11


# session + user + membership with its org (middleware), page, header counts (which
# the paginator takes its count from)
QUEUE_QUERIES = 5


# --- Quick actions (htmx) -------------------------------------------------------------


def test_accept_swaps_the_row_and_stops_the_accept_clock(rep_client, org, sales_rep):
    lead = _mql(org, sales_rep)
    response = rep_client.post(url("lead_accept", org, lead_id=lead.pk), **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("{% load") is False and f'id="lead-row-{lead.pk}"' in html
    assert "Accepted" in html and 'hx-swap-oob="true"' in html
    with tenant_scope(org):
        assert fresh(lead).stage == "sal"
        assert Assignment.objects.get(lead=lead, is_current=True).accepted_at is not None
    # SAL offers the next steps: touch and BANT.
    assert 'data-action="touch"' in html and 'data-action="qualify"' in html


def test_reject_needs_a_reason_for_other_then_recycles(rep_client, org, sales_rep):
    lead = _mql(org, sales_rep)
    path = url("lead_reject", org, lead_id=lead.pk)
    form = rep_client.get(path, **HX).content.decode()
    assert 'data-testid="action-form"' in form and "Bad fit" in form
    response = rep_client.post(path, {"reason_code": "other", "reason": ""}, **HX)
    assert response.status_code == 200
    assert "Say why the lead goes back to nurture." in response.content.decode()
    assert _stage(org, lead) == "mql"
    response = rep_client.post(path, {"reason_code": "not_now", "reason": "Budget next year"}, **HX)
    html = response.content.decode()
    assert 'data-testid="queue-row-done"' in html and "went back to nurture" in html
    with tenant_scope(org):
        assert fresh(lead).stage == "recycled"
        assert history(lead)[-1] == ("mql", "recycled")


def test_log_a_call_records_the_activity_and_first_touch(rep_client, org, sales_rep):
    lead = _mql(org, sales_rep)
    path = url("lead_touch", org, lead_id=lead.pk)
    response = rep_client.post(path, {"kind": "call", "note": "Left a voicemail"}, **HX)
    assert "Call logged." in response.content.decode()
    with tenant_scope(org):
        activity = Activity.objects.get(lead=lead, kind="call")
        assert activity.properties.get("note") == "Left a voicemail" or activity.properties
        assert Assignment.objects.get(lead=lead, is_current=True).first_touched_at is not None
    # A note with no text is refused next to the field.
    response = rep_client.post(path, {"kind": "note", "note": " "}, **HX)
    assert "A note needs some text." in response.content.decode()


BANT = {
    "budget_amount": "25000",
    "budget_currency": "EUR",
    "budget_confirmed": "on",
    "authority_role": "Head of Sales Ops",
    "decision_maker": "true",
    "need": "Leads fall through the cracks",
    "timing_window": "1_3m",
}


def _accepted(org, rep_client, membership):
    lead = _mql(org, membership)
    rep_client.post(url("lead_accept", org, lead_id=lead.pk), **HX)
    return lead


def test_qualify_with_incomplete_bant_keeps_notes_and_says_what_is_missing(
    rep_client, org, sales_rep
):
    lead = _accepted(org, rep_client, sales_rep)
    path = url("lead_qualify", org, lead_id=lead.pk)
    partial = {**BANT, "need": "", "budget_amount": ""}
    html = rep_client.post(path, {**partial, "do": "qualify"}, **HX).content.decode()
    assert 'data-testid="action-error"' in html
    assert "Budget" in html and "Need" in html and "missing" in html
    with tenant_scope(org):
        assert fresh(lead).stage == "sal"
        assert Qualification.objects.get(lead=lead).authority_role == "Head of Sales Ops"
    html = rep_client.post(path, {**BANT, "do": "qualify"}, **HX).content.decode()
    assert "sales qualified (SQL)" in html
    with tenant_scope(org):
        assert fresh(lead).stage == "sql"
        q = Qualification.objects.get(lead=lead)
        assert (q.budget_amount, q.budget_currency, q.decision_maker) == (
            Decimal("25000.00"),
            "EUR",
            True,
        )


def test_bant_form_refuses_a_negative_budget(rep_client, org, sales_rep):
    lead = _accepted(org, rep_client, sales_rep)
    html = rep_client.post(
        url("lead_qualify", org, lead_id=lead.pk), {**BANT, "budget_amount": "-5"}, **HX
    ).content.decode()
    assert "cannot be negative" in html or "greater than or equal to 0" in html
    with tenant_scope(org):
        assert not Qualification.objects.filter(lead=lead).exists()


def test_convert_then_mark_won_leaves_the_queue(rep_client, org, sales_rep):
    lead = _accepted(org, rep_client, sales_rep)
    rep_client.post(url("lead_qualify", org, lead_id=lead.pk), {**BANT, "do": "qualify"}, **HX)
    convert = url("lead_convert", org, lead_id=lead.pk)
    html = rep_client.post(convert, {"amount": "-1", "currency": "USD"}, **HX).content.decode()
    assert "The amount cannot be negative." in html
    html = rep_client.post(
        convert,
        {"amount": "48000", "currency": "eur", "probability": "40", "next_step": "Demo"},
        **HX,
    ).content.decode()
    assert "Opportunity" in html and "opened" in html and 'data-action="close"' in html
    with tenant_scope(org):
        deal = Opportunity.objects.get(lead=lead)
        assert (deal.amount, deal.currency, deal.probability) == (Decimal("48000.00"), "EUR", 40)
    close = url("lead_close", org, lead_id=lead.pk)
    html = rep_client.post(close, {"outcome": "lost", "reason": ""}, **HX).content.decode()
    assert "Say why the deal was lost." in html
    html = rep_client.post(close, {"outcome": "won", "reason": "Best fit"}, **HX).content.decode()
    assert "Marked won" in html and 'data-testid="queue-row-done"' in html
    with tenant_scope(org):
        assert fresh(lead).stage == "won"
        assert Opportunity.objects.get(lead=lead).status == OpportunityStatus.WON
        assert [to for _, to in history(lead)][-4:] == ["sal", "sql", "opportunity", "won"]


def test_an_illegal_move_is_refused_inline(rep_client, org, sales_rep):
    lead = _mql(org, sales_rep)  # still an MQL: cannot become an opportunity
    html = rep_client.post(
        url("lead_convert", org, lead_id=lead.pk), {"amount": "100", "currency": "USD"}, **HX
    ).content.decode()
    assert 'data-testid="action-error"' in html and "cannot" in html.lower()
    assert _stage(org, lead) == "mql"


def test_without_htmx_actions_are_pages_that_redirect(rep_client, org, sales_rep):
    lead = _mql(org, sales_rep)
    path = url("lead_reject", org, lead_id=lead.pk)
    response = rep_client.get(path)
    assert response.status_code == 200
    assert "pipeline/lead_action.html" in [t.name for t in response.templates]
    response = rep_client.post(path, {"reason_code": "other"})
    assert response.status_code == 400
    response = rep_client.post(url("lead_accept", org, lead_id=lead.pk))
    assert response.status_code == 302 and response["Location"] == url("queue", org)
    assert _stage(org, lead) == "sal"


def test_a_rep_cannot_act_on_another_reps_lead(rep_client, org, other_org, sales_rep):
    with tenant_scope(org):
        theirs = mql_for(rep(org))
    for name in ("lead_accept", "lead_reject", "lead_touch", "lead_row"):
        response = rep_client.post(url(name, org, lead_id=theirs.pk), {"reason_code": "bad_fit"})
        assert response.status_code == 404, name
    assert _stage(org, theirs) == "mql"
    with tenant_scope(other_org):
        foreign = mql_for(rep(other_org))
    assert rep_client.post(url("lead_accept", org, lead_id=foreign.pk)).status_code == 404


def test_marketers_cannot_work_leads_nor_change_routing(marketer, client_for, org, sales_rep):
    client = client_for(marketer)
    lead = _mql(org, sales_rep)
    assert client.post(url("lead_accept", org, lead_id=lead.pk)).status_code == 403
    assert client.get(url("queue", org)).status_code == 403
    assert client.get(url("settings", org)).status_code == 403
    assert _stage(org, lead) == "mql"


# --- Team view ----------------------------------------------------------------------------


def _team_page(client, org):
    return client.get(url("team", org))


def test_team_view_shows_load_breaches_and_unassigned(admin_client, org, other_org):
    with tenant_scope(org):
        _, seats = team_with(org, 2, name="EMEA SMB")
        busy = seats[0]
        busy.capacity = 4
        busy.save()
        for _ in range(3):
            mql_for(busy.membership)
        Assignment.objects.filter(membership=busy.membership).order_by("pk").first()
        Assignment.objects.filter(
            pk=Assignment.objects.filter(membership=busy.membership).order_by("pk").values("pk")[:1]
        ).update(breached_at=timezone.now())
        LeadFactory(organization=org, stage="mql", first_name="Waiting", score=80)
    with tenant_scope(other_org):
        LeadFactory(organization=other_org, stage="mql", first_name="Foreign")
    response = _team_page(admin_client, org)
    assert response.status_code == 200
    html = response.content.decode()
    assert "EMEA SMB" in html and "3 / 4" in html and "0 / 50" in html
    assert 'data-testid="team-breaches">1<' in html
    assert "Waiting" in html and "Foreign" not in html
    assert 'data-testid="team-unassigned">1<' in html


def test_team_query_count_is_pinned(admin_client, org, django_assert_num_queries):
    def load(n):
        with tenant_scope(org):
            _, seats = team_with(org, n)
            for seat in seats:
                mql_for(seat.membership)
            for _ in range(n):
                LeadFactory(organization=org, stage="mql")
        with django_assert_num_queries(TEAM_QUERIES):
            html = _team_page(admin_client, org).content.decode()
        return html.count('data-testid="seat-row"'), html.count('data-testid="unassigned-row"')

    assert load(2) == (2, 2)
    assert load(5) == (7, 7)


# middleware (3) + seats, unassigned page, unassigned count, members, failed notice emails
TEAM_QUERIES = 8


def test_away_toggle_swaps_the_seat_row(admin_client, org):
    with tenant_scope(org):
        _, (seat,) = team_with(org, 1)
    path = url("team_member_away", org, team_member_id=seat.pk)
    html = admin_client.post(path, {"away": "1"}, **HX).content.decode()
    assert f'id="seat-{seat.pk}"' in html and "Mark back" in html
    with tenant_scope(org):
        seat.refresh_from_db()
        assert seat.is_away and seat.away_since
    assert admin_client.post(path, {"away": "maybe"}).status_code == 400
    assert admin_client.post(path, {"away": "0"}).status_code == 302
    with tenant_scope(org):
        seat.refresh_from_db()
        assert not seat.is_away


def test_assign_an_unassigned_mql_from_the_team_view(admin_client, org, sales_rep):
    with tenant_scope(org):
        lead = LeadFactory(organization=org, stage="mql")
    path = url("lead_assign", org, lead_id=lead.pk)
    html = admin_client.post(path, {"view": "team", "membership": ""}, **HX).content.decode()
    assert 'data-testid="row-error"' in html
    html = admin_client.post(
        path, {"view": "team", "membership": sales_rep.pk}, **HX
    ).content.decode()
    assert f"Assigned to {sales_rep.user.display_name}" in html
    with tenant_scope(org):
        assert fresh(lead).owner_id == sales_rep.pk
        assignment = Assignment.objects.get(lead=lead, is_current=True)
        assert assignment.method == "manual"


def test_reps_cannot_see_the_team_view(rep_client, org):
    assert rep_client.get(url("team", org)).status_code == 403


# --- Board --------------------------------------------------------------------------------


def _deal(org, owner, status="open", amount=1000, currency="USD", **kwargs):
    stage = {"open": "opportunity", "won": "won", "lost": "lost"}[status]
    closed = {} if status == "open" else {"closed_at": timezone.now()}
    return OpportunityFactory(
        lead__organization=org, lead__owner=owner, lead__stage=stage, owner=owner,
        status=status, amount=amount, currency=currency, **closed, **kwargs,
    )  # fmt: skip


# The board (stages, totals, moves, its query count): tests/pipeline/test_board.py.


def test_opportunity_page_edits_and_closes(admin_client, rep_client, org, sales_rep, admin):
    with tenant_scope(org):
        deal = _deal(org, sales_rep, amount=1000)
        theirs = _deal(org, admin)
    path = url("opportunity", org, opportunity_id=deal.pk)
    assert rep_client.get(path).status_code == 200
    assert rep_client.get(url("opportunity", org, opportunity_id=theirs.pk)).status_code == 404
    bad = {"do": "update", "deal-amount": "lots", "deal-currency": "USD"}
    assert rep_client.post(path, bad).status_code == 400
    ok = {"do": "update", "deal-amount": "1500", "deal-currency": "usd", "deal-probability": "60"}
    assert rep_client.post(path, ok).status_code == 302
    response = rep_client.post(path, {"do": "close", "close-outcome": "lost", "close-reason": ""})
    assert response.status_code == 400 and "Say why the deal was lost." in response.content.decode()
    rep_client.post(path, {"do": "close", "close-outcome": "lost", "close-reason": "Price"})
    with tenant_scope(org):
        deal.refresh_from_db()
        assert (deal.amount, deal.probability, deal.status) == (Decimal("1500.00"), 0, "lost")
    rep_client.post(path, {"do": "reopen", "reopen-reason": "They came back"})
    with tenant_scope(org):
        deal.refresh_from_db()
        assert deal.status == "open" and fresh(deal.lead).stage == "opportunity"
