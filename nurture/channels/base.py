"""The channel protocol and the values it passes (re-exported by nurture.channels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from accounts.models import Organization
    from leads.models import Lead
    from nurture.models import (
        DirectEmail,
        EmailMessage,
        Enrollment,
        NurtureSettings,
        SequenceStep,
    )

Failure = Literal["transient", "permanent"]


@dataclass(frozen=True)
class Send:
    """What a channel needs to compose one ledger row besides the lead and step."""

    organization: Organization
    settings: NurtureSettings
    now: datetime
    enrollment: Enrollment | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended without an error. confirmed=False: the message was
    handed over but the receiver's answer was lost (probably delivered; it is
    never delivered again automatically)."""

    confirmed: bool = True
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """A classified delivery failure. unreachable (transient): the receiver
    cannot be reached at all, so the rest of the batch waits without trying;
    bounced (permanent): the address itself was refused, so it is suppressed."""

    failure: Failure
    unreachable: bool = False
    bounced: bool = False


class Channel(Protocol):
    name: str

    def compose(self, send: Send, lead: Lead | None, step: SequenceStep) -> EmailMessage:
        """The unsaved ledger row with its final content."""
        ...

    def deliver(
        self,
        message: EmailMessage | DirectEmail,
        *,
        on_handed: Callable[[], None],
        from_name: str | None = None,
        reply_to: str | None = None,
    ) -> DeliveryResult:
        """Deliver one claimed row. on_handed() runs (and commits its marker) right
        before the receiver can accept the message. A failure raises. from_name
        and reply_to override the sender's display name and add a Reply-To
        (a rep's one-to-one email, a DirectEmail row: nurture.services.direct)."""
        ...

    def classify(self, exc: Exception) -> Verdict | None:
        """The verdict on an exception deliver() raised; None when it is no
        delivery failure (e.g. on_handed's own database error): it propagates."""
        ...
