"""Scoring pages: rules (create, edit, toggle, delete, simulate), settings and
gating rules, rescore progress, the change log — their database effects, their
messages for bad input, the tenant wall and pinned query counts."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, Lead
from scoring import engine, rescoring
from scoring.models import (
    GatingRule,
    RescoreJob,
    RescoreStatus,
    RuleChange,
    ScoringRule,
    ScoringSettings,
)
from tests.factories import (
    ActivityFactory,
    GatingRuleFactory,
    LeadFactory,
    RescoreJobFactory,
    ScoreGroupFactory,
    ScoringRuleFactory,
)
from tests.scoring.test_simulation import NOW, small_dataset, timeout_queries

pytestmark = pytest.mark.django_db

FIT_POST = {"kind": "fit", "field": "title", "operator": "contains", "value": "vp", "points": "10"}
ENGAGEMENT_POST = {
    "kind": "engagement",
    "activity_kinds": ["page_view", "content_download"],
    "property_key": "url",
    "property_operator": "contains",
    "property_value": "/pricing",
    "min_count": "1",
    "window_days": "30",
    "mode": "per_occurrence",
    "max_points": "15",
    "points": "5",
    "name": "Pricing visits",
}
SETTINGS_POST = {
    "mql_threshold": "50",
    "min_fit_grade": "",
    "grade_a": "40",
    "grade_b": "25",
    "grade_c": "10",
    "grade_d": "0",
    "hot": "100",
    "warm": "40",
    "half_life_days": "30",
    "total_ceiling": "",
}


def url(name: str, org, **kwargs) -> str:
    return reverse(f"scoring:{name}", kwargs={"org_slug": org.slug, **kwargs})


def shown(html: str, testid: str) -> str:
    """The text of the element with data-testid=testid (numbers of the partials)."""
    match = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert match, f"{testid} not in the page"
    return match.group(1).strip()


def in_scope(org, fn):
    with tenant_scope(org):
        return fn()


# --- Create and edit rules ---------------------------------------------------------------


def test_creating_a_fit_rule_saves_audits_and_rescores(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        vp = LeadFactory(organization=org, title="VP Sales")
        intern = LeadFactory(organization=org, title="Intern")
        ScoringSettings.objects.create(organization=org, half_life_days=None)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url("rule_create", org), FIT_POST)
    assert response.status_code == 302
    assert response["Location"] == url("rule_list", org)
    assert len(callbacks) == 1  # one tenant rescore enqueued on commit
    with tenant_scope(org):
        rule = ScoringRule.objects.get()
        change = RuleChange.objects.get()
        job = RescoreJob.objects.get()
        vp.refresh_from_db()
        intern.refresh_from_db()
    assert (rule.kind, rule.field, rule.operator, rule.value, rule.points) == (
        "fit",
        "title",
        "contains",
        "vp",
        10,
    )
    assert rule.name == "Job title contains ‘vp’" and rule.is_active
    assert (change.action, change.actor, change.rule) == ("created", admin.user, rule)
    assert change.changes["points"] == [None, 10]
    assert (job.status, job.total, job.processed) == (RescoreStatus.DONE, 2, 2)
    assert (vp.fit_score, vp.score_breakdown, intern.fit_score) == (10, {f"r{rule.pk}": 10}, 0)


def test_creating_an_engagement_rule_queues_a_rescore(org, other_org, admin_client):
    with tenant_scope(org):
        group = ScoreGroupFactory(organization=org, name="Web", cap=30)
        ScoringRuleFactory(organization=org, kind="engagement", activity_kinds=["webinar"])
    response = admin_client.post(
        url("rule_create", org), {**ENGAGEMENT_POST, "group": str(group.pk)}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        rule = ScoringRule.objects.get(name="Pricing visits")
        job = RescoreJob.objects.get()
        change = RuleChange.objects.get()
    assert rule.activity_kinds == ["page_view", "content_download"]
    assert (rule.field, rule.operator, rule.value) == ("url", "contains", "/pricing")
    assert (rule.window_days, rule.per_occurrence, rule.max_points, rule.group) == (
        30,
        True,
        15,
        group,
    )
    assert rule.position == 1  # after the existing engagement rule
    assert (job.status, job.reason) == (RescoreStatus.QUEUED, "Rule created: Pricing visits")
    assert change.subject == "Pricing visits"
    # The rules page shows the queued job with its progress poll.
    page = admin_client.get(url("rule_list", org)).content.decode()
    assert url("rescore_progress", org, rescore_job_id=job.pk) in page
    assert "Waiting for a worker" in page


def test_editing_a_rule_records_what_changed(org, other_org, admin, admin_client):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, name="VP", points=10)
    page = admin_client.get(url("rule_edit", org, rule_id=rule.pk))
    assert page.status_code == 200
    assert 'value="vp"' in page.content.decode()
    response = admin_client.post(
        url("rule_edit", org, rule_id=rule.pk), {**FIT_POST, "points": "25", "name": "VP"}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        rule.refresh_from_db()
        change = RuleChange.objects.get()
    assert rule.points == 25
    assert (change.action, change.changes, change.actor) == (
        "updated",
        {"points": [10, 25]},
        admin.user,
    )
    log = admin_client.get(url("audit_log", org)).content.decode()
    assert "<del" in log and "10</del>" in log and "25" in log and admin.user.display_name in log


def test_saving_an_unchanged_rule_records_nothing(org, other_org, admin_client):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, name="VP", points=10)
    response = admin_client.post(url("rule_edit", org, rule_id=rule.pk), {**FIT_POST, "name": "VP"})
    assert response.status_code == 302
    with tenant_scope(org):
        assert not RuleChange.objects.exists() and not RescoreJob.objects.exists()


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({**FIT_POST, "field": "salary"}, "Select a valid choice"),
        ({**FIT_POST, "field": "custom", "custom_key": "a b"}, "Custom attribute names use"),
        (
            {**FIT_POST, "field": "company_size", "operator": "gte", "value": "big"},
            "is not a number",
        ),
        ({**FIT_POST, "operator": "gte", "value": "5"}, "Job title is text"),
        ({**FIT_POST, "points": "1500"}, "Points must be between −1000 and 1000."),
        ({**FIT_POST, "points": "-99999999999999999999"}, "Points must be between"),
        ({**ENGAGEMENT_POST, "activity_kinds": []}, "Choose at least one activity."),
        ({**ENGAGEMENT_POST, "window_days": "-30"}, "The window is 1 to 3650 days"),
        ({**ENGAGEMENT_POST, "window_days": "36500"}, "The window is 1 to 3650 days"),
        ({**ENGAGEMENT_POST, "points": "1001"}, "Points must be between"),
    ],
)
def test_bad_rules_are_refused_with_a_message_and_nothing_saved(
    org, other_org, admin_client, post, message
):
    response = admin_client.post(url("rule_create", org), post)
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_scope(org):
        assert not ScoringRule.objects.exists()
        assert not RuleChange.objects.exists() and not RescoreJob.objects.exists()


def test_a_bad_edit_leaves_the_rule_as_it_was(org, other_org, admin_client):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, points=10)
    response = admin_client.post(
        url("rule_edit", org, rule_id=rule.pk),
        {**FIT_POST, "field": "company_size", "operator": "between", "value": "7"},
    )
    assert response.status_code == 400
    assert "Between needs two numbers: low, high." in response.content.decode()
    with tenant_scope(org):
        rule.refresh_from_db()
        assert (rule.field, rule.operator, rule.value) == ("title", "contains", "vp")
        assert not RuleChange.objects.exists()


def test_an_unknown_kind_opens_the_fit_form(org, other_org, admin_client):
    response = admin_client.get(url("rule_create", org) + "?kind=psychic")
    assert response.status_code == 200
    assert 'name="kind" value="fit"' in response.content.decode()
    engagement = admin_client.get(url("rule_create", org) + "?kind=engagement").content.decode()
    assert 'name="activity_kinds"' in engagement and 'name="field"' not in engagement


# --- Simulation --------------------------------------------------------------------------


def test_the_simulation_partial_on_a_hand_computed_dataset(org, other_org, admin_client):
    """3 leads, threshold 20, demo +15: a VP rule +10 matches 2 and makes 1 MQL."""
    in_scope(org, lambda: small_dataset(org))
    with tenant_scope(other_org):
        LeadFactory.create_batch(3, organization=other_org, title="VP")
    response = admin_client.post(url("rule_simulate", org), FIT_POST, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the partial alone
    assert shown(html, "sim-matches") == "2"
    assert (shown(html, "sim-mql-before"), shown(html, "sim-mql-after")) == ("0", "1")
    assert "1 in, 0 out" in html and "of 3 leads" in html
    assert shown(html, "sim-changed") == "2"
    with tenant_scope(org):
        assert ScoringRule.objects.count() == 1  # nothing saved
        assert not RuleChange.objects.exists() and not RescoreJob.objects.exists()


def test_the_simulation_of_an_edit_replaces_the_saved_rule(org, other_org, admin_client):
    with tenant_scope(org):
        data = small_dataset(org)
        engine.rescore(organization_id=org.pk, now=NOW)
    post = {"kind": "engagement", "activity_kinds": ["demo_request"], "mode": "once"}
    post.update(min_count="1", points="25", name="Demo request")
    response = admin_client.post(
        url("rule_simulate", org, rule_id=data["demo"].pk), post, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    # demo 15 → 25: vp1 and intern reach 25 ≥ 20.
    assert shown(html, "sim-matches") == "2"
    assert (shown(html, "sim-mql-before"), shown(html, "sim-mql-after")) == ("0", "2")
    assert "2 in, 0 out" in html


def test_an_incomplete_form_lists_what_is_missing_in_the_simulation(org, other_org, admin_client):
    response = admin_client.post(
        url("rule_simulate", org),
        {**FIT_POST, "field": "company_size", "operator": "gte", "value": "x"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200  # htmx swaps only successful responses
    html = response.content.decode()
    assert "Complete the rule to see its impact" in html and "is not a number" in html
    empty = admin_client.post(url("rule_simulate", org), {}, HTTP_HX_REQUEST="true")
    assert empty.status_code == 200 and "This field is required." in empty.content.decode()


def test_preview_without_javascript_shows_the_impact_and_saves_nothing(
    org, other_org, admin_client
):
    in_scope(org, lambda: small_dataset(org))
    response = admin_client.post(url("rule_create", org), {**FIT_POST, "action": "preview"})
    assert response.status_code == 200
    assert response.context["simulation"].matches == 2
    assert "Impact before you save" in response.content.decode()
    with tenant_scope(org):
        assert ScoringRule.objects.count() == 1


def test_the_edit_page_opens_with_the_rules_current_impact(org, other_org, admin_client):
    with tenant_scope(org):
        data = small_dataset(org)
    response = admin_client.get(url("rule_edit", org, rule_id=data["demo"].pk))
    assert response.status_code == 200
    assert response.context["simulation"].matches == 2


# --- Toggle and delete ----------------------------------------------------------------------


def test_switching_a_rule_off_and_on(org, other_org, admin, admin_client):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, name="VP")
    off = admin_client.post(url("rule_toggle", org, rule_id=rule.pk), {"active": "0"})
    assert off.status_code == 302
    with tenant_scope(org):
        rule.refresh_from_db()
        assert rule.is_active is False
        assert RuleChange.objects.get().changes == {"is_active": [True, False]}
    on = admin_client.post(
        url("rule_toggle", org, rule_id=rule.pk), {"active": "1"}, HTTP_HX_REQUEST="true"
    )
    html = on.content.decode()
    assert on.status_code == 200
    assert f'id="rule-{rule.pk}"' in html and "bi-toggle-on" in html
    assert 'id="rescore-progress"' in html and 'hx-swap-oob="true"' in html
    with tenant_scope(org):
        rule.refresh_from_db()
        assert rule.is_active is True
        assert list(RuleChange.objects.values_list("action", flat=True)) == [
            "enabled",
            "disabled",
        ]


def test_a_toggle_without_a_state_is_a_bad_request(org, other_org, admin_client):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org)
    response = admin_client.post(url("rule_toggle", org, rule_id=rule.pk), {"active": "maybe"})
    assert response.status_code == 400
    assert admin_client.get(url("rule_toggle", org, rule_id=rule.pk)).status_code == 405
    with tenant_scope(org):
        rule.refresh_from_db()
        assert rule.is_active and not RuleChange.objects.exists()


def test_deleting_a_rule_asks_first(
    org, other_org, admin_client, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, name="VP", points=10)
        lead = LeadFactory(organization=org, title="VP")
        engine.rescore(organization_id=org.pk)
    confirm = admin_client.get(url("rule_delete", org, rule_id=rule.pk))
    assert confirm.status_code == 200
    assert "It gives points to <strong>1</strong> lead today." in confirm.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("rule_delete", org, rule_id=rule.pk))
    assert response.status_code == 302
    with tenant_scope(org):
        assert not ScoringRule.objects.exists()
        change = RuleChange.objects.get()
        lead.refresh_from_db()
    assert (change.action, change.subject, change.changes["points"]) == ("deleted", "VP", 10)
    assert (lead.score, lead.score_breakdown) == (0, {})


# --- Rules page -----------------------------------------------------------------------------


def test_the_rules_page_lists_both_kinds_with_matches_and_distribution(
    org, other_org, admin_client
):
    with tenant_scope(org):
        data = small_dataset(org)
        group = ScoreGroupFactory(organization=org, name="Title", cap=12)
        vp = ScoringRuleFactory(organization=org, name="VP title", points=10, group=group)
        off = ScoringRuleFactory(organization=org, name="Sleeping", is_active=False)
        engine.rescore(organization_id=org.pk, now=NOW)
    with tenant_scope(other_org):
        ScoringRuleFactory(organization=other_org, name="Globex secret rule")
    response = admin_client.get(url("rule_list", org))
    assert response.status_code == 200
    html = response.content.decode()
    fit = response.context["fit_rules"]
    assert [r.name for r in fit] == ["VP title", "Sleeping"]
    assert [r.name for r in response.context["engagement_rules"]] == ["Demo request"]
    assert {r.pk: r.matches for r in fit} == {vp.pk: 2, off.pk: 0}
    assert response.context["engagement_rules"][0].matches == 2
    assert "Job title contains ‘vp’" in html and "cap 12" in html
    assert data["demo"].name in html and "Globex secret rule" not in html
    distribution = response.context["distribution"]
    assert (distribution.total, distribution.mql) == (3, 1)  # vp1: 15 + 10
    assert 'data-testid="mql-count">1<' in html
    assert 'id="score-chart-data"' in html and "distribution-table" in html


def test_an_empty_organization_gets_empty_states(org, other_org, admin_client):
    html = admin_client.get(url("rule_list", org)).content.decode()
    assert "No fit rules yet" in html and "No engagement rules yet" in html
    assert "No leads to chart yet" in html and "No changes yet" in html


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP])
def test_only_admins_see_and_use_scoring(org, other_org, make_member, client_for, role):
    client = client_for(make_member(org, role))
    assert client.get(url("rule_list", org)).status_code == 403
    assert client.post(url("rule_create", org), FIT_POST).status_code == 403
    home = client.get(reverse("accounts:org_home", kwargs={"org_slug": org.slug}))
    assert url("rule_list", org) not in home.content.decode()
    with tenant_scope(org):
        assert not ScoringRule.objects.exists()


def test_admins_find_scoring_in_the_navigation(org, other_org, admin_client):
    home = admin_client.get(reverse("accounts:org_home", kwargs={"org_slug": org.slug}))
    assert url("rule_list", org) in home.content.decode()


# --- Settings and gating rules ------------------------------------------------------------------


def test_saving_settings_audits_and_rescores(org, other_org, admin, admin_client):
    response = admin_client.post(url("settings", org), {**SETTINGS_POST, "min_fit_grade": "B"})
    assert response.status_code == 302
    with tenant_scope(org):
        settings = ScoringSettings.objects.get()
        change = RuleChange.objects.get()
        assert RescoreJob.objects.get().reason == "Settings changed"
    assert (settings.mql_threshold, settings.min_fit_grade) == (50, "B")
    assert change.changes["mql_threshold"] == [100, 50]
    assert change.actor == admin.user


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({"grade_b": "45"}, "Grade bands must go down from A to D"),
        ({"warm": "100"}, "Hot must start above warm."),
        ({"half_life_days": "99999"}, "The half-life is 1 to 3650 days"),
        ({"mql_threshold": "abc"}, "Enter a whole number."),
    ],
)
def test_bad_settings_are_refused(org, other_org, admin_client, post, message):
    response = admin_client.post(url("settings", org), {**SETTINGS_POST, **post})
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_scope(org):
        assert ScoringSettings.objects.get().mql_threshold == 100
        assert not RuleChange.objects.exists()


def test_gating_rules_are_added_edited_and_deleted(org, other_org, admin_client):
    post = {"reason": "Competitor", "field": "email_domain", "operator": "eq", "value": "rival.io"}
    response = admin_client.post(url("gate_create", org), {**post, "is_active": "on"})
    assert response.status_code == 302 and response["Location"] == url("settings", org)
    with tenant_scope(org):
        gate = GatingRule.objects.get()
        rival = LeadFactory(organization=org, email="ann@rival.io")
        engine.rescore(organization_id=org.pk)
        rival.refresh_from_db()
    assert (gate.field, gate.value, gate.is_active) == ("email_domain", "rival.io", True)
    assert rival.gating_reason == "Competitor"
    settings_page = admin_client.get(url("settings", org)).content.decode()
    assert "Email domain equals ‘rival.io’" in settings_page
    assert "1 lead blocked at the last rescore" in settings_page

    bad = admin_client.post(url("gate_edit", org, gate_id=gate.pk), {**post, "field": "salary"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    edit = admin_client.post(url("gate_edit", org, gate_id=gate.pk), {**post, "reason": "Rival"})
    assert edit.status_code == 302
    assert admin_client.get(url("gate_delete", org, gate_id=gate.pk)).status_code == 200
    assert admin_client.post(url("gate_delete", org, gate_id=gate.pk)).status_code == 302
    with tenant_scope(org):
        assert not GatingRule.objects.exists()
        actions = list(RuleChange.objects.order_by("pk").values_list("action", "subject"))
    assert actions == [
        ("created", "Gate: Competitor"),
        ("updated", "Gate: Rival"),
        ("deleted", "Gate: Rival"),
    ]


# --- Rescore jobs and the change log -----------------------------------------------------------


def test_rescore_now_and_its_progress(org, other_org, admin_client):
    response = admin_client.post(url("rescore_start", org), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    with tenant_scope(org):
        job = RescoreJob.objects.get()
    assert job.reason.startswith("Rescore requested by ")
    progress = url("rescore_progress", org, rescore_job_id=job.pk)
    assert f'hx-get="{progress}"' in response.content.decode()
    with tenant_scope(org):
        RescoreJob.objects.filter(pk=job.pk).update(
            status=RescoreStatus.RUNNING, total=200, processed=50
        )
    running = admin_client.get(progress, HTTP_HX_REQUEST="true").content.decode()
    assert "50 of 200 leads (25%)" in running and 'hx-trigger="every 1s"' in running
    with tenant_scope(org):
        RescoreJob.objects.filter(pk=job.pk).update(status=RescoreStatus.DONE, crossed_up=3)
    done = admin_client.get(progress, HTTP_HX_REQUEST="true").content.decode()
    assert "3 became MQL" in done and "hx-trigger" not in done and "Refresh the numbers" in done
    # A second request while one is waiting does not pile up jobs.
    admin_client.post(url("rescore_start", org))
    admin_client.post(url("rescore_start", org))
    with tenant_scope(org):
        assert RescoreJob.objects.filter(status=RescoreStatus.QUEUED).count() == 1
    assert admin_client.get(progress)["Location"] == url("rule_list", org)  # no JS: the page


def test_the_change_log_is_paginated_and_shows_this_organization_only(
    org, other_org, admin, admin_client, other_admin
):
    with tenant_scope(org):
        for i in range(55):
            RuleChange.objects.create(
                organization=org, subject=f"Rule {i}", action="updated",
                changes={"points": [i, i + 1]}, actor=admin.user,
            )  # fmt: skip
    with tenant_scope(other_org):
        RuleChange.objects.create(organization=other_org, subject="Globex rule", action="created")
    first = admin_client.get(url("audit_log", org))
    second = admin_client.get(url("audit_log", org) + "?page=2")
    assert len(first.context["changes"]) == 50 and len(second.context["changes"]) == 5
    assert first.context["changes"][0].subject == "Rule 54"
    assert "Globex rule" not in first.content.decode() + second.content.decode()


# --- Tenant wall -------------------------------------------------------------------------------


def test_another_organizations_objects_are_404(org, other_org, admin_client):
    with tenant_scope(other_org):
        rule = ScoringRuleFactory(organization=other_org)
        gate = GatingRuleFactory(organization=other_org)
        job = RescoreJobFactory(organization=other_org)
    for response in [
        admin_client.get(url("rule_edit", org, rule_id=rule.pk)),
        admin_client.post(url("rule_edit", org, rule_id=rule.pk), FIT_POST),
        admin_client.post(url("rule_toggle", org, rule_id=rule.pk), {"active": "0"}),
        admin_client.post(url("rule_delete", org, rule_id=rule.pk)),
        admin_client.post(url("rule_simulate", org, rule_id=rule.pk), FIT_POST),
        admin_client.post(url("gate_edit", org, gate_id=gate.pk), {"reason": "x"}),
        admin_client.post(url("gate_delete", org, gate_id=gate.pk)),
        admin_client.get(url("rescore_progress", org, rescore_job_id=job.pk)),
    ]:
        assert response.status_code == 404
    with tenant_scope(other_org):
        rule.refresh_from_db()
        assert rule.is_active and GatingRule.objects.exists()
        assert not RuleChange.objects.exists()


def test_rules_and_rescores_of_one_organization_never_touch_another(
    org, other_org, admin_client, django_capture_on_commit_callbacks
):
    with tenant_scope(other_org):
        theirs = LeadFactory(organization=other_org, title="VP Sales")
        ActivityFactory(lead=theirs, kind=ActivityKind.DEMO_REQUEST)
        before = Lead.objects.values("score", "score_breakdown", "scored_at", "mql_eligible").get()
    with tenant_scope(org):
        LeadFactory(organization=org, title="VP Marketing")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("rule_create", org), {**FIT_POST, "points": "1000"})
        admin_client.post(url("rescore_start", org))
        admin_client.post(url("settings", org), {**SETTINGS_POST, "mql_threshold": "1"})
    with tenant_scope(org):
        assert Lead.objects.get().score == 1000
    with tenant_scope(other_org):
        after = Lead.objects.values("score", "score_breakdown", "scored_at", "mql_eligible").get()
        assert not RescoreJob.objects.exists() and not RuleChange.objects.exists()
    assert after == before


# --- Query counts ----------------------------------------------------------------------------


def _grow(org, leads: int, rules: int) -> None:
    with tenant_scope(org):
        for i in range(leads):
            lead = LeadFactory(organization=org, title="VP" if i % 2 else "Intern")
            ActivityFactory(lead=lead, kind=ActivityKind.PAGE_VIEW, occurred_at=NOW)
        for _ in range(rules):
            ScoringRuleFactory(organization=org, group=ScoreGroupFactory(organization=org))
        RuleChange.objects.create(organization=org, subject="x", action="created")
        GatingRuleFactory(organization=org)
        rescoring.rescore_job_start(organization_id=org.pk, reason="test")
        engine.rescore(organization_id=org.pk)


def test_the_rules_page_runs_a_fixed_number_of_queries(
    org, other_org, admin_client, django_assert_num_queries
):
    _grow(org, leads=3, rules=2)
    admin_client.get(url("rule_list", org))  # settings row created on first visit
    # session, user, membership, org + settings, rules, match counts, groups,
    # distribution, latest job, changes, group names.
    with django_assert_num_queries(11):
        small = admin_client.get(url("rule_list", org))
    _grow(org, leads=40, rules=6)
    with django_assert_num_queries(11):
        large = admin_client.get(url("rule_list", org))
    assert small.context["distribution"].total == 3
    assert large.context["distribution"].total == 43
    assert len(large.context["fit_rules"]) == 8


def test_the_simulation_runs_a_fixed_number_of_queries(
    org, other_org, admin_client, django_assert_num_queries
):
    _grow(org, leads=3, rules=2)
    admin_client.get(url("rule_list", org))
    post = {**FIT_POST, "group": ""}
    # session, user, membership + the form's post-qualification check + configuration
    # (settings, rules, gates) + the comparison.
    with django_assert_num_queries(8 + timeout_queries()):
        small = admin_client.post(url("rule_simulate", org), post, HTTP_HX_REQUEST="true")
    _grow(org, leads=40, rules=6)
    with django_assert_num_queries(8 + timeout_queries()):
        large = admin_client.post(url("rule_simulate", org), post, HTTP_HX_REQUEST="true")
    assert shown(small.content.decode(), "sim-matches") == "1"
    assert shown(large.content.decode(), "sim-matches") == "21"
