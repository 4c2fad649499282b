"""Pipeline settings pages (teams, seats, routing rules, policy), the lead
detail panel, and the hand-offs on it (mark MQL, reassign)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from pipeline.models import PipelinePolicy, RoutingRule, Team, TeamMember
from pipeline.panels import pipeline_panel
from tests.factories import LeadFactory, RoutingRuleFactory, TeamFactory
from tests.pipeline.support import fresh, mql_for, pipeline_only, rep, team_with

__all__ = ["pipeline_only"]

pytestmark = pytest.mark.django_db


def url(name: str, org, **kwargs) -> str:
    return reverse(f"pipeline:{name}", kwargs={"org_slug": org.slug, **kwargs})


POLICY = {
    "sla_demo_request": "10",
    "sla_contact_request": "15",
    "sla_content_download": "2880",
    "sla_default": "90",
    "sla_accept_hours": "8",
    "breach_action": "recycle",
    "second_window_minutes": "30",
    "business_hours_only": "on",
    "hours_start": "08:30",
    "hours_end": "18:00",
    "hours_days": ["0", "1", "2", "3"],
    "bant_required": ["budget", "need"],
    "default_currency": "eur",
    "pql_trial_signups": "1",
    "pql_product_events": "",
}


def test_settings_page_lists_teams_rules_and_policy(admin_client, org, other_org):
    with tenant_scope(org):
        team, _ = team_with(org, 2, name="EMEA SMB")
        RoutingRuleFactory(
            organization=org, target_team=team, name="DACH",
            conditions=[{"field": "country", "operator": "in", "value": ["DE", "AT"]}],
        )  # fmt: skip
    with tenant_scope(other_org):
        TeamFactory(organization=other_org, name="Foreign team")
    response = admin_client.get(url("settings", org))
    assert response.status_code == 200
    html = response.content.decode()
    assert "EMEA SMB" in html and "DACH" in html and "Country (ISO code) is one of DE, AT" in html
    assert "Foreign team" not in html
    assert 'data-testid="policy-form"' in html


def test_policy_form_saves_and_reports_bad_input(admin_client, org):
    bad = {**POLICY, "hours_end": "08:00", "default_currency": "euro", "sla_default": "0"}
    response = admin_client.post(url("settings", org), bad)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Business hours must end after they start." in html
    assert "three-letter currency code" in html and "At least 1 minute." in html
    response = admin_client.post(url("settings", org), POLICY)
    assert response.status_code == 302
    with tenant_scope(org):
        policy = PipelinePolicy.objects.get()
    assert policy.sla_first_touch_minutes == {
        "demo_request": 10, "contact_request": 15, "content_download": 2880, "default": 90
    }  # fmt: skip
    assert policy.business_hours == {"start": "08:30", "end": "18:00", "days": [0, 1, 2, 3]}
    assert (policy.bant_required, policy.default_currency, policy.breach_action) == (
        ["budget", "need"],
        "EUR",
        "recycle",
    )
    assert policy.pql_rules == [{"kind": "trial_signup", "min_count": 1}]


def test_team_and_seat_pages(admin_client, org, sales_rep):
    response = admin_client.post(url("team_create", org), {"name": "  "})
    assert response.status_code == 400
    response = admin_client.post(
        url("team_create", org), {"name": "NA Enterprise", "is_default": "on"}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        team = Team.objects.get(name="NA Enterprise")
    assert team.is_default
    seat_url = url("team_member_create", org, team_id=team.pk)
    response = admin_client.post(
        seat_url, {"membership": sales_rep.pk, "capacity": "0", "weight": "1"}
    )
    assert response.status_code == 400
    response = admin_client.post(
        seat_url, {"membership": sales_rep.pk, "capacity": "20", "weight": "2"}
    )
    assert response.status_code == 302
    response = admin_client.post(
        seat_url, {"membership": sales_rep.pk, "capacity": "20", "weight": "2"}
    )
    assert response.status_code == 400  # already in the team
    with tenant_scope(org):
        seat = TeamMember.objects.get(team=team)
    assert (seat.membership_id, seat.capacity, seat.weight) == (sales_rep.pk, 20, 2)
    edit = url("team_member_edit", org, team_member_id=seat.pk)
    assert admin_client.post(edit, {"capacity": "30", "weight": "3"}).status_code == 302
    with tenant_scope(org):
        seat.refresh_from_db()
        assert (seat.membership_id, seat.capacity) == (sales_rep.pk, 30)
    admin_client.post(url("team_member_remove", org, team_member_id=seat.pk))
    admin_client.post(url("team_delete", org, team_id=team.pk))
    with tenant_scope(org):
        assert not Team.objects.exists() and not TeamMember.objects.exists()


def _rule_post(team, **extra):
    data = {
        "name": "EMEA SMB", "priority": "10", "is_active": "on", "target_team": team.pk,
        "target_rep": "", "method": "round_robin",
        "cond-TOTAL_FORMS": "3", "cond-INITIAL_FORMS": "0",
        "cond-0-field": "country", "cond-0-operator": "in", "cond-0-value": "de, fr",
        "cond-1-field": "company_size", "cond-1-operator": "lt", "cond-1-value": "200",
        "cond-2-field": "", "cond-2-operator": "eq", "cond-2-value": "",
    }  # fmt: skip
    return {**data, **extra}


def test_routing_rule_with_conditions(admin_client, org, sales_rep):
    with tenant_scope(org):
        team = TeamFactory(organization=org)
    new = url("rule_create", org)
    page = admin_client.get(new).content.decode()
    assert 'name="cond-0-field"' in page and 'id="condition-template"' in page
    response = admin_client.post(new, _rule_post(team, **{"cond-1-value": "many"}))
    assert response.status_code == 400 and "not a number" in response.content.decode()
    response = admin_client.post(new, _rule_post(team, target_rep=sales_rep.pk))
    assert response.status_code == 400 and "pick exactly one" in response.content.decode()
    assert admin_client.post(new, _rule_post(team)).status_code == 302
    with tenant_scope(org):
        rule = RoutingRule.objects.get()
    assert rule.conditions == [
        {"field": "country", "operator": "in", "value": ["de", "fr"]},
        {"field": "company_size", "operator": "lt", "value": 200.0},
    ]
    edit = url("rule_edit", org, routing_rule_id=rule.pk)
    assert 'value="de, fr"' in admin_client.get(edit).content.decode()
    admin_client.post(url("rule_delete", org, routing_rule_id=rule.pk))
    with tenant_scope(org):
        assert not RoutingRule.objects.exists()


# --- Lead detail panel and hand-offs -----------------------------------------------------


@pytest.fixture
def with_panel(monkeypatch):
    # Registered by PipelineConfig.ready() in the app; pinned here so the test stands alone.
    monkeypatch.setattr(hooks.lead_detail_panels, "overridden", [pipeline_panel])


def test_lead_detail_panel_shows_history_bant_and_actions(
    with_panel, admin_client, client_for, org, sales_rep
):
    with tenant_scope(org):
        lead = mql_for(sales_rep)
    rep_client = client_for(sales_rep)
    rep_client.post(url("lead_accept", org, lead_id=lead.pk))
    detail = reverse("leads:lead_detail", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
    html = rep_client.get(detail).content.decode()
    assert 'data-testid="pipeline-panel"' in html
    assert "Sales accepted" in html and "MQL → <strong>Sales accepted</strong>" in html
    assert 'data-action="qualify"' in html and 'data-action="assign"' not in html
    html = admin_client.get(detail).content.decode()
    assert 'data-action="assign"' in html  # admins may reassign


def test_mark_mql_by_hand_needs_a_reason(marketer, client_for, org):
    client = client_for(marketer)
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
    path = url("lead_mark_mql", org, lead_id=lead.pk)
    assert client.get(path).status_code == 200
    response = client.post(path, {"reason": ""})
    assert response.status_code == 400 and "Give a reason" in response.content.decode()
    response = client.post(path, {"reason": "Met at the trade show", "next": "/evil.example"})
    assert response.status_code == 302
    with tenant_scope(org):
        lead = fresh(lead)
    assert lead.stage == "mql" and lead.mql_source == "manual"


def test_reassign_by_hand_moves_the_lead(admin_client, org, sales_rep):
    with tenant_scope(org):
        lead = mql_for(rep(org))
    response = admin_client.post(
        url("lead_assign", org, lead_id=lead.pk), {"membership": sales_rep.pk, "reason": "Cover"}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        assert fresh(lead).owner_id == sales_rep.pk
