"""Replies to a rep's email, posted by the mail provider's inbound webhook.

Rules enforced here:

- the tenant comes from the unguessable key of the webhook URL; the call must
  be signed with that organization's secret: ``X-LeadFlow-Timestamp`` (Unix
  seconds) and ``X-LeadFlow-Signature: sha256=<hex HMAC-SHA256(secret,
  f"{timestamp}.{body}")>`` — the same scheme as our outbound webhooks. A bad,
  missing or stale signature (older than INBOUND_MAIL_MAX_AGE_SECONDS) is
  refused and kept as an InboundRejection an admin can see, plus a log line;
- every accepted reply is kept (InboundMail), once per Message-ID: a
  provider's retry records nothing twice;
- a reply is matched to its thread by the plus-address token in To (or Cc),
  else by the Message-IDs in In-Reply-To / References; a matched reply becomes
  an EMAIL_REPLIED activity (through the leads activity service, so scoring
  rules on "email replied" apply) with its quoted text trimmed, and the lead
  leaves every live nurture sequence (exit reason "replied");
- a reply to no known thread waits in the "unmatched" list, never dropped, for
  an admin to attach to a lead or dismiss.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses, parseaddr
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership
from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, Lead
from leads.scrub import normalize_email
from leads.services.activities import activity_record_batch
from nurture.models import (
    DirectEmail,
    ExitCondition,
    InboundMail,
    InboundMailbox,
    InboundRejection,
    InboundStatus,
)
from nurture.rendering import html_to_text
from nurture.services.common import NurtureError
from nurture.services.direct import EXCERPT, mailbox_get
from nurture.services.enrollments import enrollments_exit
from pipeline.services.webhooks import sign

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-LeadFlow-Timestamp"
SIGNATURE_HEADER = "X-LeadFlow-Signature"
MAX_BODY_BYTES = 2 * 1024 * 1024
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,250}>")
_TOKEN_RE = re.compile(r"^[0-9a-f]{24}$")
# Where the quoted original starts in a reply's text.
_QUOTE_HEADER_RE = re.compile(
    r"^(On .{0,300}wrote:?|Am .{0,300}schrieb.{0,60}:|-{2,}\s*Original Message\s*-{2,}|_{20,}"
    r"|From: .+)\s*$",
    re.IGNORECASE,
)


class InboundRejected(NurtureError):
    """A webhook call we refuse; status is the HTTP answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Received:
    inbound: InboundMail
    duplicate: bool


# --- the mailbox -------------------------------------------------------------------------


def mailbox_for_key(*, key: str) -> InboundMailbox | None:
    """The mailbox a webhook URL names. The tenant is not known yet: the
    unguessable key names it (the one base-manager read of this module)."""
    if not _KEY_RE.match(key or ""):
        return None
    return InboundMailbox._base_manager.filter(key=key).first()


def mailbox_rotate(*, organization_id: int, actor: Membership | None = None) -> str:
    """A new signing secret (the old one stops working at once); returned to be shown once."""
    mailbox = mailbox_get(organization_id=organization_id)
    secret = "whsec_" + secrets.token_urlsafe(32)
    InboundMailbox.objects.filter(pk=mailbox.pk).update(secret=secret, rotated_at=timezone.now())
    return secret


def webhook_path(mailbox: InboundMailbox) -> str:
    from django.urls import reverse

    return reverse("nurture_public:inbound_mail", kwargs={"key": mailbox.key})


# --- the signature -----------------------------------------------------------------------


def signature_problem(
    *, secret: str, timestamp: str, signature: str, body: bytes, now: datetime
) -> str | None:
    """None when the call is signed with this secret within the allowed age, else why not."""
    if not timestamp or not signature:
        return "missing signature"
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        return "malformed timestamp"
    age = now.timestamp() - int(timestamp)
    if abs(age) > settings.INBOUND_MAIL_MAX_AGE_SECONDS:
        return "stale timestamp"
    if not hmac.compare_digest(sign(secret, int(timestamp), body), signature.strip()):
        return "bad signature"
    return None


