"""The single-lead path (issue 15): an API create, a processed hosted-form
submission and one logged activity each run at most 10 SQL statements on
PostgreSQL (the issue's bar; pinned lower: 3, 5 and 5 — no temporary table, no
savepoint, the scoring configuration from the cache), and score exactly as the
set-based path does.

The statement counts need PostgreSQL (scripts/with_services.py); the
equivalence and cache tests run on whatever database the suite runs on.
"""

from __future__ import annotations

import re
from unittest import mock

import celery
import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, FieldType, FormSubmission, Lead
from leads.services import capture
from leads.services.ingest import ExtraActivity, Touch, lead_ingest_batch
from pipeline.models import Assignment
from scoring import engine, services
from scoring.engine import cache as config_cache
from scoring.models import (
    GatingRule,
    RuleKind,
    ScoreGroup,
    ScoreHistory,
    ScoringRule,
    ScoringSettings,
)
from tests.factories import (
    CaptureFormFactory,
    CaptureFormFieldFactory,
    RoutingRuleFactory,
    ScoringRuleFactory,
    TeamMemberFactory,
    api_key_for,
)
from tests.scoring.test_engine_property import NOW, STORED, build, scenarios

MAX_STATEMENTS = 10  # issue 15's bar; each path is pinned at what it runs now:
# The API create: the key; the raw body, with the write timeouts in its round
# trip (accounts.api_writes); company, lead scored, activity and outcome.
API_CREATE_STATEMENTS = 3
FORM_STATEMENTS = 5
ACTIVITY_STATEMENTS = 5
on_postgres = pytest.mark.skipif(
    "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
    reason="the statement budget is PostgreSQL's (SQLite has no data-modifying CTEs)",
)


def configure(org):
    """Matching fit and engagement rules, and a routing rule for the lead's country."""
    with tenant_scope(org):
        ScoringSettings.objects.get_or_create(organization=org)
    ScoringRuleFactory(organization=org, field="title", operator="contains", value="vp", points=30)
    ScoringRuleFactory(organization=org, field="country", operator="eq", value="DE", points=20)
    ScoringRuleFactory(
        organization=org,
        kind=RuleKind.ENGAGEMENT,
        field="",
        operator="",
        value="",
        activity_kinds=[ActivityKind.DEMO_REQUEST, ActivityKind.PAGE_VIEW],
        points=15,
    )
    routing = RoutingRuleFactory(organization=org)
    TeamMemberFactory(team=routing.target_team)


# The transaction's own BEGIN and COMMIT are not counted (every write has
# them); savepoints are.
TRANSACTION_CONTROL = {"BEGIN", "COMMIT"}


def counted(run) -> tuple[object, list[str]]:
    """The statements of `run` itself. Tasks it enqueues on commit (the
    duplicate-candidate refresh) run eagerly in tests but in a worker in
    production, with their own transaction: they are sent nowhere here."""
    with (
        mock.patch.object(celery.Task, "apply_async") as sent,
        CaptureQueriesContext(connection) as ctx,
    ):
        result = run()
    assert all(call.kwargs.get("kwargs") is not None for call in sent.call_args_list)
    return result, [q["sql"] for q in ctx.captured_queries]


def work(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.strip().upper() not in TRANSACTION_CONTROL]


def within_budget(statements: list[str], budget: int = MAX_STATEMENTS) -> str:
    listing = "\n".join(f"{i:>3}. {sql[:200]}" for i, sql in enumerate(statements, 1))
    counted_ = len(work(statements))
    return f"{counted_} statements besides BEGIN/COMMIT (budget {budget}):\n{listing}"


def api_create(client, email: str, **fields):
    body = {"email": email, "title": "VP Sales", "country": "DE", **fields}
    return client.post("/api/v1/leads", body, content_type="application/json")


def score_of(org, email: str) -> int:
    with tenant_scope(org):
        return Lead.objects.get(email=email).score


