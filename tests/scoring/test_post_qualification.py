"""Post-qualification fields (filled in by sales): refused in scoring rules,
their existing rules switched off, never scored by the engine; per tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from scoring import engine, services
from scoring.forms import FitRuleForm, GateForm
from scoring.models import (
    GatingRule,
    PostQualificationField,
    RuleChange,
    RuleKind,
    ScoringRule,
)
from tests.factories import LeadFactory, ScoringRuleFactory

pytestmark = pytest.mark.django_db

TAGS = {"field": "custom", "custom_key": "tags", "operator": "eq", "value": "Ringing"}


def test_a_rule_on_a_post_qualification_field_is_refused(org, other_org, admin):
    with tenant_scope(org):
        services.post_qualification_mark(
            organization_id=org.pk, fields=["custom.tags", "title"], actor=admin
        )
        form = FitRuleForm({**TAGS, "points": "-20"}, instance=ScoringRule(organization=org))
        assert not form.is_valid()
        assert "filled in by sales" in form.errors["custom_key"][0]
        title = {"field": "title", "operator": "contains", "value": "vp", "points": "5"}
        form = FitRuleForm(title, instance=ScoringRule(organization=org))
        assert "filled in by sales" in form.errors["field"][0]
        # Gating is not scoring: a gate may still block on what sales wrote.
        gate = GateForm({**TAGS, "reason": "Wrong number"}, instance=GatingRule(organization=org))
        assert gate.is_valid(), gate.errors
    with tenant_scope(other_org):
        form = FitRuleForm({**TAGS, "points": "-20"}, instance=ScoringRule(organization=other_org))
        assert form.is_valid(), form.errors


def test_marking_switches_existing_rules_off_and_the_engine_never_scores_them(
    org, other_org, admin
):
    with tenant_scope(org):
        lead = LeadFactory(organization=org, custom={"tags": "Ringing"})
        rule = ScoringRuleFactory(
            organization=org, kind=RuleKind.FIT, field="custom.tags", operator="eq",
            value="ringing", points=30,
        )  # fmt: skip
        engine.rescore(organization_id=org.pk)
        assert Lead.objects.get(pk=lead.pk).score == 30
        services.post_qualification_mark(
            organization_id=org.pk, fields=["custom.tags"], actor=admin
        )
        rule.refresh_from_db()
        assert not rule.is_active
        assert RuleChange.objects.filter(rule=rule, action="disabled").exists()
        # A rule switched back on some other way (shell, admin) still never scores.
        ScoringRule.objects.filter(pk=rule.pk).update(is_active=True)
        engine.rescore(organization_id=org.pk)
        assert Lead.objects.get(pk=lead.pk).score == 0
    with tenant_scope(other_org):
        other = LeadFactory(organization=other_org, custom={"tags": "Ringing"})
        ScoringRuleFactory(
            organization=other_org, kind=RuleKind.FIT, field="custom.tags", operator="eq",
            value="ringing", points=30,
        )  # fmt: skip
        engine.rescore(organization_id=other_org.pk)
        assert Lead.objects.get(pk=other.pk).score == 30


def test_admin_marks_and_unmarks_a_field_on_the_settings_page(org, other_org, admin_client):
    url = reverse("scoring:post_qualification_add", kwargs={"org_slug": org.slug})
    response = admin_client.post(url, {"field": "custom", "custom_key": "lead_quality"})
    assert response.status_code == 302
    with tenant_scope(org):
        marked = PostQualificationField.objects.get()
        assert marked.field == "custom.lead_quality"
    page = admin_client.get(reverse("scoring:settings", kwargs={"org_slug": org.slug}))
    assert "“lead_quality”".encode() in page.content
    bad = admin_client.post(url, {"field": "custom", "custom_key": "Not A Key"}, follow=True)
    assert b"lower-case letters" in bad.content
    kwargs = {"org_slug": org.slug, "post_qual_id": marked.pk}
    remove = reverse("scoring:post_qualification_remove", kwargs=kwargs)
    assert admin_client.post(remove).status_code == 302
    with tenant_scope(org):
        assert not PostQualificationField.objects.exists()
    with tenant_scope(other_org):
        assert not PostQualificationField.objects.exists()
