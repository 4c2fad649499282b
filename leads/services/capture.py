"""Capture: a visitor's submission of a hosted form, from raw row to lead.

The rules:

- the raw submission is stored before anything else (before spam checks and
  validation), exactly as received, so nothing that arrived can be lost;
- spam (honeypot filled, filled faster than the form's minimum, forged fill-time
  token, over the per-IP rate limit) and invalid submissions are kept with their
  reasons and never become leads;
- an accepted submission is processed after commit by a Celery task; processing
  is idempotent (the submission row is claimed with a row lock and
  `processed_at` marks it done), and a periodic sweep re-enqueues accepted
  submissions the broker never delivered;
- the visitor never waits on the broker: a failed publish leaves the row to
  the sweep, and after one failure this process stops trying for a few seconds;
- the sweep re-processes only what a hosted form promised to process: an API
  request answered synchronously, and what it did not finish it rolled back.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core import signing
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from kombu.exceptions import OperationalError as BrokerError

from leadflow.core import queues
from leadflow.core.tenancy import tenant_scope
from leads.models import (
    CUSTOM,
    MAPPABLE_LEAD_FIELDS,
    ActivityKind,
    Campaign,
    CaptureForm,
    CaptureFormField,
    Channel,
    FieldType,
    FormSubmission,
    SubmissionChannel,
    SubmissionOutcome,
)
from leads.services.capture_forms import CONSENT_KEY, TOKEN_KEY, hosted_forms
from leads.services.consent import consent_request
from leads.services.ingest import ExtraActivity, Touch, lead_ingest_batch, parse_bool

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")  # the shape of CaptureForm.key

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_VALUE_LENGTH = 10_000
MAX_UTM_LENGTH = 200
TOKEN_SALT = "leads.capture.fill-time"
IP_SALT = "leads.capture.ip"

# The sweep: accepted submissions still unprocessed after SWEEP_AFTER were lost
# by the broker (a Redis restart, a publish that failed) or sit unacknowledged
# on a killed worker (redelivered only after the broker's visibility timeout),
# provided the organization's capture shard queue is empty: nothing is waiting
# there that could still process them. While that queue holds messages they may
# merely be queued, so only those older than SWEEP_AFTER_BUSY are re-enqueued (a
# 10,000-submission backlog is not queued twice). Re-enqueuing one that is queued
# or running after all is harmless: processing is claimed and idempotent.
# Poison rows stop being retried. The sweep re-enqueues an organization's
# backlog a slice at a time, each slice queued behind the one before, until the
# backlog is empty.
SWEEP_AFTER = timedelta(seconds=20)
SWEEP_AFTER_BUSY = timedelta(minutes=10)
SWEEP_MAX_ATTEMPTS = 8
SWEEP_MAX_ORGANIZATIONS = 200
SWEEP_BATCH = 200
SWEEP_CHUNK = 25  # submissions per processing task: parallel, without a task each
# After a failed publish, this process leaves accepted submissions to the sweep
# for this many seconds instead of trying (and maybe waiting) again.
BROKER_BACKOFF_SECONDS = 10.0

# utm_medium values people actually use, for the touch's channel when no
# campaign names one.
_MEDIUM_CHANNELS = {
    "cpc": Channel.PAID_SEARCH,
    "ppc": Channel.PAID_SEARCH,
    "paid": Channel.PAID_SEARCH,
    "paidsearch": Channel.PAID_SEARCH,
    "paid_search": Channel.PAID_SEARCH,
    "organic": Channel.ORGANIC_SEARCH,
    "email": Channel.EMAIL,
    "newsletter": Channel.EMAIL,
    "social": Channel.SOCIAL,
    "social-media": Channel.SOCIAL,
    "paid_social": Channel.PAID_SOCIAL,
    "paidsocial": Channel.PAID_SOCIAL,
    "referral": Channel.REFERRAL,
    "partner": Channel.PARTNER,
    "affiliate": Channel.PARTNER,
    "event": Channel.EVENT,
    "webinar": Channel.WEBINAR,
}


class Verdict(StrEnum):
    """What the visitor is told about their submission."""

    ACCEPTED = "accepted"
    SPAM = "spam"  # answered like a success: bots learn nothing
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"
    GONE = "gone"  # the form was deactivated


@dataclass(frozen=True)
class SubmissionMeta:
    """Where a submission came from. The IP is only ever stored hashed."""

    ip: str = ""
    user_agent: str = ""
    referrer: str = ""
    page_url: str = ""
    utm: Mapping[str, str] = field(default_factory=dict)


def reason(code: str, message: str, field_name: str = "") -> dict[str, str]:
    return {"code": code, "field": field_name, "message": message}


# --- the hosted form ---------------------------------------------------------


def capture_form_for_key(*, key: str) -> CaptureForm | None:
    """The form behind a public key, whatever its organization.

    The unguessable key is what names the tenant here, so this is the one lookup
    that reads past the scope (the base manager, on a unique column); callers
    open `tenant_scope(form.organization_id)` for everything that follows.
    """
    limit = CaptureForm._meta.get_field("key").max_length
    assert limit is not None  # the key column is a CharField with a max_length
    if not key or len(key) > limit:
        return None
    return CaptureForm._base_manager.filter(key=key).first()


def form_fields(*, form: CaptureForm) -> list[CaptureFormField]:
    return list(CaptureFormField.objects.filter(form=form).order_by("position", "pk"))


@dataclass
class HostedForm:
    """A form as the public endpoint serves it. `memo` holds what the view derives
    from this version of the form (e.g. its rendered thank-you page); it goes
    away with the cache entry when the form changes."""

    form: CaptureForm
    fields: list[CaptureFormField]
    memo: dict[str, Any] = field(default_factory=dict)


def hosted_form(*, key: str) -> HostedForm | None:
    """The form and its fields for the public endpoint (see HostedFormCache)."""
    if not _KEY_RE.match(key or ""):
        return None
    hosted = hosted_forms.get(key)
    if hosted is not None:
        return hosted
    form = capture_form_for_key(key=key)
    if form is None:
        return None
    with tenant_scope(form.organization_id):
        hosted = HostedForm(form=form, fields=form_fields(form=form))
    hosted_forms.put(key, hosted)
    return hosted


def hosted_form_last_known(*, key: str) -> HostedForm | None:
    """The form as last read, however old: while the database is down the
    public page can still show it, and keep a visitor's answers."""
    if not _KEY_RE.match(key or ""):
        return None
    return hosted_forms.get(key, stale=True)


