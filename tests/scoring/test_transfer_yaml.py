"""Rule sets as YAML beside CSV: the same rules round-trip through either
format, one organization's YAML export is imported and applied by another
with the same effect, and bad files are refused naming each rule's line."""

from __future__ import annotations

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from scoring import services, starters, versions
from scoring.models import RuleSetVersion, ScoringRule
from scoring.transfer import (
    RuleImportError,
    parse_rules_csv,
    parse_rules_yaml,
    rules_csv,
    rules_yaml,
)
from tests.factories import ScoringRuleFactory
from tests.scoring.test_transfer import rules_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key", list(starters.SETS))
def test_rules_round_trip_through_yaml_as_through_csv(key):
    rules = starters.starter_rules(key)
    rules[0] = {**rules[0], "is_active": False, "max_points": 0}
    from_yaml = parse_rules_yaml(rules_yaml(rules), refused=set())
    assert from_yaml == parse_rules_csv(rules_csv(rules), refused=set())
    assert from_yaml == parse_rules_yaml(rules_yaml(from_yaml), refused=set())
    assert [r["points"] for r in from_yaml] == [r["points"] for r in rules]
    assert from_yaml[0]["is_active"] is False and from_yaml[0]["max_points"] == 0


def test_yaml_exported_by_one_organization_is_imported_and_applied_by_another(
    org, other_org, admin_client, other_admin, client_for
):
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        ScoringRuleFactory(
            organization=org, kind="fit", name="Gold: tier", field="custom.tier",
            operator="in", value=["gold", "platinum"], points=12,
        )  # fmt: skip
    exported = admin_client.get(reverse("scoring:rules_export_yaml", kwargs={"org_slug": org.slug}))
    assert exported.status_code == 200 and exported["Content-Type"] == "application/yaml"
    assert 'filename="scoring-rules-acme-' in exported["Content-Disposition"]
    assert len(yaml.safe_load(exported.content)["rules"]) == len(services.STARTER_RULES) + 1
    with tenant_scope(other_org):
        ScoringRule.objects.all().delete()
    upload = SimpleUploadedFile("acme.yaml", exported.content, content_type="application/yaml")
    response = client_for(other_admin).post(
        reverse("scoring:rules_import", kwargs={"org_slug": other_org.slug}), {"file": upload}
    )
    assert response.status_code == 302
    with tenant_scope(other_org):
        draft = RuleSetVersion.objects.get()
        assert not ScoringRule.objects.exists()  # a draft, never applied silently
        versions.version_apply(version=draft, actor=None)
    assert rules_of(other_org) == rules_of(org)
    with tenant_scope(org):
        assert not RuleSetVersion.objects.exists()


BAD = """\
rules:
- name: Fine
  kind: fit
  points: 5
  field: title
  operator: contains
  value: vp
- name: Made-up operator
  kind: fit
  points: 5
  field: title
  operator: resembles
  value: vp
- name: Tags
  kind: fit
  points: -20
  field: custom.tags
  operator: eq
  value: Ringing
- name: Typo
  kind: fitt
  points: 1
- just text
"""


def test_a_bad_yaml_file_is_refused_line_by_line(org, admin_client):
    with pytest.raises(RuleImportError) as refused:
        parse_rules_yaml(BAD, refused={"custom.tags"})
    message = str(refused.value)
    assert message.startswith("Nothing imported.")
    assert "line 8:" in message and "resembles" in message.split("line 8:")[1].split(";")[0]
    assert "line 14: custom.tags is filled in by sales" in message
    assert "line 20: kind must be" in message and "line 23: each rule must be" in message
    assert "line 2:" not in message
    with pytest.raises(RuleImportError, match="not valid YAML on line 4"):
        parse_rules_yaml("rules:\n- name: a\n  kind: [fit\n", refused=set())
    with pytest.raises(RuleImportError, match="needs a `rules:` list"):
        parse_rules_yaml("- name: a\n", refused=set())
    with pytest.raises(RuleImportError, match="unknown keys: colour"):
        parse_rules_yaml("rules:\n- {name: a, kind: fit, points: 1, colour: red}\n", refused=set())
    upload = SimpleUploadedFile("bad.yml", BAD.encode())
    page = admin_client.post(
        reverse("scoring:rules_import", kwargs={"org_slug": org.slug}), {"file": upload},
        follow=True,
    )  # fmt: skip
    assert b"line 14: custom.tags" not in page.content  # not marked as sales' here
    assert b"line 8:" in page.content
    with tenant_scope(org):
        assert not RuleSetVersion.objects.exists()
