"""The public side of an email: unsubscribe, open pixel, click redirect.

Rules enforced here:

- the tenant comes from the signed token, never from the request: the message
  is looked up inside that organization's scope, so a token can only ever
  touch its own organization's rows;
- unsubscribing happens on POST only (the page a GET shows asks to confirm),
  records who, when, why and from which message, sets do-not-email,
  suppresses the address and ends the lead's enrollments; doing it twice
  changes nothing;
- a click redirects only to a URL that is in that message (by index), and
  only http(s);
- likely machine opens/clicks (security scanners' user agents, a click within
  seconds of delivery) are flagged on the message but never recorded as
  email_open/email_click activities, so they never feed scoring; real ones are
  recorded through the leads activity service (which fires rescoring).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, ConsentSource, Lead
from leads.services.activities import activity_record_batch
from leads.services.consent import consent_withdraw
from nurture import tokens
from nurture.models import (
    EmailMessage,
    ExitCondition,
    Suppression,
    SuppressionReason,
    Unsubscribe,
)
from nurture.services.common import TrackingError
from nurture.services.enrollments import enrollments_exit

# Link scanners and security gateways that fetch every image and link of a message.
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|forcepoint|sophos|trend ?micro|"
    r"fireeye|ironport|cisco|safelinks|microsoft office existence|bitdefender|zscaler|"
    r"urlscan|scanner|bot\b|crawler|spider|headless|python-requests|python-urllib|curl/|"
    r"wget/|go-http-client|java/|okhttp|libwww|httpclient",
    re.IGNORECASE,
)
MACHINE_CLICK_SECONDS = 10  # a person does not click a link this soon after delivery
MACHINE_OPEN_SECONDS = 2
REASON_MAX = 500


@dataclass(frozen=True)
class Tracked:
    message: EmailMessage
    machine: bool
    recorded: bool


def is_machine(user_agent: str, *, sent_at: datetime | None, now: datetime, seconds: int) -> bool:
    if not user_agent or SCANNER_AGENTS.search(user_agent):
        return True
    return sent_at is not None and now - sent_at < timedelta(seconds=seconds)


def _message(data: tokens.TokenData) -> EmailMessage:
    message = EmailMessage.objects.filter(message_id=data.message_id).select_related("step").first()
    if message is None:
        raise TrackingError("This email no longer exists.")
    return message


def _record(message: EmailMessage, kind: str, now: datetime, extra: dict) -> None:
    """An email_open / email_click activity (it feeds engagement scoring). The
    external id caps it at one per message, kind and hour, so a reloaded pixel
    can't inflate a score."""
    step = message.step if message.step_id else None
    properties = {
        "message_id": message.pk,
        "subject": message.subject,
        **({"sequence_id": step.sequence_id, "step": step.position} if step else {}),
        **extra,
    }
    activity_record_batch(
        organization_id=message.organization_id,
        items=[
            {
                "lead": {"id": message.lead_id},
                "kind": kind,
                "occurred_at": now,
                "properties": properties,
                "external_id": f"nurture:{kind}:{message.pk}:{now:%Y%m%d%H}",
            }
        ],
    )


def track_open(*, token: str, user_agent: str = "") -> Tracked:
    data = tokens.read(tokens.OPEN, token)
    now = timezone.now()
    with tenant_scope(data.organization_id), transaction.atomic():
        message = _message(data)
        machine = is_machine(
            user_agent, sent_at=message.sent_at, now=now, seconds=MACHINE_OPEN_SECONDS
        )
        human = not machine and not message.is_test and message.lead_id is not None
        if machine:
            EmailMessage.objects.filter(pk=message.pk).update(machine_open=True)
        elif message.opened_at is None:
            EmailMessage.objects.filter(pk=message.pk).update(opened_at=now)
        if human:
            _record(message, ActivityKind.EMAIL_OPEN, now, {})
    return Tracked(message=message, machine=machine, recorded=human)


def track_click(*, token: str, url: str | None = None, user_agent: str = "") -> str:
    """The URL to redirect to: the message's own link named by the token.
    Raises BadToken / TrackingError for anything else."""
    data = tokens.read(tokens.CLICK, token)
    now = timezone.now()
    with tenant_scope(data.organization_id), transaction.atomic():
        message = _message(data)
        links = message.links or []
        if data.link is None or not 0 <= data.link < len(links):
            raise TrackingError("This link is not part of the email.")
        target = links[data.link]
        if (url is not None and url != target) or not target.lower().startswith(
            ("http://", "https://")
        ):
            raise TrackingError("This link is not part of the email.")
        machine = is_machine(
            user_agent, sent_at=message.sent_at, now=now, seconds=MACHINE_CLICK_SECONDS
        )
        if machine:
            EmailMessage.objects.filter(pk=message.pk).update(machine_click=True)
        else:
            changes = {"clicked_at": message.clicked_at or now}
            if message.opened_at is None:  # a click proves the open the pixel missed
                changes["opened_at"] = now
            EmailMessage.objects.filter(pk=message.pk).update(**changes)
            if not message.is_test and message.lead_id is not None:
                _record(message, ActivityKind.EMAIL_CLICK, now, {"url": target})
    return target


def unsubscribe_target(*, token: str) -> EmailMessage:
    """The message an unsubscribe link belongs to (for the confirm page)."""
    data = tokens.read(tokens.UNSUBSCRIBE, token)
    with tenant_scope(data.organization_id):
        return _message(data)


def unsubscribe(*, token: str, reason: str = "") -> EmailMessage:
    """Unsubscribe the recipient of the message the token names (idempotent)."""
    data = tokens.read(tokens.UNSUBSCRIBE, token)
    now = timezone.now()
    reason = " ".join((reason or "").split())[:REASON_MAX]
    with tenant_scope(data.organization_id), transaction.atomic():
        message = _message(data)
        org_id = message.organization_id
        Suppression.objects.get_or_create(
            email=message.to_email,
            defaults={"organization_id": org_id, "reason": SuppressionReason.UNSUBSCRIBE},
        )
        already = Unsubscribe.objects.filter(message=message).exists()
        if not already:
            consent_withdraw(
                organization_id=org_id,
                lead_id=message.lead_id,
                email=message.to_email,
                source=ConsentSource.UNSUBSCRIBE,
                detail=f"unsubscribe link of email {message.pk}",
            )
            Unsubscribe.objects.create(
                organization_id=org_id,
                lead_id=message.lead_id,
                email=message.to_email,
                reason=reason,
                occurred_at=now,
                message=message,
            )
        if message.lead_id is not None:
            Lead.objects.filter(pk=message.lead_id).update(do_not_email=True)
            enrollments_exit(
                organization_id=org_id,
                lead_ids=[message.lead_id],
                reason=ExitCondition.UNSUBSCRIBED,
            )
            if not already and not message.is_test:
                activity_record_batch(
                    organization_id=org_id,
                    items=[
                        {
                            "lead": {"id": message.lead_id},
                            "kind": ActivityKind.EMAIL_UNSUBSCRIBE,
                            "occurred_at": now,
                            "properties": {"message_id": message.pk, "reason": reason},
                            "external_id": f"nurture:unsubscribe:{message.pk}",
                        }
                    ],
                )
    return message
