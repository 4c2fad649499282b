"""Reads for the nurture pages: lists with their growth, members, templates,
sequences with their counts, enrollments and the outbox.

Counts come from correlated subqueries (never a join of two one-to-many
relations, which would multiply the rows), so every list page is one query
for the page plus a fixed number for counts and charts, whatever its size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.models import Lead
from leads.search import search_leads, search_terms
from nurture.dkim import DnsRecord, dns_records
from nurture.models import (
    LIVE_ENROLLMENT,
    EmailMessage,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    ListMembership,
    MessageStatus,
    NurtureList,
    NurtureSettings,
    Sequence,
    SequenceStep,
)
from nurture.services.common import HOLD_PREFIX, is_verified, org_settings, sender_problems

GROWTH_WEEKS = 8
LEAD_SEARCH_LIMIT = 20
PREVIEW_LEAD_CHOICES = 30


def _count(queryset: QuerySet, link: str, **filters) -> Coalesce:
    """COUNT(*) of `queryset` rows whose `link` column is the outer row (a subquery)."""
    rows = (
        queryset.filter(**{link: OuterRef("pk")}, **filters)
        .order_by()
        .values(link)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


# --- Lists -------------------------------------------------------------------------


def live_leads() -> QuerySet[Lead]:
    return Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)


def lists_for_index() -> QuerySet[NurtureList]:
    return NurtureList.objects.order_by("-is_default_community", "name")


def week_starts(*, weeks: int = GROWTH_WEEKS, now: dt.datetime | None = None) -> list[dt.date]:
    """Mondays of the last `weeks` weeks, oldest first, in the current timezone."""
    today = timezone.localdate(now or timezone.now())
    this_monday = today - dt.timedelta(days=today.weekday())
    return [this_monday - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def list_growth(
    *, list_ids: list[int], weeks: int = GROWTH_WEEKS, now: dt.datetime | None = None
) -> dict[int, list[int]]:
    """Members added per week (removed ones included: they were added) for each list,
    `weeks` buckets oldest first. One query: the timestamps of the window's adds,
    bucketed here so the week boundary follows the request's timezone on every
    database."""
    mondays = week_starts(weeks=weeks, now=now)
    start = timezone.make_aware(dt.datetime.combine(mondays[0], dt.time.min))
    growth = {pk: [0] * weeks for pk in list_ids}
    rows = ListMembership.objects.filter(list_id__in=list_ids, added_at__gte=start).values_list(
        "list_id", "added_at"
    )
    for list_id, added_at in rows.iterator(chunk_size=5000):
        index = (timezone.localdate(added_at) - mondays[0]).days // 7
        if 0 <= index < weeks:
            growth[list_id][index] += 1
    return growth


def list_members(*, nurture_list: NurtureList) -> QuerySet[ListMembership]:
    return (
        ListMembership.objects.filter(list=nurture_list, removed_at__isnull=True)
        .select_related("lead", "lead__company")
        .order_by("-added_at", "-pk")
    )


def lead_search(*, nurture_list: NurtureList, q: str) -> list[Lead]:
    """Live leads with an email matching every term, not already on the list."""
    if not search_terms(q):
        return []
    qs = search_leads(live_leads().exclude(email__isnull=True).exclude(email=""), q)
    on_list = ListMembership.objects.filter(list=nurture_list, removed_at__isnull=True)
    qs = qs.exclude(pk__in=on_list.values("lead_id"))
    return list(qs.order_by("email")[:LEAD_SEARCH_LIMIT])


def leads_by_email(*, emails: list[str]) -> dict[str, int]:
    """Normalized email -> lead id for the live leads among `emails` (one query)."""
    rows = live_leads().filter(email__in=emails).values_list("email", "pk")
    return dict(rows)


def sequences_using_list(*, nurture_list: NurtureList) -> list[Sequence]:
    # entry_triggers is a small JSON list; filtering it in Python keeps SQLite and
    # PostgreSQL on the same code path (an organization has tens of sequences).
    return [
        s
        for s in Sequence.objects.order_by("name")
        if any(
            t.get("type") == "joins_list" and t.get("list_id") == nurture_list.pk
            for t in s.entry_triggers or []
        )
    ]


# --- Templates ---------------------------------------------------------------------


def templates_for_index() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.annotate(
        step_count=_count(SequenceStep.objects.all(), "template"),
        sent_count=_count(EmailMessage.objects.all(), "step__template", status=MessageStatus.SENT),
    ).order_by("name")


def preview_leads(*, selected_id: int | None = None) -> list[Lead]:
    """Recent leads with an email to preview a template with (and the chosen one)."""
    qs = live_leads().exclude(email__isnull=True).exclude(email="").select_related("company")
    leads = list(qs.order_by("-created_at")[:PREVIEW_LEAD_CHOICES])
    if selected_id and all(lead.pk != selected_id for lead in leads):
        leads[:0] = list(qs.filter(pk=selected_id))
    return leads


def preview_lead(*, lead_id: int | None) -> Lead | None:
    """The lead a preview frame merges: the chosen one, else the newest (as the editor)."""
    qs = live_leads().exclude(email__isnull=True).exclude(email="").select_related("company")
    chosen = qs.filter(pk=lead_id).first() if lead_id else None
    return chosen or qs.order_by("-created_at").first()


# --- Sequences ---------------------------------------------------------------------


def sequences_for_index() -> QuerySet[Sequence]:
    enrollments = Enrollment.objects.all()
    return Sequence.objects.annotate(
        step_count=_count(SequenceStep.objects.all(), "sequence"),
        active_count=_count(enrollments, "sequence", status__in=LIVE_ENROLLMENT),
        completed_count=_count(enrollments, "sequence", status=EnrollmentStatus.COMPLETED),
        sent_count=_count(
            EmailMessage.objects.all(), "enrollment__sequence", status=MessageStatus.SENT
        ),
    ).order_by("-is_active", "name")


def sequence_steps(*, sequence: Sequence) -> list[SequenceStep]:
    steps = SequenceStep.objects.filter(sequence=sequence).select_related("template")
    return list(steps.order_by("position"))


def enrollment_counts(*, sequence: Sequence) -> dict[str, int]:
    rows = (
        Enrollment.objects.filter(sequence=sequence)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
    )
    counts = {status: 0 for status in EnrollmentStatus.values}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


def enrollments_for(*, sequence: Sequence, status: str = "") -> QuerySet[Enrollment]:
    qs = Enrollment.objects.filter(sequence=sequence).select_related("lead")
    if status in EnrollmentStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-enrolled_at", "-pk")


# --- Outbox ------------------------------------------------------------------------


def outbox(*, status: str = "", sequence_id: int | None = None) -> QuerySet[EmailMessage]:
    qs = EmailMessage.objects.select_related("lead", "enrollment__sequence", "step").defer(
        "html", "text"
    )
    if status in MessageStatus.values:
        qs = qs.filter(status=status)
    elif status == "test":
        qs = qs.filter(is_test=True)
    if sequence_id:
        qs = qs.filter(enrollment__sequence_id=sequence_id)
    return qs.order_by("-queued_at", "-pk")


def outbox_counts() -> dict[str, int]:
    rows = EmailMessage.objects.order_by().values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in MessageStatus.values}
    counts.update({r["status"]: r["n"] for r in rows})
    counts["all"] = sum(counts.values())
    return counts


def message_detail() -> QuerySet[EmailMessage]:
    return EmailMessage.objects.select_related("lead", "enrollment__sequence", "step__template")


# The sequence report: per step, how many were sent, delivered, opened, clicked,
# unsubscribed, bounced and became MQLs afterwards.
_REPORT_SENT = Q(status__in=[MessageStatus.SENT, MessageStatus.BOUNCED])


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
            sent=Count("pk", filter=_REPORT_SENT, **distinct),
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


# --- sender identity -----------------------------------------------------------------


@dataclass(frozen=True)
class SenderStatus:
    settings: NurtureSettings
    problems: list[str]  # why marketing email is on hold (empty: it goes out)
    waiting: int  # due sequence steps not dispatched because of them
    held: int  # queued emails held because of them
    records: list[DnsRecord]

    @property
    def verified(self) -> bool:
        return is_verified(self.settings)


def sender_status(*, organization_id: int, records: bool = False) -> SenderStatus:
    """The organization's sender, what keeps its email on hold and how much
    waits for it; with records, the DNS records to publish."""
    cfg = org_settings(organization_id)
    problems = sender_problems(cfg)
    waiting = held = 0
    if problems:
        waiting = Enrollment.objects.filter(
            status=EnrollmentStatus.ACTIVE,
            awaiting_send=False,
            next_send_at__lte=timezone.now(),
            sequence__is_active=True,
        ).count()
        held = EmailMessage.objects.filter(
            status=MessageStatus.QUEUED, error__startswith=HOLD_PREFIX
        ).count()
    dns = []
    if records and cfg.from_email:
        dns = dns_records(
            from_email=cfg.from_email, selector=cfg.dkim_selector, public_key=cfg.dkim_public_key
        )
    return SenderStatus(cfg, problems, waiting, held, dns)


# --- one-to-one email and replies ---------------------------------------------------------


def emailable_leads(*, membership) -> QuerySet[Lead]:
    """Leads this member may email: live ones; a sales rep only their own
    (another rep's lead is a 404, as on the pipeline pages)."""
    from accounts.models import Role

    qs = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    if membership.role == Role.SALES_REP:
        qs = qs.filter(owner=membership)
    return qs.select_related("company", "owner__user")


def inbound_replies(*, status: str) -> QuerySet:
    """Received replies with one status (the unmatched list), newest first."""
    from nurture.models import InboundMail

    return InboundMail.objects.filter(status=status).order_by("-received_at", "-pk")


def inbound_rejections(*, limit: int = 20) -> list:
    from nurture.models import InboundRejection

    return list(InboundRejection.objects.order_by("-received_at", "-pk")[:limit])


def lead_direct_emails(*, lead_id: int, limit: int = 20) -> list:
    """A lead's one-to-one emails, newest first, with their delivery status (one query)."""
    from nurture.models import DirectEmail

    return list(
        DirectEmail.objects.filter(lead_id=lead_id)
        .select_related("sender__user")
        .order_by("-queued_at", "-pk")[:limit]
    )
