"""The email channel: compose a ledger row from a template (nurture.rendering
and nurture.sending build the message) and deliver it over SMTP with the
at-most-once hand-off of nurture.sending.deliver."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from nurture import sending
from nurture.channels.base import DeliveryResult, Send, Verdict
from nurture.models import EmailMessage, EmailTemplate, SequenceStep
from nurture.services.common import from_address


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
    message_id = sending.new_message_id(organization_id=organization.pk, from_email=sender)
    composed = sending.compose(
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

    def deliver(self, message: EmailMessage, *, on_handed: Callable[[], None]) -> DeliveryResult:
        try:
            sending.deliver(message, on_handed=on_handed)
        except sending.UnconfirmedSendError as exc:
            return DeliveryResult(confirmed=False, detail=str(exc))
        return DeliveryResult()

    def classify(self, exc: Exception) -> Verdict | None:
        # sending.deliver has already sorted SMTP errors (leadflow.mail.is_transient).
        if isinstance(exc, sending.TransientSendError):
            return Verdict("transient", unreachable=exc.unreachable)
        if isinstance(exc, sending.PermanentSendError):
            return Verdict("permanent", bounced=exc.hard_bounce)
        return None
