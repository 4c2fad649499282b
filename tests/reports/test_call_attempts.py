"""Sales dashboard: call attempts before the first connect, per rep (median and
average over the leads first reached in the period), hand-computed; one query
whatever the number of leads; another tenant's calls never count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity
from reports.period import parse_report_query
from reports.selectors.sales import _connect_attempts, sales_dashboard
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
PERIOD = {"start": "2025-03-01", "end": "2025-03-07"}
NOW = dt.datetime(2025, 3, 8, 12, 0, tzinfo=dt.UTC)


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, tzinfo=dt.UTC)


def calls(org, lead, *outcomes_at):
    for outcome, when in outcomes_at:
        properties = {"outcome": outcome} if outcome else {}
        Activity.objects.create(
            organization=org, lead=lead, kind="call", occurred_at=when, properties=properties
        )


def story(org, rep1, rep2):
    with tenant_scope(org):
        lead = lambda owner: LeadFactory(organization=org, owner=owner, stage="sal")  # noqa: E731
        # Two tries, then through (a later connect changes nothing): 2.
        calls(org, lead(rep1), ("no_answer", at(1)), ("voicemail", at(2)),
              ("connected", at(3)), ("connected", at(4)))  # fmt: skip
        calls(org, lead(rep1), ("connected", at(2)))  # the first call got through: 0
        calls(org, lead(rep2), ("no_answer", at(2)), ("no_answer", at(3)))  # never reached
        calls(org, lead(rep2), ("connected", dt.datetime(2025, 2, 1, tzinfo=dt.UTC)),
              ("connected", at(3)))  # first reached before the period  # fmt: skip
        calls(org, lead(rep2), ("", at(1)), ("connected", at(5)))  # no outcome logged: 1
        # A meeting is not a call attempt.
        Activity.objects.create(
            organization=org, lead=lead(rep2), kind="meeting", occurred_at=at(2),
            properties={"outcome": "connected"},
        )  # fmt: skip


def dashboard(org, membership):
    with tenant_scope(org):
        query = parse_report_query(PERIOD, organization=org, membership=membership)
        return sales_dashboard(organization_id=org.pk, query=query, now=NOW)


def test_attempts_before_first_connect_per_rep(org, other_org, admin, make_member):
    rep1 = make_member(org, Role.SALES_REP, email="r1@x.example")
    rep2 = make_member(org, Role.SALES_REP, email="r2@x.example")
    story(org, rep1, rep2)
    story(other_org, *(make_member(other_org, Role.SALES_REP) for _ in range(2)))
    dash = dashboard(org, admin)
    rows = {r.membership_id: r for r in dash.reps}
    assert sorted(rows[rep1.pk].connect_attempts) == [0, 2]
    assert (rows[rep1.pk].attempts_median, rows[rep1.pk].attempts_avg) == (1.0, 1.0)
    assert rows[rep2.pk].connect_attempts == [1]
    assert rows[admin.pk].attempts_median is None
    assert sorted(dash.totals.connect_attempts) == [0, 1, 2]
    assert dash.totals.connected_leads == 3


def test_one_query_whatever_the_leads(
    org, other_org, admin, make_member, django_assert_num_queries
):
    reps = [make_member(org, Role.SALES_REP) for _ in range(2)]
    with tenant_scope(org):
        query = parse_report_query(PERIOD, organization=org, membership=admin)
        for n in (1, 3):
            for _ in range(n):
                story(org, *reps)
            with django_assert_num_queries(1):
                counted = _connect_attempts(query, [r.pk for r in reps])
            assert sum(len(v) for v in counted.values()) == 3 * (1 if n == 1 else 4)


def test_page_shows_the_table(org, other_org, admin_client, make_member):
    rep1 = make_member(org, Role.SALES_REP, email="r1@x.example")
    story(org, rep1, make_member(org, Role.SALES_REP))
    url = reverse("reports:sales", kwargs={"org_slug": org.slug})
    response = admin_client.get(url, PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Call attempts before first connect" in html and rep1.user.display_name in html
    csv = admin_client.get(url, {**PERIOD, "export": "call-attempts"}).content.decode()
    assert f"{rep1.user.display_name},2,1.0000,1.0000" in csv.splitlines(), csv
