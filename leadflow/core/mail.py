"""Mail sent by background tasks (invitations, digests, SLA notices): header-safe
text, which failures are worth retrying, and how a failure reads to a person.

A mail task never fails silently: a transient failure (the server said "try
later", the network broke) is retried with backoff; a permanent one, or a
transient one that outlived its retries, is recorded on the row the mail is
about, where the people concerned see it."""

from __future__ import annotations

import random
import re
import smtplib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError
from django.db import InterfaceError, OperationalError

# CR, LF and the other characters that must never reach a mail header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r"\s{2,}")

ERROR_MAX_LENGTH = 300


def validate_single_line(value: str) -> None:
    """Names that end up in mail headers (organization, person, sender name) are one
    line of text: a line break there would make every mail naming it fail."""
    if value and _CONTROL.search(value):
        raise ValidationError(
            "Use one line of text, without line breaks or tabs.", code="single_line"
        )


def header_text(value: str, max_length: int | None = None) -> str:
    """`value` made safe for a mail header (a subject built from names or lead data):
    control characters become spaces, runs of spaces collapse."""
    text = _SPACES.sub(" ", _CONTROL.sub(" ", value or "")).strip()
    return text[:max_length] if max_length else text


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True  # the database went away for a moment
    if isinstance(exc, BadHeaderError | ValueError | UnicodeError):
        return False  # the message itself is wrong: it will be wrong next time too
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    # SMTPServerDisconnected, refused connections, timeouts, DNS trouble: all OSError.
    return isinstance(exc, OSError)


def describe(exc: BaseException) -> str:
    """One sentence for the page that shows the failure."""
    if isinstance(exc, BadHeaderError):
        reason = "a name in the message has a line break"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        reason = "the mail server refused the address: " + "; ".join(
            f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for code, msg in exc.recipients.values()
        )
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        reason = f"the mail server answered {exc.smtp_code} {text}"
    elif isinstance(exc, OSError):
        reason = f"the mail server could not be reached ({type(exc).__name__}: {exc})"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return header_text(reason, ERROR_MAX_LENGTH)


def retry_or_record(task: Any, exc: BaseException, record: Callable[[str], Any]) -> None:
    """For a mail task's failure: retry a transient one with backoff while retries
    are left (raises celery's Retry); otherwise call `record(description)` so the
    failure is stored where people see it."""
    retries = task.request.retries or 0
    if is_transient(exc) and retries < task.max_retries:
        countdown = min(task.retry_backoff_max, 30 * 2**retries)
        raise task.retry(exc=exc, countdown=random.uniform(countdown / 2, countdown))
    record(describe(exc))
    return None
