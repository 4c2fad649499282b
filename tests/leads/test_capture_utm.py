"""UTM values arrive as given: a source without a medium is not Direct."""

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, Channel, Lead
from leads.services.capture import touch_channel
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "utm, channel",
    [
        ({"utm_source": "google"}, Channel.ORGANIC_SEARCH),
        ({"utm_source": "LinkedIn"}, Channel.SOCIAL),
        ({"utm_source": "partner-portal"}, Channel.OTHER),
        ({"utm_source": "google", "utm_medium": "cpc"}, Channel.PAID_SEARCH),
        ({"utm_medium": "print"}, Channel.OTHER),
        ({}, Channel.DIRECT),
    ],
)
def test_touch_channel(utm, channel):
    assert touch_channel(None, utm) == channel


def test_source_without_medium_is_kept_as_given(
    client, org, other_org, django_capture_on_commit_callbacks
):
    form = CaptureFormFactory(organization=org)
    CaptureFormFieldFactory(form=form, key="email", label="Email", maps_to="email")
    CaptureFormFactory(organization=other_org, key="other")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/f/{form.key}/?utm_source=google", {"email": "ann@initech.com"})
    with tenant_scope(org):
        lead = Lead.objects.get()
        visit = Activity.objects.get(lead=lead, kind=ActivityKind.PAGE_VIEW)
    assert lead.first_source == lead.latest_source == Channel.ORGANIC_SEARCH
    assert visit.properties["utm_source"] == "google" and "utm_medium" not in visit.properties
