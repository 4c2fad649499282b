"""Rule sets as CSV: exported from one organization, imported into another as
a draft, applied there with the same effect; bad files are refused by row."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from scoring import services, versions
from scoring.models import RuleSetVersion, ScoringRule, VersionStatus
from scoring.transfer import RuleImportError, parse_rules_csv
from tests.factories import ScoringRuleFactory

pytestmark = pytest.mark.django_db

FIELDS = ("name", "kind", "points", "field", "operator", "value", "activity_kinds",
          "min_count", "window_days", "per_occurrence", "max_points", "first_only",
          "half_life_days", "is_active")  # fmt: skip


def rules_of(org) -> list[tuple]:
    with tenant_scope(org):
        return sorted(
            (
                *ScoringRule.objects.filter(pk=r.pk).values_list(*FIELDS).get(),
                r.group and r.group.name,
            )
            for r in ScoringRule.objects.select_related("group")
        )


def test_rules_exported_by_one_organization_are_imported_and_applied_by_another(
    org, other_org, admin_client, other_admin, client_for
):
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        ScoringRuleFactory(
            organization=org, kind="fit", name="=cmd|' /C calc'!A0", field="custom.tier",
            operator="in", value=["gold", "platinum"], points=12,
        )  # fmt: skip
    exported = admin_client.get(reverse("scoring:rules_export", kwargs={"org_slug": org.slug}))
    assert exported.status_code == 200 and exported["Content-Type"] == "text/csv"
    assert b"'=cmd" in exported.content  # no formula for spreadsheets
    other = client_for(other_admin)
    with tenant_scope(other_org):
        ScoringRule.objects.all().delete()
    upload = SimpleUploadedFile("acme-rules.csv", exported.content, content_type="text/csv")
    response = other.post(
        reverse("scoring:rules_import", kwargs={"org_slug": other_org.slug}), {"file": upload}
    )
    assert response.status_code == 302
    with tenant_scope(other_org):
        draft = RuleSetVersion.objects.get()
        assert draft.status == VersionStatus.DRAFT and draft.source == "import"
        assert not ScoringRule.objects.exists()  # never applied silently
        versions.version_apply(version=draft, actor=None)
    assert rules_of(other_org) == rules_of(org)
    with tenant_scope(org):
        assert not RuleSetVersion.objects.exists()


def test_a_bad_rules_file_is_refused_row_by_row(org, other_org, admin):
    header = "name,kind,points,field,operator,value\n"
    bad = (
        header
        + 'Fine,fit,5,title,contains,"""vp"""\n'
        + 'Typo,fitt,5,title,eq,"""x"""\n'
        + 'Text as number,fit,5,company_size,contains,"""big"""\n'
        + 'Tags,fit,-20,custom.tags,eq,"""Ringing"""\n'
    )
    with pytest.raises(RuleImportError) as refused:
        parse_rules_csv(bad, refused={"custom.tags"})
    message = str(refused.value)
    assert message.startswith("Nothing imported.")
    assert "row 3: kind must be" in message and "row 4:" in message
    assert "row 5: custom.tags is filled in by sales" in message and "row 2" not in message
    with pytest.raises(RuleImportError, match="not a rules file"):
        parse_rules_csv("email,name\n", refused=set())