def inbound_reject(
    *, mailbox: InboundMailbox, reason: str, remote_addr: str = "", body: bytes = b""
) -> InboundRejection:
    """Keep a refused call for the admin (and log it)."""
    logger.warning(
        "Inbound mail refused for organization %s: %s (from %s)",
        mailbox.organization_id,
        reason,
        remote_addr or "?",
    )
    return InboundRejection.objects.create(
        organization_id=mailbox.organization_id,
        reason=reason[:200],
        remote_addr=(remote_addr or "")[:64],
        body_excerpt=body[:2000].decode("utf-8", "replace"),
        received_at=timezone.now(),
    )


def inbound_verify(
    *, mailbox: InboundMailbox, headers: Mapping[str, str], body: bytes, remote_addr: str = ""
) -> dict[str, Any]:
    """Check the signature and parse the payload; a refusal is recorded and raised."""
    problem = signature_problem(
        secret=mailbox.secret,
        timestamp=headers.get(TIMESTAMP_HEADER, ""),
        signature=headers.get(SIGNATURE_HEADER, ""),
        body=body,
        now=timezone.now(),
    )
    status = 401
    if problem is None:
        status = 400
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload, problem = None, "the body is not JSON"
        if problem is None:
            problem = _payload_problem(payload)
    if problem:
        inbound_reject(mailbox=mailbox, reason=problem, remote_addr=remote_addr, body=body)
        raise InboundRejected(problem, status)
    return payload


def _payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "the payload is not a JSON object"
    if not isinstance(payload.get("from"), str) or not payload["from"].strip():
        return "from is required"
    for key in ("subject", "text", "html", "message_id", "in_reply_to"):
        if not isinstance(payload.get(key) or "", str):
            return f"{key} must be a string"
    for key in ("to", "cc", "references"):
        value = payload.get(key) or ""
        if not isinstance(value, str | list) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        ):
            return f"{key} must be a string or a list of strings"
    return None


# --- reading a reply ---------------------------------------------------------------------


def _joined(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value or "")


def reply_text(text: str) -> str:
    """The new part of a reply: what comes before the quoted original
    ("On … wrote:", "-----Original Message-----", a "> " block)."""
    kept: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if _QUOTE_HEADER_RE.match(stripped) or stripped.startswith(">"):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _thread_tokens(addresses: str, mailbox: InboundMailbox) -> list[str]:
    found = []
    for _name, address in getaddresses([addresses]):
        local, _, _domain = address.partition("@")
        base, plus, token = local.partition("+")
        if plus and base.lower() == mailbox.address_name and _TOKEN_RE.match(token.lower()):
            found.append(token.lower())
    return found


def _thread_of(payload: Mapping[str, Any], mailbox: InboundMailbox) -> DirectEmail | None:
    recipients = f"{_joined(payload.get('to'))}, {_joined(payload.get('cc'))}"
    tokens = _thread_tokens(recipients, mailbox)
    if tokens:
        found = DirectEmail.objects.filter(thread_token__in=tokens).order_by("pk").first()
        if found is not None:
            return found
    ids = _MESSAGE_ID_RE.findall(
        f"{payload.get('in_reply_to') or ''} {_joined(payload.get('references'))}"
    )
    if ids:
        return DirectEmail.objects.filter(message_id__in=ids[:50]).order_by("-pk").first()
    return None


def _message_id(payload: Mapping[str, Any], body: bytes) -> str:
    given = (payload.get("message_id") or "").strip()
    if given:
        return given[:300]
    # No Message-ID: the body's digest stands in, so a retry still records nothing twice.
    return f"<sha256-{hashlib.sha256(body).hexdigest()}@inbound>"


