"""Retention: raw submissions and junk leads older than the organization's setting
are purged by an idempotent per-organization job, audited with its counts."""

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission, Lead
from privacy.models import PrivacySettings
from privacy.tasks import retention_purge, retention_purge_all
from tests import factories as f

pytestmark = pytest.mark.django_db
OLD = timezone.now() - timedelta(days=40)


def _world(org):
    with tenant_scope(org):
        old_sub = f.FormSubmissionFactory(form__organization=org, processed_at=OLD)
        new_sub = f.FormSubmissionFactory(form__organization=org, processed_at=timezone.now())
        pending = f.FormSubmissionFactory(form__organization=org)  # not processed yet
        FormSubmission.objects.filter(pk__in=[old_sub.pk, pending.pk]).update(received_at=OLD)
        old_junk = f.LeadFactory(organization=org, quality="junk")
        alias = f.LeadFactory(organization=org, merged_into=old_junk)
        new_junk = f.LeadFactory(organization=org, quality="junk")
        old_ok = f.LeadFactory(organization=org)
        Lead.objects.filter(pk__in=[old_junk.pk, alias.pk, old_ok.pk]).update(created_at=OLD)
    return {
        "kept_subs": {new_sub.pk, pending.pk},
        "kept_leads": {new_junk.pk, old_ok.pk},
    }


def test_purge_removes_only_what_is_older_than_the_retention(org, other_org):
    mine, theirs = _world(org), _world(other_org)
    PrivacySettings.objects.create(organization=org, retention_days=30)
    PrivacySettings.objects.create(organization=other_org, retention_days=None)  # keep
    counts = retention_purge.delay(organization_id=org.pk).get()
    assert counts == {"submissions": 1, "junk_leads": 1, "merged_into_junk": 1}
    with tenant_scope(org):
        assert set(FormSubmission.objects.values_list("pk", flat=True)) == mine["kept_subs"]
        assert set(Lead.objects.values_list("pk", flat=True)) == mine["kept_leads"]
        (event,) = AuditEvent.objects.filter(action="privacy.retention_purged")
        assert event.data["counts"] == counts
    # Idempotent: a second run finds nothing and writes no entry.
    assert retention_purge.delay(organization_id=org.pk).get() == {
        "submissions": 0,
        "junk_leads": 0,
        "merged_into_junk": 0,
    }
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="privacy.retention_purged").count() == 1
    with tenant_scope(other_org):
        assert FormSubmission.objects.count() == 3 and Lead.objects.count() == 4
        assert theirs


def test_beat_fans_out_to_organizations_with_a_retention(org, other_org):
    PrivacySettings.objects.create(organization=org, retention_days=30)
    PrivacySettings.objects.create(organization=other_org)
    with mock.patch.object(retention_purge, "apply_async") as send:
        assert retention_purge_all() == 1
    assert send.call_args.kwargs["kwargs"] == {"organization_id": org.pk}


def test_retention_setting_page_saves_and_audits(org, other_org, admin_client):
    url = reverse("privacy:index", kwargs={"org_slug": org.slug})
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"retention_days": "0"}).status_code == 400
    admin_client.post(url, {"retention_days": "90"})
    with tenant_scope(org):
        assert PrivacySettings.objects.get().retention_days == 90
        (event,) = AuditEvent.objects.filter(action="privacy.settings_changed")
        assert event.data == {"retention_days": 90, "before": None}
    with tenant_scope(other_org):
        assert not PrivacySettings.objects.exists()
