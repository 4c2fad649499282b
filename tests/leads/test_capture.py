"""The public hosted form /f/<key>/, spam defences, and submission processing."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError as DatabaseError
from django.utils import timezone
from django_scopes import scopes_disabled
from kombu.exceptions import OperationalError as BrokerError

from leadflow.core import queues
from leadflow.core.tenancy import tenant_scope
from leads.models import (
    Activity,
    ActivityKind,
    Channel,
    FieldType,
    FormSubmission,
    Lead,
    SubmissionOutcome,
)
from leads.services import capture
from leads.tasks.capture import (
    process_submission,
    process_submissions,
    sweep_unprocessed_submissions,
)
from tests.factories import CampaignFactory, CaptureFormFactory, CaptureFormFieldFactory

pytestmark = pytest.mark.django_db


def _fields(form):
    specs = [
        ("email", "Work email", FieldType.EMAIL, "email", True, []),
        ("first_name", "First name", FieldType.TEXT, "first_name", False, []),
        ("last_name", "Last name", FieldType.TEXT, "last_name", False, []),
        ("title", "Job title", FieldType.TEXT, "title", False, []),
        ("company", "Company", FieldType.TEXT, "company_name", False, []),
        ("team_size", "Team size", FieldType.SELECT, "custom", False, ["1-10", "11-50", "51+"]),
        ("message", "Message", FieldType.TEXTAREA, "custom", False, []),
        ("source_page", "Source", FieldType.HIDDEN, "custom", False, []),
    ]
    for position, (key, label, kind, maps_to, required, options) in enumerate(specs):
        CaptureFormFieldFactory(
            form=form,
            position=position,
            key=key,
            label=label,
            field_type=kind,
            maps_to=maps_to,
            required=required,
            options=options,
            default_value="pricing-page" if kind == FieldType.HIDDEN else "",
        )


@pytest.fixture
def demo_form(org, other_org):
    form = CaptureFormFactory(
        organization=org,
        name="Demo request",
        activity_kind=ActivityKind.DEMO_REQUEST,
        consent_text="Send me product news by email.",
        success_message="Thanks — we'll call you within a day.",
    )
    _fields(form)
    # Org B has a look-alike form: nothing of org A may ever land there.
    _fields(CaptureFormFactory(organization=other_org, name="Demo request"))
    return form


def url(form, query=""):
    return f"/f/{form.key}/" + (f"?{query}" if query else "")


def submit(client, form, data, query="", **extra):
    return client.post(url(form, query), data, **extra)


def scoped(org):
    return tenant_scope(org)


def test_hosted_page_renders_fields_in_order_with_spam_defences(client, demo_form):
    response = client.get(url(demo_form, "utm_campaign=spring&email=ann@acme-corp.com"))
    assert response.status_code == 200
    html = response.content.decode()
    labels = ["Work email", "First name", "Last name", "Job title", "Company", "Team size"]
    positions = [html.index(label) for label in labels]
    assert positions == sorted(positions)
    assert "Send me product news by email." in html and 'name="consent"' in html
    # The honeypot is in the page, hidden by CSS, with a plausible name.
    assert 'class="lf-extra"' in html and 'name="website"' in html
    assert 'name="lf_token"' in html
    assert 'value="ann@acme-corp.com"' in html  # prefilled from the query string
    assert 'value="pricing-page"' in html  # hidden field default
    # A standalone page, not the app layout with its navigation.
    assert "sidebar" not in html
    assert "X-Frame-Options" not in response.headers


def test_app_pages_still_refuse_framing(admin_client, demo_form):
    response = admin_client.get("/o/acme/forms/")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"


def test_submission_creates_lead_with_activities_and_sources(
    client, org, demo_form, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(
        organization=org, name="Spring", channel=Channel.PAID_SEARCH, utm_campaign="spring"
    )
    CampaignFactory(organization=org, name="Other", utm_campaign="autumn")
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client,
            demo_form,
            {
                "email": "  Ann.Lee@Initech.com ",
                "first_name": "ann",
                "last_name": "Lee",
                "company": "Initech",
                "team_size": "11-50",
                "message": "Call me",
                "consent": "on",
                "page_url": "https://www.initech.com/pricing?utm_term=crm",
            },
            query="utm_source=google&utm_medium=cpc&utm_campaign=Spring",
            REMOTE_ADDR="203.0.113.9",
            HTTP_USER_AGENT="Mozilla/5.0 test",
        )
    assert response.status_code == 200
    assert "we&#x27;ll call you within a day" in response.content.decode()
    with scoped(org):
        lead = Lead.objects.get()
        submission = FormSubmission.objects.get()
        kinds = sorted(Activity.objects.filter(lead=lead).values_list("kind", flat=True))
        page_view = Activity.objects.get(lead=lead, kind=ActivityKind.PAGE_VIEW)
        demo = Activity.objects.get(lead=lead, kind=ActivityKind.DEMO_REQUEST)
    assert lead.email == "ann.lee@initech.com"
    assert (lead.first_name, lead.last_name, lead.company_name) == ("Ann", "Lee", "Initech")
    assert lead.custom == {
        "team_size": "11-50",
        "message": "Call me",
        "source_page": "pricing-page",
    }
    assert lead.email_opt_in and lead.email_opt_in_origin == "form: Demo request"
    assert lead.first_source == lead.latest_source == Channel.PAID_SEARCH
    assert lead.first_campaign == lead.latest_campaign == campaign
    assert kinds == [ActivityKind.DEMO_REQUEST, ActivityKind.PAGE_VIEW]
    assert page_view.properties["url"] == "https://www.initech.com/pricing?utm_term=crm"
    assert page_view.properties["utm_campaign"] == "Spring"
    assert page_view.properties["utm_term"] == "crm"  # read from the page URL
    assert demo.properties["form"] == "Demo request" and demo.campaign == campaign
    assert submission.outcome == SubmissionOutcome.CREATED
    assert submission.lead == lead and submission.processed_at is not None
    assert submission.utm["utm_source"] == "google"
    assert submission.user_agent == "Mozilla/5.0 test"
    assert len(submission.ip_hash) == 64 and "203.0.113" not in submission.ip_hash
    assert submission.payload["email"] == "  Ann.Lee@Initech.com "  # raw, as received


def test_same_email_again_merges_newest_non_empty_wins(
    client, org, demo_form, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            client,
            demo_form,
            {"email": "bo@hooli.com", "first_name": "Bo", "last_name": "Kim", "message": "Hi"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            client,
            demo_form,
            {"email": "BO@Hooli.Com", "title": "CTO", "last_name": "", "team_size": "51+"},
        )
    with scoped(org):
        lead = Lead.objects.get()
        outcomes = list(FormSubmission.objects.order_by("pk").values_list("outcome", flat=True))
        assert Activity.objects.filter(lead=lead, kind=ActivityKind.DEMO_REQUEST).count() == 2
    assert outcomes == [SubmissionOutcome.CREATED, SubmissionOutcome.MERGED]
    assert (lead.first_name, lead.last_name, lead.title) == ("Bo", "Kim", "CTO")
    assert lead.custom["message"] == "Hi" and lead.custom["team_size"] == "51+"


def test_honeypot_is_spam_answered_like_success(client, org, demo_form):
    response = submit(client, demo_form, {"email": "bot@spam-bots.com", "website": "http://x"})
    assert response.status_code == 200
    assert "within a day" in response.content.decode()
    with scoped(org):
        submission = FormSubmission.objects.get()
        assert not Lead.objects.exists()
    assert submission.outcome == SubmissionOutcome.SPAM
    assert submission.outcome_reasons[0]["code"] == "honeypot"
    assert submission.payload["website"] == "http://x"


def test_filled_too_fast_is_spam(client, org, demo_form):
    demo_form.min_fill_seconds = 5
    demo_form.save()
    token = capture.fill_token(form=demo_form)
    submit(client, demo_form, {"email": "fast@bot-farm.com", "lf_token": token})
    with scoped(org):
        submission = FormSubmission.objects.get()
    assert submission.outcome == SubmissionOutcome.SPAM
    assert submission.outcome_reasons[0]["code"] == "too_fast"


def test_forged_token_is_spam_and_a_patient_visitor_is_not(
    client, org, demo_form, django_capture_on_commit_callbacks
):
    demo_form.min_fill_seconds = 5
    demo_form.save()
    submit(client, demo_form, {"email": "forger@bot-farm.com", "lf_token": "abc:def"})
    earlier = capture.fill_token(form=demo_form, now=timezone.now() - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, demo_form, {"email": "human@acme-corp.com", "lf_token": earlier})
    with scoped(org):
        forged, human = FormSubmission.objects.order_by("pk")
        assert list(Lead.objects.values_list("email", flat=True)) == ["human@acme-corp.com"]
    assert forged.outcome == SubmissionOutcome.SPAM
    assert forged.outcome_reasons[0]["code"] == "bad_token"
    assert human.outcome == SubmissionOutcome.CREATED


def test_rate_limit_answers_429_and_keeps_the_submission(client, org, demo_form, settings):
    settings.LEADS_CAPTURE_RATE_LIMIT = "3/m"
    statuses = [
        submit(client, demo_form, {"email": f"p{i}@acme-corp.com"}, REMOTE_ADDR="198.51.100.7")
        for i in range(4)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1]["Retry-After"] == "60"
    # Another address is not affected.
    assert submit(client, demo_form, {"email": "q@acme-corp.com"}, REMOTE_ADDR="198.51.100.8")
    with scoped(org):
        last = FormSubmission.objects.filter(payload__email="p3@acme-corp.com").get()
        assert FormSubmission.objects.count() == 5
    assert last.outcome == SubmissionOutcome.SPAM
    assert last.outcome_reasons == [
        {"code": "rate_limited", "field": "", "message": "Too many submissions from this address."}
    ]


def test_rate_limit_behind_a_proxy_counts_the_forwarded_address(client, org, demo_form, settings):
    settings.LEADS_CAPTURE_RATE_LIMIT = "2/m"
    settings.LEADS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"

    def post(visitor):
        return submit(
            client,
            demo_form,
            {"email": "x@acme-corp.com"},
            REMOTE_ADDR="10.0.0.2",  # the proxy, the same for everyone
            HTTP_X_FORWARDED_FOR=f"192.0.2.1, {visitor}",  # the first entry is spoofable
        )

    assert [post("198.51.100.1").status_code for _ in range(3)] == [200, 200, 429]
    assert post("198.51.100.2").status_code == 200
    with scoped(org):
        hashes = set(FormSubmission.objects.values_list("ip_hash", flat=True))
    assert hashes == {capture.ip_digest("198.51.100.1"), capture.ip_digest("198.51.100.2")}


def test_missing_required_field_shows_errors_and_keeps_input(client, org, demo_form):
    response = submit(client, demo_form, {"first_name": "Ann", "message": "Keep <me>"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html
    assert 'value="Ann"' in html and "Keep &lt;me&gt;" in html
    assert "lf-has-error" in html
    with scoped(org):
        submission = FormSubmission.objects.get()
        assert not Lead.objects.exists()
    assert submission.outcome == SubmissionOutcome.INVALID
    assert {r["field"] for r in submission.outcome_reasons} == {"email"}
    assert submission.processed_at is not None  # never processed into a lead


def test_json_client_gets_field_errors_as_json(client, demo_form):
    response = submit(client, demo_form, {"email": "nope"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["errors"]["email"][0]["message"] == "Enter a valid email address."


def test_unknown_key_is_404(client, demo_form):
    assert client.get("/f/no-such-form-key/").status_code == 404
    assert client.post("/f/no-such-form-key/", {"email": "a@b.example"}).status_code == 404


def test_inactive_form_is_410_and_late_posts_are_kept(client, org, demo_form):
    demo_form.is_active = False
    demo_form.save()
    response = client.get(url(demo_form))
    assert response.status_code == 410
    assert "no longer taking submissions" in response.content.decode()
    assert submit(client, demo_form, {"email": "late@acme-corp.com"}).status_code == 410
    with scoped(org):
        submission = FormSubmission.objects.get()
        assert not Lead.objects.exists()
    assert submission.outcome == SubmissionOutcome.INVALID
    assert submission.outcome_reasons[0]["code"] == "form_inactive"


def test_markup_is_stored_raw_and_rendered_escaped(
    client, admin_client, org, demo_form, django_capture_on_commit_callbacks
):
    script = "<script>alert('x')</script>"
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            client, demo_form, {"email": "eve@acme-corp.com", "message": script, "title": script}
        )
    submit(client, demo_form, {"email": f"{script}@acme-corp.com"})  # invalid email
    with scoped(org):
        good, bad = FormSubmission.objects.order_by("pk")
        lead = Lead.objects.get()
    assert good.payload["message"] == script and lead.custom["message"] == script
    listing = admin_client.get(f"/o/acme/forms/{demo_form.pk}/submissions/").content.decode()
    detail = admin_client.get(f"/o/acme/forms/submissions/{good.pk}/").content.decode()
    for page in (listing, detail):
        assert script not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert bad.outcome == SubmissionOutcome.INVALID


def test_ten_thousand_characters_and_unicode(
    client, org, demo_form, django_capture_on_commit_callbacks
):
    long_text = "Ü" * 9_992 + "🚀 end ok"
    assert len(long_text) == 10_000
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client,
            demo_form,
            {
                "email": "zoe@müller.de",
                "first_name": "zoë",
                "last_name": "Ødegård-Šimić",
                "company": "株式会社テスト",
                "message": long_text,
            },
        )
    assert response.status_code == 200
    with scoped(org):
        lead = Lead.objects.get()
    assert (lead.first_name, lead.last_name) == ("Zoë", "Ødegård-Šimić")
    assert lead.company_name == "株式会社テスト"
    assert lead.custom["message"] == long_text
    # Past a lead column's size the visitor is told, rather than the value cut.
    response = submit(client, demo_form, {"email": "x@acme-corp.com", "first_name": "a" * 10_000})
    assert "Ensure this value has at most 150 characters" in response.content.decode()


def test_nul_bytes_are_dropped_before_storing(client, org, demo_form):
    submit(client, demo_form, {"email": "nul@acme-corp.com", "message": "a\x00b"})
    with scoped(org):
        assert FormSubmission.objects.get().payload["message"] == "ab"


def test_oversized_body_is_413_with_a_friendly_page(client, org, demo_form, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = submit(client, demo_form, {"email": "big@acme-corp.com", "message": "x" * 5_000})
    assert response.status_code == 413
    assert "Too much text" in response.content.decode()
    with scoped(org):
        submission = FormSubmission.objects.get()
    assert submission.outcome == SubmissionOutcome.INVALID
    assert submission.outcome_reasons[0]["code"] == "payload_too_large"


def test_malformed_json_is_400_and_recorded(client, org, demo_form):
    response = client.post(url(demo_form), "{oops", content_type="application/json")
    assert response.status_code == 400 and response.json()["ok"] is False
    with scoped(org):
        assert FormSubmission.objects.get().outcome_reasons[0]["code"] == "unreadable"


def test_cors_preflight_and_cross_site_fetch(client, demo_form, django_capture_on_commit_callbacks):
    preflight = client.options(
        url(demo_form),
        HTTP_ORIGIN="https://www.customer.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    with django_capture_on_commit_callbacks(execute=True):
        fetched = submit(
            client,
            demo_form,
            {"email": "cors@acme-corp.com"},
            HTTP_ORIGIN="https://www.customer.example",
            HTTP_SEC_FETCH_MODE="cors",
            HTTP_ACCEPT="application/json",
        )
    assert fetched.status_code == 200 and fetched.json()["ok"] is True
    assert fetched["Access-Control-Allow-Origin"] == "*"
    # A plain HTML form post from the customer's page (no CSRF token) works too,
    # and is a navigation: no CORS header needed.
    posted = submit(
        client,
        demo_form,
        {"email": "html@acme-corp.com"},
        HTTP_ORIGIN="https://www.customer.example",
        HTTP_SEC_FETCH_MODE="navigate",
        HTTP_REFERER="https://www.customer.example/contact",
    )
    assert posted.status_code == 200
    assert "Access-Control-Allow-Origin" not in posted


def test_redirect_url_after_success(client, demo_form):
    demo_form.redirect_url = "https://www.customer.example/thanks"
    demo_form.save()
    response = submit(client, demo_form, {"email": "r@acme-corp.com"})
    assert response.status_code == 302
    assert response["Location"] == "https://www.customer.example/thanks"


def test_referer_of_a_customer_page_is_the_page_url(client, org, demo_form):
    submit(
        client,
        demo_form,
        {"email": "ref@acme-corp.com"},
        HTTP_REFERER="https://www.customer.example/pricing?utm_source=newsletter",
    )
    with scoped(org):
        submission = FormSubmission.objects.get()
    assert submission.page_url == "https://www.customer.example/pricing?utm_source=newsletter"
    assert submission.utm == {"utm_source": "newsletter"}


# --- processing ---------------------------------------------------------------


def _stored(form, payload, **kwargs):
    meta = capture.SubmissionMeta(
        page_url="https://www.acme.example/demo", utm={"utm_source": "linkedin"}
    )
    with tenant_scope(form.organization_id):
        submission = capture.submission_store(form=form, payload=payload, meta=meta)
        if kwargs:
            FormSubmission.objects.filter(pk=submission.pk).update(**kwargs)
    return submission


def test_processing_twice_gives_one_lead_and_one_set_of_activities(org, demo_form):
    submission = _stored(demo_form, {"email": "twice@acme-corp.com", "first_name": "Tw"})
    for _ in range(2):
        process_submission.delay(organization_id=org.pk, submission_id=submission.pk)
    with scoped(org):
        assert Lead.objects.count() == 1
        assert Activity.objects.count() == 2  # the demo request and the page view
        submission.refresh_from_db()
    assert submission.outcome == SubmissionOutcome.CREATED
    assert submission.attempts == 1


def test_no_page_view_without_a_page_or_utm(org, demo_form):
    with tenant_scope(org):
        submission = capture.submission_store(
            form=demo_form, payload={"email": "plain@acme-corp.com"}, meta=capture.SubmissionMeta()
        )
    process_submission.delay(organization_id=org.pk, submission_id=submission.pk)
    with scoped(org):
        kinds = list(Activity.objects.values_list("kind", flat=True))
        lead = Lead.objects.get()
    assert kinds == [ActivityKind.DEMO_REQUEST]
    assert lead.first_source == Channel.DIRECT and lead.first_campaign is None


def test_spam_is_never_processed_into_a_lead(org, demo_form):
    submission = _stored(demo_form, {"email": "spam@acme-corp.com"})
    with scoped(org):
        capture.submission_reject(submission=submission, outcome=SubmissionOutcome.SPAM, reasons=[])
    process_submission.delay(organization_id=org.pk, submission_id=submission.pk)
    with scoped(org):
        assert not Lead.objects.exists()


def test_sweeper_reenqueues_lost_submissions_only(org, other_org, demo_form):
    old = timezone.now() - timedelta(minutes=10)
    lost = _stored(demo_form, {"email": "lost@acme-corp.com"}, received_at=old)
    recent = _stored(demo_form, {"email": "recent@acme-corp.com"})
    done = _stored(demo_form, {"email": "done@acme-corp.com"}, received_at=old)
    process_submission.delay(organization_id=org.pk, submission_id=done.pk)
    with scoped(org):
        done.refresh_from_db()
    with mock.patch.object(
        process_submissions, "apply_async", wraps=process_submissions.apply_async
    ) as sent:
        assert sweep_unprocessed_submissions.delay().get() == 1  # one organization
    assert [c.kwargs["kwargs"] for c in sent.call_args_list] == [
        {"organization_id": org.pk, "submission_ids": [lost.pk]}
    ]
    with scoped(org):
        lost.refresh_from_db()
        recent.refresh_from_db()
        processed_at = FormSubmission.objects.get(pk=done.pk).processed_at
    assert lost.outcome == SubmissionOutcome.CREATED
    assert recent.processed_at is None
    assert processed_at == done.processed_at


def test_one_sweep_drains_a_backlog_larger_than_a_slice(org, other_org, demo_form, monkeypatch):
    monkeypatch.setattr(capture, "SWEEP_BATCH", 3)
    monkeypatch.setattr(capture, "SWEEP_CHUNK", 2)
    old = timezone.now() - timedelta(minutes=10)
    ids = [
        _stored(demo_form, {"email": f"backlog{i}@acme-corp.com"}, received_at=old).pk
        for i in range(7)
    ]
    with mock.patch.object(
        process_submissions, "apply_async", wraps=process_submissions.apply_async
    ) as chunks:
        assert sweep_unprocessed_submissions.delay().get() == 1
    # Slices of 3 in chunks of 2, each id queued once.
    queued = [c.kwargs["kwargs"]["submission_ids"] for c in chunks.call_args_list]
    assert queued == [ids[0:2], ids[2:3], ids[3:5], ids[5:6], ids[6:7]]
    with scoped(org):
        assert not FormSubmission.objects.filter(processed_at__isnull=True).exists()
        assert set(FormSubmission.objects.values_list("attempts", flat=True)) == {1}
    with scoped(other_org):
        assert not FormSubmission.objects.exists()


def test_a_sweep_pass_in_progress_is_not_started_twice(org, demo_form):
    from django.core.cache import cache

    _stored(demo_form, {"email": "lost@acme-corp.com"}, received_at=timezone.now() - timedelta(1))
    cache.set(f"leads:capture-sweep:{org.pk}", True, 60)  # a pass is running
    assert sweep_unprocessed_submissions.delay().get() == 0
    cache.delete(f"leads:capture-sweep:{org.pk}")
    assert sweep_unprocessed_submissions.delay().get() == 1


def test_sweeper_gives_up_on_a_submission_that_always_fails(org, demo_form):
    old = timezone.now() - timedelta(minutes=10)
    _stored(demo_form, {"email": "poison@acme-corp.com"}, received_at=old, attempts=8)
    assert sweep_unprocessed_submissions.delay().get() == 0


def test_a_lost_submission_is_swept_within_seconds_once_its_queue_is_empty(
    org, other_org, demo_form
):
    # Dropped by a restarted Redis, or unacknowledged on a killed worker: nothing
    # waits in the organization's capture queue, so it is lost after 30 s, not 2 min.
    lost = _stored(
        demo_form, {"email": "lost@acme-corp.com"}, received_at=timezone.now() - timedelta(0, 30)
    )
    fresh = _stored(demo_form, {"email": "fresh@acme-corp.com"})  # its task may be running
    assert sweep_unprocessed_submissions.delay().get() == 1
    with scoped(org):
        lost.refresh_from_db()
        fresh.refresh_from_db()
    assert lost.outcome == SubmissionOutcome.CREATED and fresh.processed_at is None


def test_a_merely_queued_backlog_is_not_queued_twice(org, other_org, demo_form):
    now = timezone.now()
    queued = _stored(
        demo_form, {"email": "queued@acme-corp.com"}, received_at=now - timedelta(minutes=3)
    )
    stale = _stored(
        demo_form, {"email": "stale@acme-corp.com"}, received_at=now - timedelta(minutes=11)
    )
    shard = queues.shard_for(queues.CAPTURE, org.pk)
    with (
        mock.patch.object(queues, "queue_depths", return_value={shard: 9000}) as depths,
        mock.patch.object(process_submissions, "apply_async") as sent,
    ):
        assert sweep_unprocessed_submissions.delay().get() == 1
    depths.assert_called_once_with([shard])  # one look at the broker per beat
    assert [c.kwargs["kwargs"]["submission_ids"] for c in sent.call_args_list] == [[stale.pk]]
    with scoped(org):
        assert FormSubmission.objects.get(pk=queued.pk).processed_at is None


def test_the_sweep_recovers_within_a_minute_of_a_fault():
    from django.conf import settings

    from leads.tasks.capture import SWEEP_LEASE_SECONDS

    beat = settings.CELERY_BEAT_SCHEDULE["leads-sweep-unprocessed-submissions"]["schedule"]
    # Found lost, then the next beat starts the pass; a lost pass frees its lease in time.
    assert capture.SWEEP_AFTER.total_seconds() + beat <= 45
    assert SWEEP_LEASE_SECONDS <= 45


def test_broker_outage_still_answers_success_and_the_sweep_recovers(
    client, org, demo_form, django_capture_on_commit_callbacks
):
    # As in production, autocommit runs the on_commit publish at once.
    try:
        with mock.patch.object(
            process_submission, "apply_async", side_effect=BrokerError("down")
        ) as publish:
            with django_capture_on_commit_callbacks(execute=True):
                response = submit(client, demo_form, {"email": "outage@acme-corp.com"})
            # The breaker is open now: the next visitor is not held by another attempt.
            with django_capture_on_commit_callbacks(execute=True):
                submit(client, demo_form, {"email": "outage2@acme-corp.com"})
        assert publish.call_count == 1
    finally:
        capture.broker_breaker.reset()
    assert response.status_code == 200 and "within a day" in response.content.decode()
    with scoped(org):
        FormSubmission.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    sweep_unprocessed_submissions.delay()
    with scoped(org):
        outcomes = set(FormSubmission.objects.values_list("outcome", flat=True))
        assert outcomes == {SubmissionOutcome.CREATED}
        assert Lead.objects.filter(email="outage@acme-corp.com").exists()


def test_an_unreachable_rate_limit_cache_holds_one_visitor_not_each(
    client, org, other_org, demo_form, settings
):
    settings.LEADS_CAPTURE_RATE_LIMIT = "100/m"
    try:
        with mock.patch(
            "leads.views.capture.is_ratelimited", side_effect=ConnectionError("Redis is down")
        ) as limiter:
            answers = [
                submit(client, demo_form, {"email": f"open{i}@acme-corp.com"}).status_code
                for i in range(3)
            ]
    finally:
        capture.rate_limit_breaker.reset()
    # Failed open for all three; only the first waited on the cache.
    assert (answers, limiter.call_count) == ([200, 200, 200], 1)
    with scoped(org):
        assert FormSubmission.objects.filter(outcome=SubmissionOutcome.PENDING).count() == 3


def test_a_database_outage_answers_503_and_keeps_the_visitors_answers(client, org, demo_form):
    assert client.get(url(demo_form)).status_code == 200
    with mock.patch.object(
        capture, "submission_store", side_effect=DatabaseError("server closed the connection")
    ):
        response = submit(client, demo_form, {"email": "keep@acme-corp.com", "first_name": "Kee"})
    page = response.content.decode()
    assert (response.status_code, response["Retry-After"]) == (503, "60")
    assert "try again in a minute" in page
    assert 'value="keep@acme-corp.com"' in page and 'value="Kee"' in page


# --- tenancy --------------------------------------------------------------------


def test_form_key_of_org_a_never_touches_org_b(
    client, org, other_org, demo_form, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, demo_form, {"email": "wall@acme-corp.com"})
    with scoped(other_org):
        assert not Lead.objects.exists()
        assert not FormSubmission.objects.exists()
        assert not Activity.objects.exists()
    with scoped(org):
        assert Lead.objects.get().organization_id == org.pk
    with scopes_disabled():
        assert set(FormSubmission.objects.values_list("organization_id", flat=True)) == {org.pk}


def test_org_b_admin_gets_404_on_org_a_form_pages(client_for, other_admin, admin, demo_form):
    submission = _stored(demo_form, {"email": "x@acme-corp.com"})
    client = client_for(other_admin)
    with scopes_disabled():
        field = demo_form.fields.first()
    for path in (
        f"/o/acme/forms/{demo_form.pk}/",
        f"/o/acme/forms/{demo_form.pk}/submissions/",
        f"/o/acme/forms/submissions/{submission.pk}/",
        f"/o/globex/forms/{demo_form.pk}/",
        f"/o/globex/forms/{demo_form.pk}/submissions/",
        f"/o/globex/forms/submissions/{submission.pk}/",
        f"/o/globex/forms/fields/{field.pk}/",
    ):
        assert client.get(path).status_code == 404, path
