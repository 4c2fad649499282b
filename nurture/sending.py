"""Composing a nurture email (layout, footer, tracking) and handing it to Django's
email backend (EMAIL_URL), with SMTP errors sorted into transient and permanent.

A worker thread keeps its SMTP connection open between messages: opening one
per message (TCP + EHLO + STARTTLS + AUTH) would cost more than the send itself.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import threading
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from nurture import tokens
from nurture.rendering import merge_context, render_parts, track_links

ONE_CLICK = "List-Unsubscribe=One-Click"
PIXEL = '<img src="{src}" width="1" height="1" alt="" style="display:block;border:0">'
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# Recipient refused for good: the mailbox does not exist / is disabled (RFC 3463 5.1.x).
HARD_BOUNCE_CODES = frozenset({550, 551, 553})


@dataclass(frozen=True)
class Composed:
    subject: str
    html: str
    text: str
    links: list[str]
    unsubscribe_url: str


def new_message_id(*, organization_id: int, from_email: str) -> str:
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "leadflow.localhost"
    return f"<{uuid.uuid4().hex}.{organization_id}@{domain}>"


def compose(
    *,
    organization: Any,
    lead: Any,
    subject: str,
    body_html: str,
    body_text: str,
    message_id: str,
    physical_address: str = "",
    context: dict | None = None,
) -> Composed:
    """The final subject, HTML and text of one email: merge fields filled, the
    footer (organization, postal address, unsubscribe link) added, links
    rewritten to the click tracker and the open pixel appended."""
    org_id = organization.pk
    unsubscribe = tokens.unsubscribe_url(organization_id=org_id, message_id=message_id)
    merge = merge_context(lead=lead, organization=organization, unsubscribe_url=unsubscribe)
    merge.update(context or {})
    rendered = render_parts(
        subject=subject, body_html=body_html, body_text=body_text, context=merge
    )
    footer = {
        "org_name": organization.name,
        "physical_address": physical_address,
        "unsubscribe_url": unsubscribe,
    }
    html = render_to_string("nurture/email/layout.html", {**footer, "body": rendered.html})
    html, links = track_links(
        html,
        tracked_url=lambda i: tokens.click_url(
            organization_id=org_id, message_id=message_id, link=i
        ),
        skip={unsubscribe},
    )
    pixel = PIXEL.format(src=tokens.open_url(organization_id=org_id, message_id=message_id))
    html = html.replace("</body>", f"{pixel}</body>", 1) if "</body>" in html else html + pixel
    text = render_to_string("nurture/email/layout.txt", {**footer, "body": rendered.text})
    return Composed(rendered.subject, html, text, links, unsubscribe)


def build_email(message: Any, *, connection: Any = None) -> EmailMultiAlternatives:
    """The MIME message of a stored EmailMessage row, with RFC 8058 one-click
    unsubscribe headers and its own Message-ID (stable across retries)."""
    unsubscribe = tokens.unsubscribe_url(
        organization_id=message.organization_id, message_id=message.message_id
    )
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=message.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[message.to_email],
        headers={
            "Message-ID": message.message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": ONE_CLICK,
            "Auto-Submitted": "auto-generated",
        },
        connection=connection,
    )
    email.attach_alternative(message.html, "text/html")
    return email


# --- delivery ---------------------------------------------------------------------


class TransientSendError(Exception):
    """Try again later: the server or the network had a temporary problem."""


class PermanentSendError(Exception):
    """Never retry. hard_bounce: the recipient address itself was refused."""

    def __init__(self, message: str, *, hard_bounce: bool = False) -> None:
        super().__init__(message)
        self.hard_bounce = hard_bounce


_local = threading.local()


def _connection():
    """This thread's open connection to the configured backend (reused for SMTP)."""
    key = (settings.EMAIL_BACKEND, getattr(settings, "EMAIL_HOST", ""), settings.EMAIL_PORT)
    cached = getattr(_local, "connection", None)
    if cached and cached[0] == key:
        return cached[1]
    close_connection()
    conn = get_connection(fail_silently=False)
    if settings.EMAIL_BACKEND == _SMTP_BACKEND:
        conn.open()
        _local.connection = (key, conn)
    return conn


def close_connection() -> None:
    cached = getattr(_local, "connection", None)
    _local.connection = None
    if cached:
        # A broken connection is being dropped anyway: its close() may fail too.
        with contextlib.suppress(Exception):
            cached[1].close()


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        text = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        if codes and all(400 <= c < 500 for c in codes):
            return TransientSendError(f"Recipient deferred: {text}")
        return PermanentSendError(
            f"Recipient refused: {text}", hard_bounce=any(c in HARD_BOUNCE_CODES for c in codes)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        if 400 <= exc.smtp_code < 500:
            return TransientSendError(f"{exc.smtp_code} {exc.smtp_error!r}")
        return PermanentSendError(f"{exc.smtp_code} {exc.smtp_error!r}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | socket.timeout | OSError):
        return TransientSendError(f"Connection problem: {exc}")
    return PermanentSendError(f"{type(exc).__name__}: {exc}")


def deliver(message: Any) -> None:
    """Send one stored message; raises TransientSendError or PermanentSendError.

    A server that dropped our idle connection is retried once on a fresh one
    (it failed before the message was accepted)."""
    for attempt in (1, 2):
        connection = _connection()
        try:
            sent = build_email(message, connection=connection).send(fail_silently=False)
        except smtplib.SMTPServerDisconnected as exc:
            close_connection()
            if attempt == 2:
                raise TransientSendError(f"Connection problem: {exc}") from exc
            continue
        except Exception as exc:
            close_connection()
            raise _classify(exc) from exc
        if sent != 1:
            raise TransientSendError("The email backend did not accept the message.")
        return