def _record_reply(inbound: InboundMail, lead_id: int, direct: DirectEmail | None) -> None:
    """The EMAIL_REPLIED activity (through the leads activity service: it fires
    rescoring) and the end of the lead's nurture sequences."""
    properties = {
        "thread": direct.thread_token if direct else "",
        "direct_email_id": direct.pk if direct else None,
        "inbound_id": inbound.pk,
        "message_id": inbound.message_id,
        "in_reply_to": inbound.in_reply_to,
        "subject": inbound.subject,
        "from": inbound.from_email,
        "excerpt": reply_text(inbound.text or html_to_text(inbound.html))[:EXCERPT],
    }
    item = {
        "lead": {"id": lead_id},
        "kind": ActivityKind.EMAIL_REPLIED,
        "occurred_at": inbound.received_at,
        "properties": properties,
        "external_id": f"inbound:{inbound.pk}",
    }
    activity_record_batch(organization_id=inbound.organization_id, items=[item], source="email")
    enrollments_exit(
        organization_id=inbound.organization_id, lead_ids=[lead_id], reason=ExitCondition.REPLIED
    )


def inbound_receive(
    *, mailbox: InboundMailbox, payload: Mapping[str, Any], body: bytes = b""
) -> Received:
    """Keep one verified reply and record it on its thread's lead (or as
    unmatched). Idempotent by its Message-ID. Runs in the mailbox's scope."""
    message_id = _message_id(payload, body)
    with tenant_scope(mailbox.organization_id):
        existing = InboundMail.objects.filter(message_id=message_id).first()
        if existing is not None:
            return Received(existing, duplicate=True)
        direct = _thread_of(payload, mailbox)
        try:
            with transaction.atomic():
                inbound = InboundMail.objects.create(
                    organization_id=mailbox.organization_id,
                    message_id=message_id,
                    from_email=str(payload.get("from"))[:320],
                    to=_joined(payload.get("to"))[:5000],
                    subject=str(payload.get("subject") or "")[:300],
                    text=str(payload.get("text") or ""),
                    html=str(payload.get("html") or ""),
                    in_reply_to=str(payload.get("in_reply_to") or "")[:300],
                    references=_joined(payload.get("references"))[:5000],
                    received_at=timezone.now(),
                    status=InboundStatus.MATCHED if direct else InboundStatus.UNMATCHED,
                    lead_id=direct.lead_id if direct else None,
                    direct_email=direct,
                )
                if direct is not None:
                    _record_reply(inbound, direct.lead_id, direct)
        except IntegrityError:
            # The same reply, delivered twice at once: the other call kept it.
            existing = InboundMail.objects.filter(message_id=message_id).first()
            if existing is None:
                raise
            return Received(existing, duplicate=True)
    return Received(inbound, duplicate=False)


# --- the unmatched list ------------------------------------------------------------------


def _unmatched(inbound: InboundMail) -> InboundMail:
    row = InboundMail.objects.select_for_update().get(pk=inbound.pk)
    if row.status != InboundStatus.UNMATCHED:
        raise NurtureError("This reply has already been handled.")
    return row


def inbound_attach(*, inbound: InboundMail, email: str, actor: Membership) -> InboundMail:
    """An admin files an unmatched reply under the lead with this email address:
    it is recorded as that lead's reply, as a matched one would be."""
    address = parseaddr(email or "")[1] or (email or "").strip()
    wanted = normalize_email(address).email or address.lower()
    lead = Lead.objects.filter(
        email=wanted, merged_into__isnull=True, discarded_at__isnull=True
    ).first()
    if lead is None:
        raise NurtureError(f"No lead with the email address {email!r}.")
    with transaction.atomic():
        row = _unmatched(inbound)
        row.status, row.lead, row.handled_by = InboundStatus.ATTACHED, lead, actor
        row.save(update_fields=["status", "lead", "handled_by"])
        _record_reply(row, lead.pk, None)
    return row


def inbound_dismiss(*, inbound: InboundMail, actor: Membership) -> InboundMail:
    """An admin sets an unmatched reply aside (it stays stored)."""
    with transaction.atomic():
        row = _unmatched(inbound)
        row.status, row.handled_by = InboundStatus.DISMISSED, actor
        row.save(update_fields=["status", "handled_by"])
    return row