def fill_token(*, form: CaptureForm, now: datetime | None = None) -> str:
    """A signed note of when the form was rendered, checked against min_fill_seconds."""
    moment = (now or timezone.now()).timestamp()
    return signing.dumps({"k": form.key, "t": round(moment, 3)}, salt=TOKEN_SALT, compress=False)


def fill_time_problem(*, form: CaptureForm, token: str | None, now: datetime) -> dict | None:
    """A spam reason when the token is forged or the form was filled too fast.

    A missing token is not spam: the plain HTML snippet on a customer's page is
    static and can't carry one (the honeypot and the rate limit still apply).
    """
    if not token:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
        started = float(data["t"])
        if data["k"] != form.key:
            raise ValueError("token of another form")
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return reason(
            "bad_token", "The fill-time token was forged or belongs to another form.", TOKEN_KEY
        )
    elapsed = now.timestamp() - started
    if elapsed < form.min_fill_seconds:
        return reason(
            "too_fast",
            f"Filled in {max(elapsed, 0):.1f}s; the form expects at least "
            f"{form.min_fill_seconds}s from a person.",
            TOKEN_KEY,
        )
    return None


def _clean_text(value: str) -> str:
    # PostgreSQL's jsonb refuses NUL, and a JSON body can smuggle lone surrogates.
    text = value.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def payload_from_data(data: Any) -> dict[str, Any]:
    """The submitted fields as stored: one value per key, a list when repeated."""
    payload: dict[str, Any] = {}
    for key, values in data.lists():
        if key == "csrfmiddlewaretoken":
            continue
        cleaned = [_clean_text(str(v)) for v in values]
        payload[_clean_text(key)] = cleaned[0] if len(cleaned) == 1 else cleaned
    return payload


