"""The email channel (nurture.channels): a step's template composed into an
email (layout, footer, tracking; merge fields by nurture.rendering) and handed
to Django's email backend (EMAIL_URL), with SMTP errors sorted into transient,
permanent and unconfirmed (handed over, the answer lost). Over SMTP the send
runs MAIL, RCPT and DATA itself (smtp_transaction) so the caller can commit a
"handed over" marker right before the final dot.

A worker thread keeps its SMTP connection open between messages: opening one
per message (TCP + EHLO + STARTTLS + AUTH) would cost more than the send itself.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address
from django.db import DatabaseError
from django.template.loader import render_to_string
from django.utils.html import escape

from leadflow.core.mail import header_text, is_transient
from nurture import dkim, tokens
from nurture.channels.base import DeliveryResult, Send, Verdict
from nurture.models import DirectEmail, EmailMessage, EmailTemplate, SequenceStep
from nurture.rendering import merge_context, render_parts, track_links
from nurture.services.common import from_address

logger = logging.getLogger(__name__)

ONE_CLICK = "List-Unsubscribe=One-Click"
PIXEL = '<img src="{src}" width="1" height="1" alt="" style="display:block;border:0">'
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# Recipient refused for good: the mailbox does not exist / is disabled (RFC 3463 5.1.x).
HARD_BOUNCE_CODES = frozenset({550, 551, 553})


# Stand-ins rendered into the layout once, replaced per message (NUL never
# occurs in stored text: PostgreSQL refuses it).
_BODY = "\x00body\x00"
_UNSUBSCRIBE = "\x00unsubscribe\x00"


@dataclass(frozen=True)
class Layout:
    html: str
    text: str

    def fill(self, *, html: str, text: str, unsubscribe_url: str) -> tuple[str, str]:
        # The URL is autoescaped in the HTML layout: escape it the same way.
        return (
            self.html.replace(_UNSUBSCRIBE, escape(unsubscribe_url)).replace(_BODY, html, 1),
            self.text.replace(_UNSUBSCRIBE, unsubscribe_url).replace(_BODY, text, 1),
        )


@lru_cache(maxsize=256)
def layout(org_name: str, physical_address: str) -> Layout:
    """The email layout of one organization, rendered once per worker process:
    rendering it per message cost as much as the rest of composing."""
    context = {
        "org_name": org_name,
        "physical_address": physical_address,
        "unsubscribe_url": _UNSUBSCRIBE,
        "body": _BODY,
    }
    return Layout(
        html=render_to_string("nurture/email/layout.html", context),
        text=render_to_string("nurture/email/layout.txt", context),
    )


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
    html, text = layout(organization.name, physical_address or "").fill(
        html=rendered.html, text=rendered.text, unsubscribe_url=unsubscribe
    )
    html, links = track_links(
        html,
        tracked_url=lambda i: tokens.click_url(
            organization_id=org_id, message_id=message_id, link=i
        ),
        skip={unsubscribe},
    )
    pixel = PIXEL.format(src=tokens.open_url(organization_id=org_id, message_id=message_id))
    html = html.replace("</body>", f"{pixel}</body>", 1) if "</body>" in html else html + pixel
    return Composed(rendered.subject, html, text, links, unsubscribe)


class NurtureEmail(EmailMultiAlternatives):
    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        # Without a boundary, the email package picks a random one and compiles a
        # regex for it to scan the body: a third of the cost of a MIME message.
        # A random 128-bit boundary, checked with a plain substring test, is as safe.
        if msg.is_multipart() and msg.get_boundary() is None:
            boundary = f"=_lf_{uuid.uuid4().hex}"
            parts = [self.body, *(alternative[0] for alternative in self.alternatives)]
            if not any(boundary in part for part in parts):
                msg.set_boundary(boundary)
        return msg


def sender_header(message: Any, from_name: str | None = None) -> str:
    """The From header: the row's sender, under another display name when given
    (a rep's one-to-one email goes out as the rep from the organization's address)."""
    sender = message.from_email or settings.DEFAULT_FROM_EMAIL
    if from_name is None:
        return sender
    return formataddr((header_text(from_name), parseaddr(sender)[1]))


def build_email(
    message: Any,
    *,
    connection: Any = None,
    from_name: str | None = None,
    reply_to: str | None = None,
) -> EmailMultiAlternatives:
    """The MIME message of a stored EmailMessage row, with RFC 8058 one-click
    unsubscribe headers and its own Message-ID (stable across retries);
    from_name / reply_to override the From display name and the Reply-To."""
    reply_to = reply_to or _reply_to(message)
    unsubscribe = tokens.unsubscribe_url(
        organization_id=message.organization_id, message_id=message.message_id
    )
    email = NurtureEmail(
        subject=message.subject,
        body=message.text,
        from_email=sender_header(message, from_name),
        to=[message.to_email],
        reply_to=[reply_to] if reply_to else None,
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


def _reply_to(message: Any) -> str:
    """The message's own Reply-To (a rep's email may set one), else the organization's."""
    cfg = getattr(message, "sender_settings", None)
    return getattr(message, "reply_to", "") or (cfg.reply_to if cfg is not None else "")


