"""The lead timeline and the rep queue read activities by their kind's display
name and their properties by label: no raw metadata dump, no "Demorequest"."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind
from leads.timeline import activity_details, kind_label
from pipeline.services.sales import lead_touch
from tests.factories import LeadFactory
from tests.pipeline.support import mql_for

pytestmark = pytest.mark.django_db


def test_every_kind_reads_as_its_display_name():
    for kind in ActivityKind:
        label = kind_label(kind.value)
        assert label == kind.label and "_" not in label
    assert kind_label("demo_request") == "Demo request"
    assert kind_label("something_new") == "Something new"  # not stored yet, still readable


def test_details_leave_out_ids_and_label_the_rest():
    details = activity_details(
        {
            "form": "Demo request",
            "form_id": 3,
            "submission_id": 3,
            "url": "https://initech.com/pricing",
            "utm_source": "google",
            "team_size": "11-50",
            "empty": "",
        }
    )
    assert details == [
        ("Form", "Demo request"),
        ("Page", "https://initech.com/pricing"),
        ("UTM source", "google"),
        ("Team size", "11-50"),
    ]


def test_lead_page_timeline(admin_client, org, other_org):
    now = timezone.now()
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
        for kind in (ActivityKind.DEMO_REQUEST, ActivityKind.PAGE_VIEW):
            Activity.objects.create(
                organization=org, lead=lead, kind=kind, occurred_at=now,
                properties={"form": "Demo", "form_id": 3, "submission_id": 3,
                            "url": "https://initech.com/<b>x</b>"},
            )  # fmt: skip
    with tenant_scope(other_org):
        LeadFactory(organization=other_org)
    html = admin_client.get(
        reverse("leads:lead_detail", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
    ).content.decode()
    timeline = html[html.index('data-testid="timeline"') :]
    assert "<strong>Demo request</strong>" in timeline and "<strong>Page view</strong>" in timeline
    assert "form_id" not in timeline and "submission_id" not in timeline
    assert re.search(r"<dt[^>]*>Page:</dt>\s*<dd[^>]*>https://initech.com/&lt;b&gt;x", timeline)


def test_rep_queue_names_the_last_activity(org, other_org, sales_rep, client_for):
    with tenant_scope(org):
        lead = mql_for(sales_rep, first_name="Ann")
        Activity.objects.create(
            organization=org, lead=lead, kind=ActivityKind.EMAIL_OPEN, occurred_at=timezone.now()
        )
        type(lead).objects.filter(pk=lead.pk).update(last_activity_at=timezone.now())
    html = (
        client_for(sales_rep)
        .get(reverse("pipeline:queue", kwargs={"org_slug": org.slug}))
        .content.decode()
    )
    assert "Email opened" in html and "Emailopen" not in html


def test_a_logged_call_reads_without_raw_ids_or_choice_values(org, other_org, sales_rep):
    """The rep's logged call showed "Logged by: 2" and "Duration seconds: 720"."""
    with tenant_scope(org):
        lead = mql_for(sales_rep, first_name="Ann")
        call = lead_touch(
            lead=lead, actor=sales_rep, kind=ActivityKind.CALL, note="Asked for pricing",
            call_outcome="no_answer", duration_seconds=725,
        )  # fmt: skip
    with tenant_scope(other_org):
        LeadFactory(organization=other_org)
    assert activity_details(call.properties) == [
        ("Note", "Asked for pricing"),
        ("Duration", "12 min 5 s"),
        ("Outcome", "No answer"),
    ]


def test_any_numeric_reference_stays_hidden():
    details = activity_details({"reviewed_by": 7, "deal_id": 3, "seats": 4, "by": "phone"})
    assert details == [("Seats", "4"), ("By", "phone")]
    assert activity_details({"duration_seconds": 59})[0] == ("Duration", "59 s")


def test_lead_page_subheading_has_no_stray_separator(admin_client, org, other_org):
    """A lead with no title or company read "· junk" under its name."""
    with tenant_scope(org):
        bare = LeadFactory(organization=org, title="", company_name="", quality="junk")
        named = LeadFactory(organization=org, title="CTO", company_name="Initech")
    with tenant_scope(other_org):
        LeadFactory(organization=other_org)
    for lead, expected in ((bare, ""), (named, "CTO at Initech ·")):
        html = admin_client.get(
            reverse("leads:lead_detail", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
        ).content.decode()
        sub = re.search(r'<div class="text-secondary small">(.*?)<', html, re.S).group(1)
        assert " ".join(sub.split()) == expected
