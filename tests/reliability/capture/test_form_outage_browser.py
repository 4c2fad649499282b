"""A visitor submits a hosted form while the database is unreachable: they see
"please try again in a minute" with their answers still filled in, and their
second try, once the database is back, goes through."""

from unittest import mock

import pytest
from django.db import OperationalError

from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission
from leads.services import capture
from tests.reliability.capture.support import form_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOWN = OperationalError("connection failed: Connection refused")


@pytest.mark.parametrize("width", [390, 1366])
def test_the_visitor_keeps_their_answers_and_retries(page, shot, org, hosted, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(form_url(hosted))
    page.fill("input[name=email]", "patient@acme-corp.com")
    page.fill("input[name=first_name]", "Pat")
    with mock.patch.object(capture, "submission_store", side_effect=DOWN):
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=retry-message]")
    shot(page, f"capture-form-retry-{width}")
    assert page.input_value("input[name=email]") == "patient@acme-corp.com"
    assert page.input_value("input[name=first_name]") == "Pat"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.click("button[type=submit]")  # the database is back
    page.wait_for_selector("text=Thank you")
    with tenant_scope(org):
        assert FormSubmission.objects.get().payload["email"] == "patient@acme-corp.com"
