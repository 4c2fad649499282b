"""API keys: shown once, stored hashed, revocable, last use recorded sparingly."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.apikeys import (
    MAX_ACTIVE_KEYS,
    ApiKeyError,
    apikey_authenticate,
    apikey_create,
    apikey_revoke,
)
from accounts.models import ApiKey
from tests.factories import api_key_for

LEADS_API = "/api/v1/leads"


def list_url(org):
    return reverse("accounts:apikey_list", kwargs={"org_slug": org.slug})


def revoke_url(org, key):
    return reverse("accounts:apikey_revoke", kwargs={"org_slug": org.slug, "apikey_id": key.pk})


def the_key(full_key: str) -> ApiKey:
    return ApiKey.objects.get(prefix=full_key.split("_")[1])


# --- Services -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_is_returned_once_and_only_its_hash_is_stored(org, admin):
    key, full = apikey_create(organization=org, name=" Website ", created_by=admin.user)
    scheme, prefix, secret = full.split("_", 2)
    assert (scheme, prefix) == ("lf", key.prefix)
    assert len(secret) >= 43  # token_urlsafe(32)
    key.refresh_from_db()
    assert key.name == "Website"
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(secret in value for value in stored)
    assert apikey_authenticate(full) == key


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [None, "", "lf_", "lf_abc", "xx_abc_def", "lf__x", "lf_a_"])
def test_malformed_keys_do_not_authenticate(org, raw):
    api_key_for(org)
    assert apikey_authenticate(raw) is None


@pytest.mark.django_db
def test_wrong_secret_and_revoked_keys_do_not_authenticate(org):
    full = api_key_for(org)
    key = the_key(full)
    assert apikey_authenticate(full[:-1] + ("A" if full[-1] != "A" else "B")) is None
    assert apikey_revoke(apikey=key) is True
    assert apikey_authenticate(full) is None
    assert apikey_revoke(apikey=key) is False  # idempotent


@pytest.mark.django_db
def test_names_are_required_and_active_keys_are_capped(org):
    with pytest.raises(ApiKeyError):
        apikey_create(organization=org, name="   ", created_by=None)
    for n in range(MAX_ACTIVE_KEYS):
        api_key_for(org, name=f"key {n}")
    with pytest.raises(ApiKeyError, match="at most"):
        apikey_create(organization=org, name="one too many", created_by=None)
    apikey_revoke(apikey=ApiKey.objects.filter(organization=org).first())
    apikey_create(organization=org, name="replacement", created_by=None)


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(org, django_assert_num_queries):
    full = api_key_for(org)
    key = the_key(full)
    assert key.last_used_at is None
    with django_assert_num_queries(2):  # look up + first use
        apikey_authenticate(full)
    first_use = the_key(full).last_used_at
    assert first_use is not None
    for _ in range(3):
        with django_assert_num_queries(1):  # look up only
            apikey_authenticate(full)
    assert the_key(full).last_used_at == first_use
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    apikey_authenticate(full)
    assert the_key(full).last_used_at > first_use


# --- The page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_created_key_is_shown_once_and_works(org, other_org, admin, admin_client):
    response = admin_client.post(list_url(org), {"name": "Website backend"})
    assert response.status_code == 302
    assert response["Location"] == list_url(org)  # the key is never in a URL
    key = ApiKey.objects.get(organization=org)
    assert key.created_by == admin.user

    page = admin_client.get(list_url(org))
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    reveal = page.context["revealed"]["key"]
    assert reveal.startswith(f"lf_{key.prefix}_")
    assert reveal in page.content.decode()
    assert "will not be shown again" in page.content.decode()

    again = admin_client.get(list_url(org))
    assert reveal not in again.content.decode()
    assert f"lf_{key.prefix}_" in again.content.decode()  # the public prefix stays listed
    secret = reveal.split("_", 2)[2]
    assert not any(secret in s.session_data for s in Session.objects.all())

    api = Client(headers={"Authorization": f"Bearer {reveal}"})
    assert api.get(LEADS_API).status_code == 200
    assert not ApiKey.objects.filter(organization=other_org).exists()


@pytest.mark.django_db
def test_invalid_name_is_a_form_error(org, admin_client):
    response = admin_client.post(list_url(org), {"name": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_list_shows_keys_and_revoke_is_immediate(org, admin, admin_client):
    full = api_key_for(org, name="CRM sync", created_by=admin.user)
    key = the_key(full)
    api = Client(headers={"X-API-Key": full})
    assert api.get(LEADS_API).status_code == 200

    page = admin_client.get(list_url(org)).content.decode()
    assert "CRM sync" in page and key.prefix in page and admin.user.email in page
    assert "Active" in page

    response = admin_client.post(revoke_url(org, key))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get(LEADS_API).status_code == 401
    page = admin_client.get(list_url(org)).content.decode()
    assert "Revoked" in page
    assert admin_client.get(revoke_url(org, key)).status_code == 405


@pytest.mark.django_db
def test_only_admins_manage_keys_and_only_their_own(
    org, other_org, admin_client, marketer, sales_rep, client_for
):
    theirs = the_key(api_key_for(other_org))
    assert admin_client.post(revoke_url(org, theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    for member in (marketer, sales_rep):
        client = client_for(member)
        assert client.get(list_url(org)).status_code == 403
        assert client.post(list_url(org), {"name": "sneaky"}).status_code == 403
    assert not ApiKey.objects.filter(organization=org).exists()
    listed = admin_client.get(list_url(org)).context["keys"]
    assert list(listed) == []


@pytest.mark.django_db
def test_key_list_runs_a_constant_number_of_queries(
    org, admin, admin_client, django_assert_num_queries
):
    counts = []
    for total in (1, 15):
        while ApiKey.objects.filter(organization=org).count() < total:
            api_key_for(org, created_by=admin.user)
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(list_url(org))
        assert len(response.context["keys"]) == total
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    with django_assert_num_queries(counts[0]):
        admin_client.get(list_url(org))