def ip_digest(ip: str) -> str:
    """Salted SHA-256 of the address: rate limits and abuse reports can match
    repeat senders without the address itself being stored."""
    if not ip:
        return ""
    return salted_hmac(IP_SALT, ip, algorithm="sha256").hexdigest()


def utm_from(*sources: Mapping[str, Any] | None, page_url: str = "") -> dict[str, str]:
    """utm_* values: the first source that has each wins; the page URL's query last."""
    from_page = {}
    if "utm_" in page_url:
        from_page = {k: v[0] for k, v in parse_qs(urlsplit(page_url).query).items() if v}
    utm: dict[str, str] = {}
    for key in UTM_KEYS:
        for source in (*sources, from_page):
            value = (source or {}).get(key)
            if isinstance(value, list):
                value = value[0] if value else ""
            value = _clean_text(str(value or "")).strip()
            if value:
                utm[key] = value[:MAX_UTM_LENGTH]
                break
    return utm


def submission_store(
    *, form: CaptureForm, payload: Mapping[str, Any], meta: SubmissionMeta
) -> FormSubmission:
    """Store the raw submission (one INSERT, committed before anything else runs)."""
    submission = FormSubmission(
        organization_id=form.organization_id,
        form=form,
        payload=dict(payload),
        ip_hash=ip_digest(meta.ip),
        user_agent=_clean_text(meta.user_agent)[:500],
        referrer=_clean_text(meta.referrer)[:2000],
        page_url=_clean_text(meta.page_url)[:2000],
        utm=dict(meta.utm),
    )
    submission.save(force_insert=True)
    return submission


def submission_reject(*, submission: FormSubmission, outcome: str, reasons: list[dict]) -> None:
    """Record why a submission is not processed into a lead (spam or invalid)."""
    now = timezone.now()
    FormSubmission.objects.filter(pk=submission.pk).update(
        outcome=outcome, outcome_reasons=reasons, processed_at=now
    )
    submission.outcome, submission.outcome_reasons, submission.processed_at = outcome, reasons, now


class _BrokerBreaker:
    """Remembers, per process, that the broker (or the cache) just failed, so
    the next visitors are not held by connection attempts while it is down."""

    def __init__(self, backoff: float) -> None:
        self.backoff = backoff
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.backoff

    def reset(self) -> None:
        self.open_until = 0.0


broker_breaker = _BrokerBreaker(BROKER_BACKOFF_SECONDS)
# The same for the hosted form's rate limiter (the cache, Redis): a hung Redis
# costs one visitor per process its socket timeout, not every visitor.
rate_limit_breaker = _BrokerBreaker(BROKER_BACKOFF_SECONDS)


def submission_accept(*, submission: FormSubmission) -> None:
    """Hand an accepted submission to the worker once its row is committed.

    A broker outage must not fail (or hold) the visitor's request: the row is
    stored and the sweep picks it up.
    """
    from leads.tasks.capture import process_submission

    if broker_breaker.is_open():
        log.info("Broker recently unavailable; submission %s left for the sweep", submission.pk)
        return
    kwargs = {"organization_id": submission.organization_id, "submission_id": submission.pk}
    # No publish retries: with the broker down the sweep is the retry, and the
    # visitor is not held meanwhile (the transport gives up after one bounded
    # connection attempt). Given reprs spare Celery deriving them on this hot path.
    task = process_submission.signature(
        options={"retry": False, "argsrepr": "()", "kwargsrepr": repr(kwargs)}
    )

    def publish() -> None:
        try:
            task.apply_async(kwargs=kwargs)
        except BrokerError:
            broker_breaker.trip()
            log.warning("Broker unavailable; submission %s left for the sweep", submission.pk)

    transaction.on_commit(publish)