def _signer(message: Any) -> tuple[str, str, str] | None:
    """(selector, domain, encrypted key) when the message is sent from the
    organization's verified address and it has a DKIM key: every such message is signed."""
    cfg = getattr(message, "sender_settings", None)
    if cfg is None or not (cfg.from_email_verified_at and cfg.dkim_private_key):
        return None
    sender = parseaddr(message.from_email or "")[1].lower()
    if not sender or sender != cfg.from_email.lower():
        return None
    return cfg.dkim_selector, dkim.domain_of(sender), cfg.dkim_private_key


def _dkim_sign(message: Any, data: bytes) -> bytes:
    signer = _signer(message)
    if signer is None:
        return data
    selector, domain, key = signer
    try:
        return dkim.sign(data, selector=selector, domain=domain, encrypted_key=key)
    except dkim.DkimKeyUnreadable:
        # The server's secret key changed without a fallback: sent unsigned
        # rather than not at all (the organization publishes a new key).
        logger.error(
            "DKIM key of organization %s unreadable; sent unsigned.", message.organization_id
        )
        return data


class _Signed(NurtureEmail):
    """A message whose MIME form was built (and DKIM-signed) before the backend
    asked for it: building it again would change its boundary and date."""

    def __init__(self, *args: Any, prebuilt: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prebuilt = prebuilt

    def message(self, *args: Any, **kwargs: Any) -> Any:
        return self.prebuilt


_FOLD = re.compile(rb"\r\n[ \t]+")


def signed_email(message: Any, *, connection: Any = None, **headers: Any) -> EmailMultiAlternatives:
    """build_email() with the DKIM-Signature header of the exact MIME message
    the backend will write (for the file/console/memory backends)."""
    email = build_email(message, connection=connection, **headers)
    if _signer(message) is None:
        return email
    mime = email.message()
    signed = _dkim_sign(message, mime.as_bytes(linesep="\r\n"))
    header = signed[: len(signed) - len(mime.as_bytes(linesep="\r\n"))]
    name, _, value = _FOLD.sub(b" ", header.rstrip(b"\r\n")).decode().partition(":")
    mime[name] = value.strip()
    # The new header must come first (it signs the headers below it).
    mime._headers.insert(0, mime._headers.pop())
    prebuilt = _Signed(
        subject=email.subject, body=email.body, from_email=email.from_email, to=email.to,
        headers=email.extra_headers, connection=connection, reply_to=email.reply_to,
        prebuilt=mime,
    )  # fmt: skip
    prebuilt.alternatives = email.alternatives
    return prebuilt


# --- delivery ---------------------------------------------------------------------


class TransientSendError(Exception):
    """Try again later: the server or the network had a temporary problem.
    unreachable: no connection could be made (the next messages would fail the same way)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class PermanentSendError(Exception):
    """Never retry. hard_bounce: the recipient address itself was refused."""

    def __init__(self, message: str, *, hard_bounce: bool = False) -> None:
        super().__init__(message)
        self.hard_bounce = hard_bounce


class UnconfirmedSendError(Exception):
    """The whole message, final dot included, went to the server but its answer
    never came: it was probably accepted. Never retried automatically."""


_local = threading.local()


def _connection():
    """This thread's open connection to the configured backend (reused for SMTP)."""
    key = (settings.EMAIL_BACKEND, getattr(settings, "EMAIL_HOST", ""), settings.EMAIL_PORT)
    cached = getattr(_local, "connection", None)
    if cached and cached[0] == key:
        return cached[1]
    close_connection()
    if settings.EMAIL_BACKEND != _SMTP_BACKEND:
        return get_connection(fail_silently=False)
    # Without a timeout a silent server (a firewall dropping packets) would hold
    # the send task until its time limit.
    timeout = settings.EMAIL_TIMEOUT or settings.NURTURE_SMTP_TIMEOUT_SECONDS
    conn = get_connection(fail_silently=False, timeout=timeout)
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
    # Which failures are worth retrying is decided once, for all mail (leadflow.core.mail).
    transient = is_transient(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        text = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        if transient:
            return TransientSendError(f"Recipient deferred: {text}")
        return PermanentSendError(
            f"Recipient refused: {text}", hard_bounce=any(c in HARD_BOUNCE_CODES for c in codes)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        error = TransientSendError if transient else PermanentSendError
        return error(f"{exc.smtp_code} {exc.smtp_error!r}")
    if transient:
        return TransientSendError(f"Connection problem: {exc}")
    return PermanentSendError(f"{type(exc).__name__}: {exc}")


MAX_LINE = 998  # RFC 5322 line length limit, in bytes


@lru_cache(maxsize=64)
def _address(address: str) -> str:
    return sanitize_address(address, "utf-8")


def _part(body: str, subtype: str) -> bytes | None:
    data = "\r\n".join(body.splitlines()).encode()
    if any(len(line) > MAX_LINE for line in data.split(b"\r\n")):
        return None  # needs quoted-printable: left to the email package
    encoding = "7bit" if data.isascii() else "8bit"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + data


def smtp_bytes(
    message: Any, *, from_name: str | None = None, reply_to: str | None = None
) -> bytes | None:
    """The same MIME message as build_email(message).message(), written
    directly: the email package's header folding and address parsing cost more
    CPU than everything else in a send. None when the message needs what only
    the email package does (quoted-printable long lines, unusual addresses)."""
    subject, to = message.subject, message.to_email
    if not (to.isascii() and "@" in to and not any(c in to for c in '\r\n<>,"')):
        return None
    if any(c in subject for c in "\r\n"):
        return None
    text, html = _part(message.text, "plain"), _part(message.html, "html")
    if text is None or html is None:
        return None
    boundary = f"=_lf_{uuid.uuid4().hex}".encode()
    if boundary in text or boundary in html:
        return None
    if not subject.isascii():
        subject = Header(subject, "utf-8").encode(linesep="\r\n")
    unsubscribe = tokens.unsubscribe_url(
        organization_id=message.organization_id, message_id=message.message_id
    )
    reply_to = reply_to or _reply_to(message)
    if reply_to:
        if not (reply_to.isascii() and not any(c in reply_to for c in '\r\n<>,"')):
            return None
        reply_to = f"Reply-To: {reply_to}\r\n"
    head = (
        f"Subject: {subject}\r\n"
        f"From: {_address(sender_header(message, from_name))}\r\n"
        f"To: {to}\r\n"
        f"{reply_to}"
        f"Date: {formatdate(localtime=settings.EMAIL_USE_LOCALTIME)}\r\n"
        f"Message-ID: {message.message_id}\r\n"
        f"List-Unsubscribe: <{unsubscribe}>\r\n"
        f"List-Unsubscribe-Post: {ONE_CLICK}\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary.decode()}"\r\n\r\n'
    ).encode()
    delimiter = b"--" + boundary
    return b"".join(
        [head, delimiter, b"\r\n", text, b"\r\n", delimiter, b"\r\n", html, b"\r\n",
         delimiter, b"--\r\n"]
    )  # fmt: skip


# SMTP dot-stuffing (RFC 5321 4.5.2): a line starting with "." gets another one.
_LEADING_DOT = re.compile(rb"(?m)^\.")


def smtp_transaction(
    client: smtplib.SMTP, *, sender: str, recipient: str, data: bytes, before_final_dot: Callable
) -> None:
    """MAIL, RCPT and DATA as smtplib's sendmail() sends them, with one
    difference: before_final_dot() runs after the content and before the
    terminating "." — the one point after which the server may accept the
    message. Raises smtplib's exceptions."""
    if client.sock is not None:
        # The final dot is a tiny write of its own: without TCP_NODELAY, Nagle's
        # algorithm holds it until the server's delayed ACK (~40 ms per message).
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.ehlo_or_helo_if_needed()
    options = [f"size={len(data)}"] if client.does_esmtp and client.has_extn("size") else []
    code, reply = client.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = client.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    content = _LEADING_DOT.sub(b"..", data)
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    client.send(content)
    before_final_dot()
    client.send(b".\r\n")
    code, reply = client.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def _send(message: Any, connection: Any, handed: Callable, headers: dict) -> None:
    if not isinstance(connection, SMTPBackend):
        # File, console and memory backends (development, tests): no server
        # that could accept a message and then lose the answer.
        email = signed_email(message, connection=connection, **headers)
        if email.send(fail_silently=False) != 1:
            raise TransientSendError("The email backend did not accept the message.")
        return
    data = smtp_bytes(message, **headers)
    if data is None:
        data = build_email(message, **headers).message().as_bytes(linesep="\r\n")
    data = _dkim_sign(message, data)
    sender = parseaddr(_address(message.from_email or settings.DEFAULT_FROM_EMAIL))[1]
    smtp_transaction(
        connection.connection,
        sender=sender,
        recipient=_address(message.to_email),
        data=data,
        before_final_dot=handed,
    )


def deliver(
    message: Any,
    *,
    on_handed: Callable[[], None] = lambda: None,
    from_name: str | None = None,
    reply_to: str | None = None,
) -> None:
    """Send one stored message. on_handed() runs (and must commit its marker)
    right before the server can accept the message. from_name / reply_to:
    see build_email().

    Raises TransientSendError (try later), PermanentSendError (never) or
    UnconfirmedSendError (handed over, the answer lost: probably delivered).
    An error of on_handed() itself propagates, the message not handed over.
    A server that dropped our idle connection is retried once on a fresh one
    (it failed before the message could be accepted)."""
    handed = False

    def hand() -> None:
        nonlocal handed
        on_handed()
        handed = True

    for attempt in (1, 2):
        try:
            connection = _connection()
        except Exception as exc:
            # Refused, timed out, a 4xx/5xx greeting, failed STARTTLS or AUTH:
            # the server or our settings, never this message — retried for hours.
            close_connection()
            raise TransientSendError(
                f"Could not connect to the mail server: {exc}", unreachable=True
            ) from exc
        try:
            _send(message, connection, hand, {"from_name": from_name, "reply_to": reply_to})
        except smtplib.SMTPServerDisconnected as exc:
            close_connection()
            if handed:
                raise UnconfirmedSendError(f"Disconnected after the final dot: {exc}") from exc
            if attempt == 2:
                raise TransientSendError(f"Connection problem: {exc}") from exc
            continue
        except (DatabaseError, UnconfirmedSendError):
            # DatabaseError: on_handed() failed, the final dot was never sent.
            close_connection()
            raise
        except Exception as exc:
            close_connection()
            if handed and not isinstance(exc, smtplib.SMTPResponseException):
                raise UnconfirmedSendError(f"No answer after the final dot: {exc}") from exc
            raise _classify(exc) from exc
        return


# --- the channel ------------------------------------------------------------------


def new_message(
    *,
    organization: Any,
    cfg: Any,
    lead: Any,
    template: EmailTemplate,
    sender: str,
    to_email: str,
    now: datetime,
    **fields: Any,
) -> EmailMessage:
    """An unsaved EmailMessage with its final content and a fresh Message-ID."""
    message_id = new_message_id(organization_id=organization.pk, from_email=sender)
    composed = compose(
        organization=organization,
        lead=lead,
        subject=template.subject,
        body_html=template.body_html,
        body_text=template.body_text,
        message_id=message_id,
        physical_address=cfg.physical_address,
    )
    return EmailMessage(
        organization_id=organization.pk,
        lead=lead,
        to_email=to_email,
        from_email=sender,
        subject=composed.subject,
        html=composed.html,
        text=composed.text,
        links=composed.links,
        message_id=message_id,
        queued_at=now,
        next_attempt_at=now,
        enqueued_at=now,
        **fields,
    )


class EmailChannel:
    name = "email"

    def compose(self, send: Send, lead: Any, step: SequenceStep) -> EmailMessage:
        enrollment = send.enrollment
        sequence = enrollment.sequence if enrollment is not None else None
        return new_message(
            organization=send.organization,
            cfg=send.settings,
            lead=lead,
            template=step.template,
            sender=from_address(sequence=sequence, nurture_settings=send.settings),
            to_email=lead.email,
            now=send.now,
            enrollment=enrollment,
            step=step,
        )

    def deliver(
        self,
        message: EmailMessage | DirectEmail,
        *,
        on_handed: Callable[[], None],
        from_name: str | None = None,
        reply_to: str | None = None,
    ) -> DeliveryResult:
        try:
            deliver(message, on_handed=on_handed, from_name=from_name, reply_to=reply_to)
        except UnconfirmedSendError as exc:
            return DeliveryResult(confirmed=False, detail=str(exc))
        return DeliveryResult()

    def classify(self, exc: Exception) -> Verdict | None:
        # deliver() has already sorted SMTP errors (leadflow.core.mail.is_transient).
        if isinstance(exc, TransientSendError):
            return Verdict("transient", unreachable=exc.unreachable)
        if isinstance(exc, PermanentSendError):
            return Verdict("permanent", bounced=exc.hard_bounce)
        return None
