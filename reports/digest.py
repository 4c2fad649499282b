"""The weekly KPI digest: opt-in per member, the week's headline numbers against
the week before, sent at most once per member and week.

The week is Monday to Sunday in the organization's timezone; a digest goes out
on the following Monday from 07:00 local time (beat runs hourly). A sales rep's
digest is scoped like their reports: their own and their team's leads.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization
from leadflow.core.errors import LeadflowError
from leadflow.core.mail import describe, header_text, is_transient
from leads.models import Lead, LeadStage
from pipeline.models import Opportunity, OpportunityStatus, StageTransition
from reports.charts import Kpi
from reports.formatting import fmt, fmt_change, rate
from reports.models import DigestSend, DigestSubscription
from reports.period import ReportQuery, org_timezone, rep_scope
from reports.selectors.sales import sales_dashboard

logger = logging.getLogger(__name__)

SEND_FROM_HOUR = 7  # local time on Monday


def digest_subscription_toggle(*, membership: Membership) -> DigestSubscription:
    """Turn the member's weekly digest on if it was off, off if it was on."""
    with transaction.atomic():
        sub, _ = DigestSubscription.objects.select_for_update().get_or_create(
            membership=membership, defaults={"organization_id": membership.organization_id}
        )
        sub.weekly = not sub.weekly
        sub.save(update_fields=["weekly", "updated_at"])
    return sub


def is_subscribed(*, membership: Membership) -> bool:
    return DigestSubscription.objects.filter(membership=membership, weekly=True).exists()


@dataclass(frozen=True)
class DigestStatus:
    subscribed: bool
    failed_week: dt.date | None = None  # the member's latest digest, when it failed
    error: str = ""


def digest_status(*, membership: Membership) -> DigestStatus:
    """Whether the member gets the digest, and why their latest one failed (one query)."""
    latest = DigestSend.objects.filter(membership=OuterRef("membership")).order_by("-week_start")
    row = (
        DigestSubscription.objects.filter(membership=membership)
        .annotate(
            latest_failed=Subquery(latest.values("failed_at")[:1]),
            latest_week=Subquery(latest.values("week_start")[:1]),
            latest_error=Subquery(latest.values("error")[:1]),
        )
        .values("weekly", "latest_failed", "latest_week", "latest_error")
        .first()
    )
    if row is None:
        return DigestStatus(subscribed=False)
    if row["latest_failed"] is None:
        return DigestStatus(subscribed=row["weekly"])
    return DigestStatus(row["weekly"], row["latest_week"], row["latest_error"])


class DigestDeferred(LeadflowError):
    """A member's digest hit a transient mail failure; the task retries it."""

    def __init__(self, *, membership_id: int, week_start: dt.date) -> None:
        super().__init__(f"Weekly digest to membership {membership_id} deferred")
        self.membership_id = membership_id
        self.week_start = week_start


def digest_failure_record(
    *, organization_id: int, membership_id: int, week_start: dt.date, error: str
) -> None:
    """The member's digest of that week failed for good: store why (the reports pages
    show it to them); a later run of the same week skips it."""
    send, _ = DigestSend.objects.get_or_create(
        membership_id=membership_id,
        week_start=week_start,
        defaults={"organization_id": organization_id},
    )
    if send.sent_at is None:
        DigestSend.objects.filter(pk=send.pk).update(failed_at=timezone.now(), error=error[:300])


def week_query(*, organization: Organization, week_start: dt.date, membership=None) -> ReportQuery:
    return ReportQuery(
        start=week_start,
        end=week_start + dt.timedelta(days=6),
        grain="day",
        tz=org_timezone(organization),
        owner_ids=rep_scope(membership),
    )