def submission_screen(
    *,
    form: CaptureForm,
    submission: FormSubmission,
    honeypot_name: str,
    token: str | None,
    rate_limited: bool,
    errors: Mapping[str, list[str]] | None,
    now: datetime | None = None,
) -> Verdict:
    """Decide what a stored submission is, record it, and enqueue the accepted ones.

    Order: spam signals first (so bots are answered like people), then the rate
    limit, then a deactivated form, then field validation.
    """
    now = now or timezone.now()
    spam = []
    if str(submission.payload.get(honeypot_name) or "").strip():
        spam.append(reason("honeypot", "The hidden honeypot field was filled in.", honeypot_name))
    too_fast = fill_time_problem(form=form, token=token, now=now)
    if too_fast:
        spam.append(too_fast)
    if spam:
        submission_reject(submission=submission, outcome=SubmissionOutcome.SPAM, reasons=spam)
        return Verdict.SPAM
    if rate_limited:
        submission_reject(
            submission=submission,
            outcome=SubmissionOutcome.SPAM,
            reasons=[reason("rate_limited", "Too many submissions from this address.")],
        )
        return Verdict.RATE_LIMITED
    if not form.is_active:
        submission_reject(
            submission=submission,
            outcome=SubmissionOutcome.INVALID,
            reasons=[reason("form_inactive", "The form was inactive when this arrived.")],
        )
        return Verdict.GONE
    if errors:
        reasons = [
            reason("field_invalid", message, name)
            for name, messages in errors.items()
            for message in messages
        ]
        submission_reject(submission=submission, outcome=SubmissionOutcome.INVALID, reasons=reasons)
        return Verdict.INVALID
    submission_accept(submission=submission)
    return Verdict.ACCEPTED


def submission_store_unreadable(
    *, form: CaptureForm, meta: SubmissionMeta, code: str, message: str
) -> FormSubmission:
    """A body we could not read (too large, malformed) still leaves a trace."""
    submission = submission_store(form=form, payload={}, meta=meta)
    submission_reject(
        submission=submission,
        outcome=SubmissionOutcome.INVALID,
        reasons=[reason(code, message)],
    )
    return submission


# --- processing --------------------------------------------------------------


def _field_value(field: CaptureFormField, raw: Any) -> Any:
    if field.field_type == FieldType.CHECKBOX:
        return parse_bool(raw[-1] if isinstance(raw, list) and raw else raw)
    if isinstance(raw, list):
        raw = ", ".join(str(v) for v in raw if str(v).strip())
    text = str(raw if raw is not None else "").strip()
    if not text and field.field_type == FieldType.HIDDEN:
        text = field.default_value
    return text[:MAX_VALUE_LENGTH]


def submission_row(
    *, fields: Iterable[CaptureFormField], payload: Mapping[str, Any], consent: bool
) -> dict[str, Any]:
    """Map a raw payload through the form's fields into an ingest row."""
    row: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    fields = list(fields)
    if not fields:
        # The form was deleted after this arrived: map keys named like lead fields.
        row.update({k: v for k, v in payload.items() if k in MAPPABLE_LEAD_FIELDS})
    for item in fields:
        if item.key not in payload and item.field_type not in (
            FieldType.CHECKBOX,
            FieldType.HIDDEN,
        ):
            continue  # not sent at all (e.g. a hand-written snippet): keep what we know
        value = _field_value(item, payload.get(item.key))
        if item.maps_to == CUSTOM:
            if value != "":
                custom[item.key] = value
        elif value not in ("", False):
            row[item.maps_to] = value
    if consent:
        row["email_opt_in"] = True
    row["custom"] = custom
    return row


def campaign_for_utm(utm: Mapping[str, str]) -> Campaign | None:
    """The organization's campaign these UTM values point to, if any.

    A campaign matches when every UTM value it defines equals the submission's
    (case-insensitive); the most specific match wins (campaign > source > medium).
    """
    wanted = {k: utm.get(k, "").lower() for k in ("utm_campaign", "utm_source", "utm_medium")}
    if not (wanted["utm_campaign"] or wanted["utm_source"]):
        return None
    match = Q()
    if wanted["utm_campaign"]:
        match |= Q(utm_campaign__iexact=wanted["utm_campaign"])
    if wanted["utm_source"]:
        match |= Q(utm_source__iexact=wanted["utm_source"])
    best, best_score = None, 0
    for campaign in Campaign.objects.filter(match).order_by("pk")[:50]:
        score = 0
        for attr, weight in (("utm_campaign", 4), ("utm_source", 2), ("utm_medium", 1)):
            theirs = getattr(campaign, attr).lower()
            if not theirs:
                continue
            if theirs != wanted[attr]:
                score = -1
                break
            score += weight
        if score > best_score:
            best, best_score = campaign, score
    return best


