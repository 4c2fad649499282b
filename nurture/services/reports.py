"""The sequence report: per step, how many were sent, delivered, opened,
clicked, unsubscribed, bounced and became MQLs afterwards."""

from __future__ import annotations

from django.db.models import Count, F, Q

from nurture.models import EmailMessage, MessageStatus, Sequence, SequenceStep

_SENT = Q(status__in=[MessageStatus.SENT, MessageStatus.BOUNCED])


def sequence_report(*, sequence: Sequence) -> list[dict]:
    """One dict per step (in order); two queries whatever the volume.

    Opens and clicks count messages with a human open/click (machine ones are
    flagged, not counted); "converted" counts leads that became MQL after the
    step's email was sent; rates are shares of delivered messages."""
    steps = list(
        SequenceStep.objects.filter(sequence=sequence)
        .select_related("template")
        .order_by("position")
    )
    distinct = {"distinct": True}
    rows = (
        EmailMessage.objects.filter(step__sequence=sequence, is_test=False)
        .values("step_id")
        .annotate(
            queued=Count("pk", filter=Q(status=MessageStatus.QUEUED), **distinct),
            sent=Count("pk", filter=_SENT, **distinct),
            delivered=Count("pk", filter=Q(status=MessageStatus.SENT), **distinct),
            opened=Count("pk", filter=Q(opened_at__isnull=False), **distinct),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False), **distinct),
            bounced=Count("pk", filter=Q(status=MessageStatus.BOUNCED), **distinct),
            failed=Count("pk", filter=Q(status=MessageStatus.FAILED), **distinct),
            unsubscribed=Count("unsubscribes__message_id", **distinct),
            converted=Count(
                "lead_id",
                filter=Q(lead__mql_eligible=True, lead__mql_changed_at__gte=F("sent_at")),
                **distinct,
            ),
        )
        .order_by()
    )
    by_step = {row.pop("step_id"): row for row in rows}
    report = []
    for step in steps:
        row = by_step.get(step.pk) or dict.fromkeys(
            (
                "queued", "sent", "delivered", "opened", "clicked", "bounced", "failed",
                "unsubscribed", "converted",
            ),
            0,
        )  # fmt: skip
        delivered = row["delivered"]
        report.append(
            {
                "step": step,
                "position": step.position,
                "template": step.template.name,
                **row,
                "open_rate": row["opened"] / delivered if delivered else 0.0,
                "click_rate": row["clicked"] / delivered if delivered else 0.0,
            }
        )
    return report