# --- the statement budget (PostgreSQL, transactions as in production) ------------------


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_api_create_of_a_new_scored_lead_runs_at_most_3_statements(org, other_org):
    configure(org)
    configure(other_org)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    assert api_create(client, "first@initech.com").status_code == 201  # the caches warm up
    response, statements = counted(
        lambda: api_create(client, "ann@acme-corp.com", activity_kind="demo_request")
    )
    assert response.status_code == 201, response.content
    budget = API_CREATE_STATEMENTS
    assert len(work(statements)) <= budget, within_budget(statements, budget)
    assert not any("TEMPORARY" in sql or "SAVEPOINT" in sql for sql in statements)
    assert score_of(org, "ann@acme-corp.com") == 30 + 20 + 15
    with tenant_scope(org):
        lead = Lead.objects.get(email="ann@acme-corp.com")
        assert lead.score_breakdown and ScoreHistory.objects.filter(lead=lead).count() == 1
    with tenant_scope(other_org):
        assert not Lead.objects.exists()


def prepared_new_lead_statements() -> int:
    """Statements prepared on this session that insert a new lead scored."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s AND NOT from_sql",
            ["%nid AS (SELECT nextval(%sc AS MATERIALIZED (%"],
        )
        return cursor.fetchone()[0]


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pooled", [False, True], ids=["direct", "transaction-pooled"])
def test_the_new_lead_statement_is_prepared_once_unless_sessions_are_pooled(org, other_org, pooled):
    """Planning the compiled rules costs PostgreSQL more than running them, so
    the statement that inserts and scores a new lead is prepared on the
    connection (leadflow.core.server_prepared) and reused; behind transaction
    pooling (no session of one's own) it is sent whole, values written in."""
    configure(org)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    saved = connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    connection.close()  # a new session: no statement prepared yet
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = pooled
    try:
        for n in range(3):
            assert api_create(client, f"p{n}@initech.com").status_code == 201
            assert score_of(org, f"p{n}@initech.com") == 30 + 20
        assert prepared_new_lead_statements() == (0 if pooled else 1)
    finally:
        connection.close()
        connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = saved


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_processing_a_hosted_form_submission_runs_at_most_5_statements(org, other_org):
    configure(org)
    configure(other_org)
    form = CaptureFormFactory(organization=org, activity_kind=ActivityKind.DEMO_REQUEST)
    CaptureFormFieldFactory(
        form=form, key="email", field_type=FieldType.EMAIL, maps_to="email", required=True
    )
    CaptureFormFieldFactory(form=form, key="title", maps_to="title")
    CaptureFormFieldFactory(form=form, key="country", maps_to="country")
    meta = capture.SubmissionMeta(page_url="https://initech.example/pricing?utm_source=ads")
    with tenant_scope(org):
        first, second = (
            capture.submission_store(
                form=form, payload={"email": email, "title": "VP", "country": "DE"}, meta=meta
            )
            for email in ("first@initech.com", "bob@acme-corp.com")
        )
        capture.submission_process(submission_id=first.pk)  # the caches warm up
        _, statements = counted(lambda: capture.submission_process(submission_id=second.pk))
        second.refresh_from_db()
        assert second.outcome == "created" and second.processed_at is not None
        kinds = sorted(second.lead.activities.values_list("kind", flat=True))
    assert len(work(statements)) <= FORM_STATEMENTS, within_budget(statements, FORM_STATEMENTS)
    assert not any("TEMPORARY" in sql for sql in statements)
    assert kinds == ["demo_request", "page_view"]
    # The visit is scored with the submission: 15 points per matching activity kind rule
    # (once-rule: the newest match counts once).
    assert score_of(org, "bob@acme-corp.com") == 30 + 20 + 15


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_logging_one_activity_runs_at_most_5_statements(org, other_org):
    configure(org)
    configure(other_org)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    assert api_create(client, "ann@acme-corp.com").status_code == 201
    body = {
        "activities": [
            {
                "lead": {"email": "ann@acme-corp.com"},
                "kind": "page_view",
                "occurred_at": timezone.now().isoformat(),  # no decay yet
            }
        ]
    }
    post = lambda: client.post("/api/v1/activities", body, content_type="application/json")  # noqa: E731
    response, statements = counted(post)
    assert response.status_code == 200 and response.json()["created"] == 1
    budget = ACTIVITY_STATEMENTS
    assert len(work(statements)) <= budget, within_budget(statements, budget)
    assert not any("TEMPORARY" in sql for sql in statements)
    assert score_of(org, "ann@acme-corp.com") == 30 + 20 + 15


@pytest.mark.django_db
def test_a_lead_crossing_the_threshold_is_still_routed(org, other_org):
    """MQL crossing and routing behave as before on the single-lead path."""
    configure(org)
    with tenant_scope(org):
        services.settings_save(
            settings=ScoringSettings.objects.get(), actor=None
        )  # defaults, threshold 100
        rule = ScoringRule.objects.get(field="title")
        rule.points = 90
        services.rule_save(rule=rule, actor=None)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    response = api_create(client, "ann@acme-corp.com", activity_kind="demo_request")
    assert response.status_code == 201
    with tenant_scope(org):
        lead = Lead.objects.get(email="ann@acme-corp.com")
        assert (lead.score, lead.mql_eligible, lead.stage) == (125, True, "mql")
        assert Assignment.objects.filter(lead=lead).exists()
        # The answer shows the lead as it is after routing, not as first written.
        assert response.json()["lead"]["owner_id"] == lead.owner_id is not None


# --- the single path scores as the set-based path does ---------------------------------


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
@pytest.mark.django_db
def test_single_path_stores_what_the_batch_path_stores(org, other_org, scenario):
    with transaction.atomic():
        try:
            with tenant_scope(org):
                compare_paths(org, scenario)
        finally:
            transaction.set_rollback(True)


def stored_state(org):
    leads = {row["id"]: row for row in Lead.objects.values("id", *STORED)}
    history = sorted(
        ScoreHistory.objects.values_list(
            "lead_id", "score", "fit_score", "engagement_score", "grade", "band",
            "mql_eligible", "previous_grade", "previous_band", "previous_mql_eligible",
        )
    )  # fmt: skip
    return leads, history


def compare_paths(org, scenario):
    _, lead_inputs = build(org, scenario)
    ids = [lead["id"] for lead in lead_inputs]
    before = transaction.savepoint()
    single_up, single_down = [], []
    for lead_id in ids:  # one lead at a time, as captures and API calls do
        result = engine.rescore_leads(organization_id=org.pk, lead_ids=[lead_id], now=NOW)
        single_up += result.crossed_up
        single_down += result.crossed_down
    single = stored_state(org)
    transaction.savepoint_rollback(before)
    batch_result = engine.rescore(organization_id=org.pk, lead_ids=ids, now=NOW)
    batch = stored_state(org)
    assert single == batch
    assert sorted(single_up) == sorted(batch_result.crossed_up)
    assert sorted(single_down) == sorted(batch_result.crossed_down)


# --- the configuration cache -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("stale_copy", ["process memo", "shared cache"])
def test_the_next_create_after_a_rule_change_uses_the_new_points(org, other_org, stale_copy):
    configure(org)
    configure(other_org)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    api_create(client, "before@acme-corp.com")
    assert score_of(org, "before@acme-corp.com") == 50
    # Another process keeps the configuration it cached (in its memory, or it
    # finds the copy in the shared cache)...
    stale = config_cache._local[org.pk]
    with tenant_scope(org):
        rule = ScoringRule.objects.get(field="title")
        rule.points = 70
        services.rule_save(rule=rule, actor=None)  # ...while this one changes a rule
    if stale_copy == "process memo":
        config_cache._local[org.pk] = stale
    else:
        config_cache.forget_local()
        key = config_cache.CACHE_KEY.format(organization_id=org.pk)
        assert config_cache.cache.get(key)[0] == stale[0]  # still there, now outdated
    api_create(client, "after@acme-corp.com")
    assert score_of(org, "after@acme-corp.com") == 90
    assert config_cache._local[org.pk][0] != stale[0]  # reloaded under the new version


@pytest.mark.django_db
def test_a_cached_configuration_is_used_until_the_version_changes(org, other_org):
    """Proves the cache is real: a rule written behind the services' back is
    not seen (the services are the only writers), until a change is recorded."""
    configure(org)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    api_create(client, "one@acme-corp.com")
    ScoringRuleFactory(organization=org, field="city", operator="eq", value="Berlin", points=5)
    api_create(client, "two@acme-corp.com", city="Berlin")
    assert score_of(org, "two@acme-corp.com") == 50
    with tenant_scope(org):
        engine.config_changed(organization_id=org.pk)
    api_create(client, "three@acme-corp.com", city="Berlin")
    assert score_of(org, "three@acme-corp.com") == 55


def _rule(org):
    return ScoringRule.objects.get(field="title")


CONFIG_WRITES = {
    "rule_save": lambda org: services.rule_save(
        rule=ScoringRule(
            organization=org,
            name="New",
            kind=RuleKind.FIT,
            field="city",
            operator="eq",
            value="x",
            points=3,
        ),
        actor=None,
    ),
    "rule_set_active": lambda org: services.rule_set_active(
        rule=_rule(org), active=False, actor=None
    ),
    "rule_delete": lambda org: services.rule_delete(rule=_rule(org), actor=None),
    "settings_save": lambda org: services.settings_save(
        settings=ScoringSettings(
            pk=ScoringSettings.objects.get().pk, organization=org, mql_threshold=77
        ),
        actor=None,
    ),
    "gate_save": lambda org: services.gate_save(
        gate=GatingRule(organization=org, reason="r", field="country", operator="eq", value="FR"),
        actor=None,
    ),
    "group_save": lambda org: services.group_save(
        group=ScoreGroup(organization=org, name="G", cap=5),
        actor=None,
    ),
    "post_qualification_mark": lambda org: services.post_qualification_mark(
        organization_id=org.pk, fields=["title"], actor=None
    ),
    "starter_rules_install": lambda org: (
        ScoringRule.objects.all().delete(),
        services.starter_rules_install(organization_id=org.pk),
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("write", sorted(CONFIG_WRITES))
def test_every_configuration_write_retires_the_cached_configuration(org, other_org, write):
    configure(org)
    configure(other_org)
    with tenant_scope(other_org):
        other_version = ScoringSettings.objects.get().config_version
    with tenant_scope(org):
        before = ScoringSettings.objects.get().config_version
        CONFIG_WRITES[write](org)
        assert ScoringSettings.objects.get().config_version != before
    with tenant_scope(other_org):
        assert ScoringSettings.objects.get().config_version == other_version


@pytest.mark.django_db
def test_version_apply_and_rollback_retire_the_cached_configuration(org, admin):
    from scoring import versions

    configure(org)
    with tenant_scope(org):
        draft = versions.version_from_starter(
            organization_id=org.pk, business_type="b2b", actor=admin
        )
        first = ScoringSettings.objects.get().config_version
        versions.version_apply(version=draft, actor=admin)
        applied = ScoringSettings.objects.get().config_version
        versions.version_rollback(actor=admin)
        rolled_back = ScoringSettings.objects.get().config_version
    assert len({first, applied, rolled_back}) == 3


@pytest.mark.django_db
def test_an_old_settings_instance_saved_later_keeps_the_new_version(org):
    with tenant_scope(org):
        old = ScoringSettings.objects.create(organization=org)
        engine.config_changed(organization_id=org.pk)
        current = ScoringSettings.objects.get().config_version
        old.mql_threshold = 80
        old.save()
        assert ScoringSettings.objects.get().config_version == current


@pytest.mark.django_db
def test_a_cache_outage_scores_from_the_database(org, other_org, monkeypatch):
    configure(org)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(config_cache.cache, "get", down)
    monkeypatch.setattr(config_cache.cache, "set", down)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    assert api_create(client, "ann@acme-corp.com").status_code == 201
    assert score_of(org, "ann@acme-corp.com") == 50
    with tenant_scope(org):
        assert FormSubmission.objects.get().outcome == "created"


@pytest.mark.django_db
def test_rule_values_with_quotes_percents_and_braces_score_on_the_single_path(org, other_org):
    """The few-lead SELECT has the configuration's values written into its text
    (PostgreSQL): a value with SQL and placeholder characters matches as text."""
    configure(other_org)
    with tenant_scope(org):
        ScoringSettings.objects.get_or_create(organization=org)
    hostile = "50% o'brien {x} %s"
    ScoringRuleFactory(organization=org, field="title", operator="eq", value=hostile, points=7)
    ScoringRuleFactory(organization=org, field="city", operator="contains", value="%", points=3)
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    assert api_create(client, "one@acme-corp.com", title=hostile).status_code == 201
    assert api_create(client, "two@acme-corp.com", title="50% obrien").status_code == 201
    assert api_create(client, "three@acme-corp.com", city="100% Berlin").status_code == 201
    assert score_of(org, "one@acme-corp.com") == 7
    assert score_of(org, "two@acme-corp.com") == 0
    assert score_of(org, "three@acme-corp.com") == 3
    with tenant_scope(org):
        lead = Lead.objects.get(email="one@acme-corp.com")
        engine.rescore(organization_id=org.pk, lead_ids=[lead.pk])  # the set-based path agrees
        lead.refresh_from_db()
        assert lead.score == 7


# --- a new lead scored by the statement that inserts it -----------------------------------


def unborn_scores(org, lead_id: int) -> list[tuple] | None:
    """The scorer's SELECT over a lead read as if not inserted yet (nl, na and
    nid stand in for the lead's row, its activities and its id)."""
    from scoring.engine.cache import cached_config
    from scoring.engine.rules import new_lead_sql

    _version, config = cached_config(organization_id=org.pk)
    unborn = new_lead_sql(config, NOW)
    if unborn is None:
        return None
    sql, times = unborn
    ctes = (
        "WITH nid AS (SELECT %s::bigint AS id),"
        " nl AS (SELECT * FROM leads_lead WHERE id = %s),"
        " na AS (SELECT * FROM leads_activity WHERE lead_id = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{ctes} SELECT * FROM ({sql}) s", [lead_id] * 3 + times)
        return cursor.fetchall()


def few_leads_scores(org, lead_id: int) -> list[tuple]:
    from scoring.engine.cache import cached_config
    from scoring.engine.rules import few_leads_sql

    _version, config = cached_config(organization_id=org.pk)
    sql, params = few_leads_sql(config, [lead_id], NOW, bound=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) s", params)
        return cursor.fetchall()


@on_postgres
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
@pytest.mark.django_db
def test_a_lead_scored_unborn_gets_the_scores_of_the_few_leads_select(org, other_org, scenario):
    """new_lead_sql is the few-lead SELECT reading the lead from CTEs: fed the
    stored lead's own row and activities, it answers exactly as the SELECT over
    the stored lead; it declines (None) only when the SELECT reads another
    table (a rule on the lead's company)."""
    with transaction.atomic():
        try:
            with tenant_scope(org):
                _, lead_inputs = build(org, scenario)
                for lead in lead_inputs:
                    unborn = unborn_scores(org, lead["id"])
                    if unborn is None:
                        assert reads_another_table(org)
                        continue
                    assert unborn == few_leads_scores(org, lead["id"])
        finally:
            transaction.set_rollback(True)


def reads_another_table(org) -> bool:
    """Whether the compiled SELECT reads a table besides leads and activities."""
    from scoring.engine.cache import cached_config

    compiled = cached_config(organization_id=org.pk)[1].compiled or []
    text = "".join(part for part in compiled if isinstance(part, str))
    tables = set(re.findall(r'(?:FROM|JOIN) ("[a-z_]+")', text))
    return bool(tables - {'"leads_lead"', '"leads_activity"'})


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_new_leads_scored_by_their_insert_store_what_a_rescore_stores(org, other_org):
    """Captures of new leads (fit, custom field, grouped and capped rules,
    engagement with decay and repeats, a gate) are written once, scored: the
    statement that inserts them runs no separate scoring statement, and a
    set-based rescore afterwards changes nothing, history included."""
    configure(org)
    group = ScoreGroup.objects.create(organization=org, name="Seniority", cap=35)
    ScoringRuleFactory(organization=org, field="title", operator="contains", value="head",
                       points=25, group=group)  # fmt: skip
    ScoringRuleFactory(organization=org, field="custom.plan", operator="eq", value="50% off",
                       points=7)  # fmt: skip
    ScoringRuleFactory(organization=org, kind=RuleKind.ENGAGEMENT, field="", operator="",
                       value="", activity_kinds=[ActivityKind.PAGE_VIEW], points=4,
                       per_occurrence=True, max_points=6, half_life_days=10)  # fmt: skip
    GatingRule.objects.create(organization=org, reason="Competitor", field="email_domain",
                              operator="eq", value="globex.example")  # fmt: skip
    with tenant_scope(org):
        settings_row = ScoringSettings.objects.get(organization=org)
        settings_row.mql_threshold = 40
        settings_row.save()
    rows = [
        {"email": "vp@initech.com", "title": "VP Head of Sales", "country": "DE"},
        {"email": "ann@initech.com", "title": "Analyst", "custom": {"plan": "50% off"}},
        {"email": "rival@globex.example", "title": "VP Sales", "country": "DE"},
        {"email": "nobody@example.org"},
    ]
    touch = Touch(
        activity_kind=ActivityKind.DEMO_REQUEST,
        also=(ExtraActivity(ActivityKind.PAGE_VIEW), ExtraActivity(ActivityKind.PAGE_VIEW)),
    )
    with tenant_scope(org):
        for row in rows:
            with CaptureQueriesContext(connection) as ctx:
                lead_ingest_batch(organization_id=org.pk, rows=[row], touch=touch)
            statements = [q["sql"] for q in ctx.captured_queries]
            assert not any("UPDATE leads_lead SET fit_score" in sql for sql in statements)
        columns = [c for c in STORED if c != "scored_at"]  # a rescore stamps its own time
        scored = list(Lead.objects.order_by("id").values("email", *columns))
        history = sorted(ScoreHistory.objects.values_list("lead_id", "score", "grade", "band"))
        assert len(scored) == 4 and len(history) == 4
        by_email = {row["email"]: row for row in scored}
        assert by_email["vp@initech.com"]["mql_eligible"]  # crossed at insert: routed
        assert by_email["rival@globex.example"]["gating_reason"] == "Competitor"
        assert by_email["ann@initech.com"]["score"] > by_email["nobody@example.org"]["score"]
        assert Assignment.objects.filter(lead__email="vp@initech.com").exists()
        result = engine.rescore(organization_id=org.pk)
        assert result.crossed_up == [] and result.crossed_down == []
        assert list(Lead.objects.order_by("id").values("email", *columns)) == scored
        after = sorted(ScoreHistory.objects.values_list("lead_id", "score", "grade", "band"))
        assert after == history
    with tenant_scope(other_org):
        assert not Lead.objects.exists()


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rule_on_the_company_scores_the_new_lead_after_its_insert(org, other_org):
    """A company the same statement inserts is not visible to it: with a rule
    on the lead's company the new lead is inserted, then scored."""
    configure(org)
    ScoringRuleFactory(organization=org, field="company.industry", operator="eq",
                       value="software", points=9)  # fmt: skip
    touch = Touch(activity_kind=ActivityKind.DEMO_REQUEST)
    row = {"email": "ada@initech.com", "title": "VP", "company_name": "Initech",
           "industry": "Software"}  # fmt: skip
    with tenant_scope(org), CaptureQueriesContext(connection) as ctx:
        lead_ingest_batch(organization_id=org.pk, rows=[row], touch=touch)
    assert any("UPDATE leads_lead SET fit_score" in q["sql"] for q in ctx.captured_queries)
    assert score_of(org, "ada@initech.com") == 30 + 9 + 15


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_a_value_too_long_for_its_column_is_refused_not_cut_short(org, other_org):
    """The scored INSERT reads the lead's values through typed CTEs: a text
    longer than its column is refused as Django's own INSERT refuses it."""
    from django.db import DataError

    configure(org)
    touch = Touch(source="s" * 40, activity_kind=ActivityKind.DEMO_REQUEST)
    with tenant_scope(org), pytest.raises(DataError), transaction.atomic():
        lead_ingest_batch(organization_id=org.pk, rows=[{"email": "a@initech.com"}], touch=touch)
