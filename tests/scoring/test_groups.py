"""Score groups: create, edit, delete from the settings page (admins only)."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from scoring.models import RescoreJob, RuleChange, ScoreGroup
from tests.factories import ScoreGroupFactory, ScoringRuleFactory


def url(name, org, **kwargs):
    return reverse(f"scoring:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.mark.django_db
def test_create_edit_delete_group(admin_client, org, other_org):
    ScoreGroupFactory(organization=other_org, name="Web")  # same name elsewhere is fine
    response = admin_client.post(url("group_create", org), {"name": "Web", "cap": "30"})
    assert response.status_code == 302
    with tenant_scope(org):
        group = ScoreGroup.objects.get()
        assert (group.name, group.cap) == ("Web", 30)
        assert RuleChange.objects.filter(action="created").exists()
        assert RescoreJob.objects.exists()
    dup = admin_client.post(url("group_create", org), {"name": "web"})
    assert dup.status_code == 400 and "already exists" in dup.content.decode()
    bad = admin_client.post(url("group_edit", org, group_id=group.pk), {"name": "Web", "cap": "-4"})
    assert bad.status_code == 400
    rule = ScoringRuleFactory(organization=org, group=group)
    admin_client.post(url("group_delete", org, group_id=group.pk))
    with tenant_scope(org):
        rule.refresh_from_db()
        assert not ScoreGroup.objects.exists()
    assert rule.group is None  # the rule stays, ungrouped


@pytest.mark.django_db
def test_settings_page_lists_groups(admin_client, org):
    ScoreGroupFactory(organization=org, name="Email", cap=15)
    html = admin_client.get(url("settings", org)).content.decode()
    assert "Email" in html and "capped at 15 points" in html