# utm_source values that name their channel when no medium says it (a bare
# utm_source=google is a search visit, not a direct one).
_SOURCE_CHANNELS = {
    **dict.fromkeys(
        ("google", "bing", "duckduckgo", "yahoo", "ecosia", "baidu", "yandex", "qwant"),
        Channel.ORGANIC_SEARCH,
    ),
    **dict.fromkeys(
        ("facebook", "instagram", "linkedin", "twitter", "x", "reddit", "youtube", "tiktok"),
        Channel.SOCIAL,
    ),
    **dict.fromkeys(("newsletter", "email", "mailchimp"), Channel.EMAIL),
}


def touch_channel(campaign: Campaign | None, utm: Mapping[str, str]) -> str:
    """The touch's channel: the campaign's, else the medium's, else — a source
    given without a medium — the source's (or Other); Direct only without UTM."""
    if campaign is not None:
        return campaign.channel
    medium = utm.get("utm_medium", "").lower()
    if medium in _MEDIUM_CHANNELS:
        return _MEDIUM_CHANNELS[medium]
    source = utm.get("utm_source", "").lower()
    if medium or source:
        return _SOURCE_CHANNELS.get(source, Channel.OTHER)
    return Channel.DIRECT


def submission_process(*, submission_id: int) -> FormSubmission | None:
    """Turn an accepted submission into a lead (created or merged) with its touchpoints.

    Idempotent: the submission row is locked and a processed one is left alone,
    so a redelivered or swept task does nothing twice. One transaction: the
    lead, its activities and the submission's outcome commit together.
    """
    # Counted outside the main transaction, so failed attempts are remembered
    # and the sweep can give up on a submission that always fails.
    FormSubmission.objects.filter(pk=submission_id, processed_at__isnull=True).update(
        attempts=F("attempts") + 1
    )
    with transaction.atomic():
        # Claimed, not waited for: a row locked right now is being processed by
        # another worker (a redelivery or a swept duplicate), which finishes it.
        submission = (
            FormSubmission.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("form__default_campaign")
            .filter(pk=submission_id)
            .first()
        )
        if submission is None or submission.processed_at is not None:
            return submission
        now = timezone.now()
        if submission.outcome in (SubmissionOutcome.SPAM, SubmissionOutcome.INVALID):
            submission.processed_at = now  # rejected, never a lead
            submission.save(update_fields=["processed_at"])
            return submission
        _process(submission)
        submission.processed_at = now
        submission.save(update_fields=["outcome", "outcome_reasons", "lead", "processed_at"])
    return submission


def submissions_process(*, submission_ids: Iterable[int]) -> int:
    """Process swept submissions one by one (each its own transaction, see
    submission_process). One that fails is logged and left to a later sweep,
    which gives up after SWEEP_MAX_ATTEMPTS; an outage of the database stops
    the chunk so its task is retried. Returns how many were processed here."""
    done = 0
    for submission_id in submission_ids:
        try:
            submission = submission_process(submission_id=submission_id)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("Swept submission %s failed; left for a later sweep", submission_id)
            continue
        done += submission is not None and submission.processed_at is not None
    return done


def _processing_fields(form: CaptureForm) -> list[CaptureFormField]:
    """The form's fields, from the hosted-form cache when it holds this form
    (the definitions the endpoint validates against, at most its ttl old; a
    builder change drops them on commit), else read and cached."""
    hosted = hosted_forms.get(form.key)
    if hosted is not None and hosted.form.pk == form.pk:
        return hosted.fields
    fields = form_fields(form=form)
    hosted_forms.put(form.key, HostedForm(form=form, fields=fields))
    return fields


