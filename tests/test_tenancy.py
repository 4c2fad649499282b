"""The tenant wall: another tenant's URL or object is a 404; unscoped queries fail."""

import pathlib
import re

import pytest
from django.apps import apps
from django_scopes import ScopeError, scopes_disabled

from leadflow.core.tenancy import TenantModel
from tests.urlwalk import org_routes, request, sample_values

TENANT_APPS = ["leads", "scoring", "pipeline", "nurture", "reports", "privacy"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def all_tenant_models():
    return [m for m in apps.get_models() if issubclass(m, TenantModel)]


def models_missing_tenant_base(models):
    return [m for m in models if not issubclass(m, TenantModel)]


def test_every_model_in_tenant_apps_has_the_tenant_base():
    models = [m for label in TENANT_APPS for m in apps.get_app_config(label).get_models()]
    assert models_missing_tenant_base(models) == []


def test_the_base_check_catches_a_model_without_it():
    from accounts.models import Organization

    assert models_missing_tenant_base([Organization]) == [Organization]


@pytest.mark.django_db
def test_unscoped_queries_on_tenant_models_raise():
    models = all_tenant_models()
    assert models, "at least Invitation is tenant-owned"
    for model in models:
        with pytest.raises(ScopeError):
            list(model.objects.all())
        with pytest.raises(ScopeError):
            model.objects.filter(pk=1).exists()


ALLOWED_SCOPES_DISABLED = re.compile(
    r"(^|/)(admin\.py|migrations/.*|management/commands/.*|leadflow/middleware\.py)$"
)


def test_scopes_disabled_only_where_allowed():
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "build/")):
            continue
        text = path.read_text(encoding="utf-8")
        if ("scopes_disabled" in text or "_enabled=False" in text) and not (
            ALLOWED_SCOPES_DISABLED.search(rel)
        ):
            offenders.append(rel)
    assert offenders == []


@pytest.mark.django_db
def test_member_of_a_gets_404_for_every_org_b_url(org, other_org, admin, other_admin, client_for):
    client = client_for(admin)
    routes = org_routes()
    assert routes
    for route in routes:
        with scopes_disabled():
            values = sample_values(route, other_org)
        response = request(client, route, route.path(other_org.slug, values))
        assert response.status_code == 404, route.route


@pytest.mark.django_db
def test_org_b_objects_under_org_a_slug_are_404(org, other_org, admin, client_for):
    client = client_for(admin)
    with_params = [r for r in org_routes() if r.params]
    assert with_params
    for route in with_params:
        with scopes_disabled():
            values = sample_values(route, other_org)
        response = request(client, route, route.path(org.slug, values))
        assert response.status_code == 404, route.route


@pytest.mark.django_db
def test_unknown_org_slug_is_404(admin_client):
    assert admin_client.get("/o/no-such-org/").status_code == 404


# Reading past the scope through the base manager is allowed only where a public
# key or a periodic sweep names the tenant (documented at each use).
ALLOWED_BASE_MANAGER = {
    "leads/services/capture.py",
    "leads/services/imports.py",
    "accounts/api_writes.py",  # the periodic purge of expired Idempotency-Key answers
    "privacy/tasks.py",  # the retention trigger: which organizations set a retention
    "nurture/services/inbound.py",  # the inbound-mail webhook's unguessable key
}


def test_base_manager_reads_only_where_allowed():
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "build/")) or "/migrations/" in rel:
            continue
        if "_base_manager" in path.read_text(encoding="utf-8") and rel not in ALLOWED_BASE_MANAGER:
            offenders.append(rel)
    assert offenders == []


def test_only_routes_under_the_org_prefix_name_an_organization():
    """The middleware resolves (and scopes) only paths under ORG_PATH_PREFIX:
    a route elsewhere that took an org_slug would run outside its tenant."""
    from django.urls import URLResolver, get_resolver

    from leadflow.middleware import ORG_PATH_PREFIX

    def routes(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from routes(p.url_patterns, route)
            else:
                yield route

    named = [r for r in routes(get_resolver().url_patterns) if "org_slug" in r]
    assert len(named) > 100
    assert [r for r in named if not ("/" + r).startswith(ORG_PATH_PREFIX)] == []
