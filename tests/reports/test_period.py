"""Parsing the report query string: defaults, previous period, buckets, and every
kind of bad input turned into a clear ReportInputError."""

import datetime as dt

import pytest

from leadflow.core.tenancy import tenant_scope
from reports.formatting import fmt_duration, percentile, rate, roi
from reports.period import ReportInputError, parse_report_query
from tests import factories as f

TODAY = dt.date(2026, 6, 15)


def parse(org, **params):
    with tenant_scope(org):
        return parse_report_query(params, organization=org, today=TODAY)


def test_defaults_are_the_last_30_days_compared_with_the_30_before(org):
    q = parse(org)
    assert (q.start, q.end, q.grain, q.compare) == (dt.date(2026, 5, 17), TODAY, "day", "previous")
    assert (q.previous.start, q.previous.end) == (dt.date(2026, 4, 17), dt.date(2026, 5, 16))
    assert len(q.buckets()) == 30


def test_org_timezone_sets_the_day_boundaries(org):
    org.timezone = "Europe/Berlin"
    org.save()
    q = parse(org, start="2026-03-01", end="2026-03-31", grain="month")
    assert q.start_at == dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)
    assert q.end_at == dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC)  # DST began on the 29th
    assert q.buckets() == [dt.date(2026, 3, 1)]


def test_week_and_month_buckets(org):
    weeks = parse(org, start="2026-03-04", end="2026-03-17", grain="week")
    assert weeks.buckets() == [dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 3, 16)]
    months = parse(org, start="2025-11-20", end="2026-02-02", grain="month")
    assert [b.month for b in months.buckets()] == [11, 12, 1, 2]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "after it ends"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "longer than 3 years"),
        ({"start": "2026-13-01"}, "is not a date"),
        ({"end": "yesterday"}, "is not a date"),
        ({"start": "1900-01-01", "end": "1900-02-01"}, "outside the years"),
        ({"grain": "hour"}, "Unknown grain"),
        ({"compare": "lastyear"}, "Unknown comparison"),
        ({"source": "carrier_pigeon"}, "Unknown source"),
        ({"campaign": "abc"}, "Unknown campaign"),
        ({"campaign": "999999"}, "Unknown campaign"),
        ({"team": "-1"}, "Unknown team"),
        ({"rep": "99999999"}, "Unknown rep"),
        ({"start": "2024-01-01", "end": "2026-06-01", "grain": "day"}, "too many"),
    ],
)
def test_bad_input_is_a_clear_error(org, params, message):
    with pytest.raises(ReportInputError, match=message):
        parse(org, **params)


def test_another_orgs_campaign_team_and_rep_are_unknown(org, other_org):
    campaign = f.CampaignFactory(organization=other_org)
    team = f.TeamFactory(organization=other_org)
    rep = f.MembershipFactory(organization=other_org, role="sales_rep")
    for params in ({"campaign": campaign.pk}, {"team": team.pk}, {"rep": rep.pk}):
        with pytest.raises(ReportInputError, match="Unknown"):
            parse(org, **{k: str(v) for k, v in params.items()})
    own = f.CampaignFactory(organization=org, name="Ours")
    assert parse(org, campaign=str(own.pk)).filter_labels == (("Campaign", "Ours"),)


def test_querystring_round_trips(org):
    q = parse(org, start="2026-03-01", end="2026-03-31", grain="week", source="webinar")
    again = parse(org, **dict(p.split("=") for p in q.querystring().split("&")))
    assert again == q


def test_rates_never_divide_by_zero():
    assert rate(3, 0) is None and rate(0, 4) == 0.0
    assert roi(100, 0) is None and roi(150, 100) == pytest.approx(0.5)
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20], 95) == pytest.approx(19.5)
    assert fmt_duration(None) == "—" and fmt_duration(3 * 3600 + 300) == "3h 5m"