def weekly_kpis(*, organization_id: int, query: ReportQuery, now: dt.datetime) -> list[Kpi]:
    """The digest's headline numbers for the query's week and the week before."""

    def numbers(q: ReportQuery) -> dict:
        period = {"gte": q.start_at, "lt": q.end_at}
        leads = Lead.objects.filter(q.created_q(), discarded_at__isnull=True).count()
        moves = StageTransition.objects.filter(
            q.lead_q("lead__"), occurred_at__gte=period["gte"], occurred_at__lt=period["lt"]
        ).aggregate(
            **{
                s: Count("pk", filter=Q(to_stage=s))
                for s in (LeadStage.MQL, LeadStage.SAL, LeadStage.SQL)
            }
        )
        deals = Opportunity.objects.filter(
            q.lead_q("lead__"), closed_at__gte=period["gte"], closed_at__lt=period["lt"]
        ).aggregate(
            won=Count("pk", filter=Q(status=OpportunityStatus.WON)),
            lost=Count("pk", filter=Q(status=OpportunityStatus.LOST)),
        )
        # Won revenue per currency: amounts in different currencies never add up.
        revenue = dict(
            Opportunity.objects.filter(
                q.lead_q("lead__"),
                closed_at__gte=period["gte"],
                closed_at__lt=period["lt"],
                status=OpportunityStatus.WON,
            )
            .order_by()
            .values_list("currency")
            .annotate(amount=Sum("amount"))
        )
        sla = sales_dashboard(
            organization_id=organization_id, query=q, now=now
        ).totals.sla_compliance
        return {
            "leads": leads,
            **moves,
            **deals,
            "revenue": {(c or "").upper(): a for c, a in revenue.items()},
            "win_rate": rate(deals["won"], deals["won"] + deals["lost"]),
            "sla": sla,
        }

    this, before = numbers(query), numbers(query.previous)
    # One revenue figure per currency either week won a deal in ("Won revenue"
    # alone, and zero, when neither did).
    currencies = sorted({*this["revenue"], *before["revenue"]})
    for week in (this, before):
        week.update({f"revenue:{c}": week["revenue"].get(c, 0) for c in currencies})
        week["revenue:"] = 0
    spec = [
        ("New leads", "leads", "int", "people"),
        ("MQLs", LeadStage.MQL, "int", "fire"),
        ("Accepted by sales (SAL)", LeadStage.SAL, "int", "hand-thumbs-up"),
        ("Sales qualified (SQL)", LeadStage.SQL, "int", "patch-check"),
        ("Deals won", "won", "int", "trophy"),
        *(
            [(f"Won revenue ({c})", f"revenue:{c}", "money", "cash-stack") for c in currencies]
            or [("Won revenue", "revenue:", "money", "cash-stack")]
        ),
        ("Win rate", "win_rate", "pct", "bullseye"),
        ("SLA compliance", "sla", "pct", "stopwatch"),
    ]
    return [
        Kpi(label=label, value=this[key], previous=before[key], kind=kind, icon=icon)
        for label, key, kind, icon in spec
    ]


def last_full_week(local_now: dt.datetime) -> dt.date:
    """Monday of the week before the current one."""
    today = local_now.date()
    return today - dt.timedelta(days=today.weekday() + 7)


def _render(organization: Organization, membership: Membership, query: ReportQuery, kpis):
    rows = [
        {
            "label": k.label,
            "value": fmt(k.value, k.kind),
            "previous": fmt(k.previous, k.kind),
            "change": ("%+.1f pts" % (k.change * 100))
            if k.kind == "pct" and k.change is not None
            else fmt_change(k.change),
        }
        for k in kpis
    ]
    path = reverse("reports:marketing", kwargs={"org_slug": organization.slug})
    context = {
        "organization": organization,
        "membership": membership,
        "query": query,
        "rows": rows,
        "reports_url": settings.SITE_URL.rstrip("/") + path,
        "scoped": query.owner_ids is not None,
    }
    text = render_to_string("reports/email/digest.txt", context)
    html = render_to_string("reports/email/digest.html", context)
    return text, html


def digests_send(
    *, organization_id: int, now: dt.datetime | None = None, force: bool = False
) -> int:
    """Send last week's digest to every subscribed member not yet sent it.

    Runs only on Monday from 07:00 local time unless `force`. Each send is claimed
    by its unique (member, week) row before the SMTP call, in autocommit, so a
    retried or concurrent task skips it. A transient mail failure releases the
    claim and raises DigestDeferred (the task retries); a permanent one is recorded
    on the claim and the others still get theirs. Must run inside the
    organization's scope."""
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    local = now.astimezone(org_timezone(organization))
    if not force and (local.weekday() != 0 or local.hour < SEND_FROM_HOUR):
        return 0
    week_start = last_full_week(local)
    members = (
        Membership.objects.filter(
            organization_id=organization_id,
            is_active=True,
            digest_subscription__weekly=True,
            user__is_active=True,
        )
        .exclude(user__email="")
        .exclude(digest_sends__week_start=week_start)
        .select_related("user")
        .order_by("pk")
    )
    sent = 0
    for membership in members:
        try:
            with transaction.atomic():
                claim = DigestSend.objects.create(
                    organization_id=organization_id, membership=membership, week_start=week_start
                )
        except IntegrityError:
            continue  # another run got there first
        query = week_query(organization=organization, week_start=week_start, membership=membership)
        text, html = _render(
            organization,
            membership,
            query,
            weekly_kpis(organization_id=organization_id, query=query, now=now),
        )
        subject = f"{organization.name}: your weekly KPIs, {query.start:%d %b}–{query.end:%d %b %Y}"
        try:
            send_mail(
                subject=header_text(subject),
                message=text,
                html_message=html,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[membership.user.email],
            )
        except Exception as exc:
            logger.exception("Weekly digest to membership %s failed", membership.pk)
            if is_transient(exc):
                claim.delete()  # the task's retry (or the next hourly run) claims it again
                raise DigestDeferred(membership_id=membership.pk, week_start=week_start) from exc
            # Permanent: it would fail again. Record it and go on with the others.
            digest_failure_record(
                organization_id=organization_id,
                membership_id=membership.pk,
                week_start=week_start,
                error=describe(exc),
            )
            continue
        DigestSend.objects.filter(pk=claim.pk).update(sent_at=timezone.now())
        sent += 1
    return sent
