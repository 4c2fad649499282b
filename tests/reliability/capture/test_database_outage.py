"""Issue #12, item 6: with PostgreSQL unreachable, hosted forms and the API
answer 503 with Retry-After (never 500); the form page keeps what the visitor
typed; once the database is back everything works again without a restart,
and the worker processes what arrives.

The outage: this process's connection is pointed at a loopback port nothing
listens on, so every query fails in the driver as it would with the server
down (the worker and the test database itself stay up)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client

from tests.reliability.capture.support import (
    dead_port,
    form_url,
    ledger,
    make_hosted_form,
    post_lead,
)
from tests.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FORM_POSTS = 8
API_CALLS = 4


@contextmanager
def database_down():
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(dead_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


def test_an_outage_answers_503_keeps_the_visitors_input_and_recovers_by_itself(
    worker, org, other_org, hosted, api, admin_client
):
    never_shown = make_hosted_form(org, "Newsletter")  # its definition was never read
    visitor = Client(raise_request_exception=False)
    assert visitor.get(form_url(hosted)).status_code == 200
    admin_client.raise_request_exception = False
    answers: dict[str, list[int]] = {"form": [], "api": []}

    with database_down():
        for i in range(FORM_POSTS):
            form = hosted if i % 2 else never_shown
            email = f"outage{i}@acme-corp.com"
            response = visitor.post(form_url(form), {"email": email, "first_name": f"Ann{i}"})
            answers["form"].append(response.status_code)
            assert response["Retry-After"] == "60"
            page = response.content.decode()
            assert "try again in a minute" in page
            assert f'value="{email}"' in page and f'value="Ann{i}"' in page  # kept
            # The form itself when this process knows it, else the answers echoed.
            assert ('data-testid="capture-form"' in page) == (form == hosted)
        for i in range(API_CALLS):
            response = post_lead(api, {"email": f"api-outage{i}@acme-corp.com"})
            answers["api"].append(response.status_code)
            assert response["Retry-After"].isdigit()
            assert response.json()["error"]["code"] == "service_unavailable"
        assert visitor.get(form_url(hosted)).status_code == 200  # still shown, from memory
        app_page = admin_client.get(f"/o/{org.slug}/leads/")
        assert (app_page.status_code, app_page["Retry-After"]) == (503, "30")

    assert answers == {"form": [503] * FORM_POSTS, "api": [503] * API_CALLS}
    assert ledger(org)["stored"] == 0  # nothing half-stored

    # Back up: the same visitors retry, with no restart of anything.
    for i in range(FORM_POSTS):
        form = hosted if i % 2 else never_shown
        response = visitor.post(form_url(form), {"email": f"outage{i}@acme-corp.com"})
        assert response.status_code == 200
    for i in range(API_CALLS):
        assert post_lead(api, {"email": f"api-outage{i}@acme-corp.com"}).status_code == 201
    assert admin_client.get(f"/o/{org.slug}/leads/").status_code == 200
    wait_until(lambda: ledger(org)["pending"] == 0, timeout=60, what="the worker")
    assert ledger(org) == {
        "stored": FORM_POSTS + API_CALLS,
        "processed": FORM_POSTS + API_CALLS,
        "pending": 0,
        "leads": FORM_POSTS + API_CALLS,
        "activities": FORM_POSTS,
    }
    assert ledger(other_org)["stored"] == 0