def _process(submission: FormSubmission) -> None:
    form = submission.form
    fields = _processing_fields(form) if form else []
    utm = dict(submission.utm or {})
    consent = bool(form and form.consent_text) and parse_bool(submission.payload.get(CONSENT_KEY))
    # Double opt-in: the ticked box only asks; consent counts once the email link is clicked.
    confirm_first = consent and form is not None and form.double_opt_in
    row = submission_row(
        fields=fields, payload=submission.payload, consent=consent and not confirm_first
    )
    row["occurred_at"] = submission.received_at
    campaign = (form.default_campaign if form else None) or campaign_for_utm(utm)
    origin = f"form: {form.name}" if form else "form"
    consent_text = form.consent_text if form is not None and consent else ""
    context = {
        "form": form.name if form else "",
        "form_id": form.pk if form else None,
        "submission_id": submission.pk,
        **({"url": submission.page_url} if submission.page_url else {}),
        **({"referrer": submission.referrer} if submission.referrer else {}),
        **utm,
    }
    # The visit that led to the submission: the touch scoring and attribution
    # count, recorded with the submission itself (and so scored with it).
    visit = (ExtraActivity(kind=ActivityKind.PAGE_VIEW, properties=context),)
    touch = Touch(
        source=touch_channel(campaign, utm),
        campaign=campaign,
        activity_kind=form.activity_kind if form else ActivityKind.FORM_SUBMIT,
        activity_properties={
            **context,
            **({"consent_text": consent_text} if consent else {}),
        },
        consent_origin=origin,
        consent_text=consent_text,
        consent_ip_hash=submission.ip_hash,
        also=visit if (submission.page_url or utm) else (),
    )
    [result] = lead_ingest_batch(
        organization_id=submission.organization_id, rows=[row], touch=touch
    )
    if confirm_first and form is not None and result.lead_id is not None:
        consent_request(
            form=form, submission=submission, lead_id=result.lead_id, email=result.email
        )
    submission.outcome = result.outcome
    submission.outcome_reasons = result.reasons
    submission.lead_id = result.lead_id


# --- the sweep ---------------------------------------------------------------


def _sweepable(qs, *, before: datetime):
    # Hosted forms only: they told the visitor "we got it" before processing. An
    # API request answered the client itself, and rolled back what it didn't finish.
    return qs.filter(
        processed_at__isnull=True,
        channel=SubmissionChannel.FORM,
        outcome=SubmissionOutcome.PENDING,
        received_at__lt=before,
        attempts__lt=SWEEP_MAX_ATTEMPTS,
    )


def organizations_with_lost_submissions(*, now: datetime | None = None) -> dict[int, datetime]:
    """Organizations holding accepted submissions that were never processed,
    each with the cutoff of its sweep: SWEEP_AFTER ago when its capture shard
    queue is empty (or the broker cannot tell), SWEEP_AFTER_BUSY ago while
    messages wait there.

    Runs outside any tenant (the periodic sweep): it reads organization ids only,
    through the base manager, on the partial index of unprocessed submissions.
    """
    now = now or timezone.now()
    base = FormSubmission._base_manager.all()
    ids = list(
        _sweepable(base, before=now - SWEEP_AFTER)
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()[:SWEEP_MAX_ORGANIZATIONS]
    )
    shards = {
        organization_id: queues.shard_for(queues.CAPTURE, organization_id)
        for organization_id in ids
    }
    depths = queues.queue_depths(sorted(set(shards.values())))
    cutoffs = {
        organization_id: now - (SWEEP_AFTER_BUSY if depths[shard] else SWEEP_AFTER)
        for organization_id, shard in shards.items()
    }
    busy = [o for o, cutoff in cutoffs.items() if cutoff < now - SWEEP_AFTER]
    if busy:
        still_lost = set(
            _sweepable(base.filter(organization_id__in=busy), before=now - SWEEP_AFTER_BUSY)
            .order_by()
            .values_list("organization_id", flat=True)
            .distinct()
        )
        cutoffs = {o: c for o, c in cutoffs.items() if o not in busy or o in still_lost}
    return cutoffs


def lost_submissions(*, before: datetime, after_id: int = 0) -> list[int]:
    """The active organization's next slice of unprocessed submissions received
    before `before`, in id order after `after_id` (the sweep's cursor, so a
    slice is never re-queued by the same pass)."""
    qs = _sweepable(FormSubmission.objects.filter(pk__gt=after_id), before=before)
    return list(qs.order_by("pk").values_list("pk", flat=True)[:SWEEP_BATCH])
