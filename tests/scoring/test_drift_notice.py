"""Drift notices: when the beat check finds that the learned rules in use rank
the leads they were not learned from clearly worse, the organization's admins
get one email with a direct link, once per drift episode (an open notice is a
unique marker); a new episode starts when the rules change or recover."""

from __future__ import annotations

import smtplib

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from scoring import engine, selectors, tasks, versions
from scoring.models import DriftNotice
from tests.scoring.test_learning import make_leads, small_minimum  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db


@pytest.fixture
def drifted(org, other_org, admin, marketer, other_admin, make_member):
    """Learned rules in use; then 300 outcomes where the opposite buys."""
    make_member(org, "admin", email="gone@acme.example", is_active=False)
    with tenant_scope(org):
        make_leads(org, 400, seed=6)
        draft = versions.version_learn(organization_id=org.pk, actor=None)
        versions.version_apply(version=draft, actor=None)
        engine.rescore(organization_id=org.pk)
        make_leads(org, 300, seed=7, flip=True)
        engine.rescore(organization_id=org.pk)
        assert selectors.drift_check() is not None
    with tenant_scope(other_org):
        make_leads(other_org, 50, seed=1)
    return draft


def beat(capture) -> None:
    with capture(execute=True):
        tasks.retrain_due()


def test_admins_are_emailed_once_per_drift_episode(
    org, other_org, drifted, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://app.leadflow.example"
    beat(django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["admin@acme.example"]  # not the marketer, the inactive admin, Globex
    assert "rank buyers worse" in mail.subject and "Acme" in mail.subject
    link = "https://app.leadflow.example" + reverse("scoring:learning", args=[org.slug])
    assert link in mail.body and f"version {drifted.number}" in mail.body

    beat(django_capture_on_commit_callbacks)  # still drifting: no second mail
    assert len(mailoutbox) == 1
    with tenant_scope(org):
        notice = DriftNotice.objects.get()
        assert notice.emailed_at and not notice.resolved_at and notice.version == drifted
        with pytest.raises(IntegrityError), transaction.atomic():
            DriftNotice.objects.create(
                organization=org, version=drifted, learned_auc=0.9, now_auc=0.5, leads=1
            )
        # The rules change (rollback): the episode ends ...
        versions.version_rollback(actor=None)
    beat(django_capture_on_commit_callbacks)
    with tenant_scope(org):
        assert DriftNotice.objects.get().resolved_at is not None
        # ... and drifting again is a new episode, told again.
        versions.version_apply(version=drifted, actor=None)
    beat(django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 2
    with tenant_scope(org):
        assert DriftNotice.objects.filter(resolved_at__isnull=True).count() == 1
    with tenant_scope(other_org):
        assert not DriftNotice.objects.exists()


def test_a_refused_drift_email_is_recorded_on_the_learning_page(
    org, drifted, admin_client, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(**kwargs):
        raise smtplib.SMTPRecipientsRefused({"admin@acme.example": (550, b"no such user")})

    monkeypatch.setattr("django.core.mail.send_mail", refuse)
    beat(django_capture_on_commit_callbacks)
    with tenant_scope(org):
        notice = DriftNotice.objects.get()
        assert notice.emailed_at and "550 no such user" in notice.email_error
    page = admin_client.get(reverse("scoring:learning", kwargs={"org_slug": org.slug}))
    assert b'data-testid="drift-email-error"' in page.content and b"550" in page.content
    assert not mailoutbox
