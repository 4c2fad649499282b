"""Weekly digest: opt-in toggle, Monday-morning sending, once per member and week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from pipeline.models import StageTransition
from reports.digest import DigestDeferred, digests_send, last_full_week
from reports.models import DigestSend, DigestSubscription
from reports.tasks import send_weekly_digests
from tests.factories import LeadFactory

UTC = dt.UTC
MONDAY_8 = dt.datetime(2025, 3, 10, 8, 0, tzinfo=UTC)  # a Monday


def subscribe(client, org):
    url = reverse("reports:digest_toggle", kwargs={"org_slug": org.slug})
    return client.post(url, {"next": f"/o/{org.slug}/reports/sales/"}, HTTP_HX_REQUEST="true")


def test_toggle_turns_the_digest_on_and_off(org, other_org, admin, admin_client):
    response = subscribe(admin_client, org)
    assert response.status_code == 200 and b"Weekly digest on" in response.content
    with tenant_scope(org):
        assert DigestSubscription.objects.get(membership=admin).weekly is True
    url = reverse("reports:digest_toggle", kwargs={"org_slug": org.slug})
    plain = admin_client.post(url, {"next": "https://evil.example/"})
    assert plain.status_code == 302 and plain.url == f"/o/{org.slug}/reports/sales/"
    with tenant_scope(org):
        assert DigestSubscription.objects.get(membership=admin).weekly is False
    assert admin_client.get(url).status_code == 405


def test_last_full_week():
    assert last_full_week(MONDAY_8) == dt.date(2025, 3, 3)
    assert last_full_week(dt.datetime(2025, 3, 16, 23, tzinfo=UTC)) == dt.date(2025, 3, 3)


def test_sends_once_on_monday_with_the_weeks_numbers(
    org, other_org, admin, marketer, admin_client, other_admin, client_for
):
    subscribe(admin_client, org)
    subscribe(client_for(other_admin), other_org)
    with tenant_scope(org):
        for day in (3, 4, 5):  # three leads created last week, two MQLs; one the week before
            lead = LeadFactory(organization=org)
            type(lead).objects.filter(pk=lead.pk).update(
                created_at=dt.datetime(2025, 3, day, 12, tzinfo=UTC)
            )
        for day in (4, 25):
            StageTransition.objects.create(
                organization=org,
                lead=lead,
                to_stage="mql",
                occurred_at=dt.datetime(2025, 3 if day == 4 else 2, day, tzinfo=UTC),
            )
        assert digests_send(organization_id=org.pk, now=MONDAY_8 - dt.timedelta(hours=2)) == 0
        assert digests_send(organization_id=org.pk, now=MONDAY_8 + dt.timedelta(days=1)) == 0
        assert digests_send(organization_id=org.pk, now=MONDAY_8) == 1
        assert digests_send(organization_id=org.pk, now=MONDAY_8) == 0  # at most once
        assert DigestSend.objects.get().week_start == dt.date(2025, 3, 3)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [admin.user.email]  # the marketer did not opt in
    assert "03 Mar–09 Mar 2025" in email.subject
    assert "New leads: 3 (week before: 0" in email.body
    assert "MQLs: 1 (week before: 1, +0%)" in email.body
    assert f"/o/{org.slug}/reports/" in email.body


def test_failed_smtp_releases_the_claim(org, other_org, admin, admin_client, monkeypatch):
    subscribe(admin_client, org)

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("reports.digest.send_mail", broken)
    with tenant_scope(org), pytest.raises(DigestDeferred) as deferred:
        digests_send(organization_id=org.pk, now=MONDAY_8)
    assert isinstance(deferred.value.__cause__, ConnectionRefusedError)  # the task retries it
    with tenant_scope(org):
        assert not DigestSend.objects.exists()  # the next hourly run tries again


def test_beat_fans_out_per_organization(org, other_org, make_member, client_for, settings):
    rep = make_member(org, Role.SALES_REP, email="rep@acme.example")
    subscribe(client_for(rep), org)
    assert settings.CELERY_BEAT_SCHEDULE["reports-weekly-digest"]["task"] == (
        "reports.send_weekly_digests"
    )
    assert send_weekly_digests() >= 2  # one job per organization, run eagerly


def test_weekly_revenue_keeps_each_currency(org, other_org, admin):
    """A 48,000 EUR and a 1,000 USD win: two figures, never 49,000."""
    from reports.digest import week_query, weekly_kpis
    from tests.factories import OpportunityFactory

    with tenant_scope(other_org):
        OpportunityFactory(
            lead=LeadFactory(organization=other_org, stage="won"),
            amount=777,
            currency="USD",
            status="won",
            closed_at=dt.datetime(2025, 3, 5, tzinfo=UTC),
        )
    with tenant_scope(org):
        for amount, currency in ((1000, "USD"), (48000, "EUR")):
            OpportunityFactory(
                lead=LeadFactory(organization=org, stage="won"),
                amount=amount,
                currency=currency,
                status="won",
                closed_at=dt.datetime(2025, 3, 5, tzinfo=UTC),
            )
        query = week_query(organization=org, week_start=dt.date(2025, 3, 3))
        kpis = {
            k.label: k.value for k in weekly_kpis(organization_id=org.pk, query=query, now=MONDAY_8)
        }
    assert kpis["Won revenue (EUR)"] == 48000 and kpis["Won revenue (USD)"] == 1000
    assert "Won revenue" not in kpis and kpis["Deals won"] == 2
