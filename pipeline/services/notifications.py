"""Notifications: the one way anything tells a member something (`notify`), their
emails (immediately, in a digest, or not at all, as each member prefers per kind)
and marking them read.

Every notice goes through notify() / notify_many() (its set-based twin): it
resolves the link, fixes the member's email preference for the kind on the row,
writes the notice once per `key` (an event notifies a member once however often
the code that raises it runs: a retried task, a second sweep) and enqueues the
immediate emails on commit. Emails are sent at most once: each notice is claimed
(emailed_at set, committed) before the SMTP call.

Callers (each passes a key naming its event):
- routing and manual assignment: `assignment_notices` (assigned / reassigned);
- the SLA sweep (pipeline.services.sla): at risk, breached, escalated to team leads;
- tasks: `notify(recipient=…, kind=NotificationKind.TASK_DUE, message=…, link=…,
  key=f"task_due:{task.pk}")`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_scopes import get_scope

from accounts.models import Membership
from leadflow.core.errors import LeadflowError
from leadflow.core.mail import describe, header_text, is_transient
from leadflow.core.tenancy import enqueue_on_commit
from leads.models import Lead
from pipeline.models import (
    Assignment,
    AssignmentMethod,
    EmailDelivery,
    Notification,
    NotificationKind,
    NotificationPreference,
)

logger = logging.getLogger(__name__)

K = NotificationKind
# What a member chooses on the preferences page: one line per key, each covering kinds.
PREFERENCES: dict[str, tuple[str, tuple[str, ...], str]] = {
    # key: (label, kinds, default)
    "assigned": ("A new lead is assigned to me", (K.ASSIGNED,), EmailDelivery.IMMEDIATE),
    "reassigned": (
        "A lead is reassigned to me",
        (K.REASSIGNED, K.SLA_REASSIGNED),
        EmailDelivery.IMMEDIATE,
    ),
    "reassigned_away": (
        "A lead of mine is reassigned to someone else",
        (K.REASSIGNED_AWAY,),
        EmailDelivery.DIGEST,
    ),
    "sla_at_risk": ("A lead's SLA is about to run out", (K.SLA_AT_RISK,), EmailDelivery.IMMEDIATE),
    "sla_breach": ("I missed a lead's SLA", (K.SLA_BREACH,), EmailDelivery.IMMEDIATE),
    "sla_escalation": (
        "A rep of a team I lead missed an SLA",
        (K.ESCALATION,),
        EmailDelivery.IMMEDIATE,
    ),
    "task_due": ("A task of mine is due", (K.TASK_DUE,), EmailDelivery.IMMEDIATE),
}
PREFERENCE_OF_KIND: dict[str, str] = {
    kind: key for key, (_label, kinds, _default) in PREFERENCES.items() for kind in kinds
}
EMAIL_MODES = frozenset(EmailDelivery.values)


class NoticeEmailDeferred(LeadflowError):
    """A notice's email hit a transient mail failure; the task retries it."""

    def __init__(self, *, notification_id: int) -> None:
        super().__init__(f"Email of notice {notification_id} deferred")
        self.notification_id = notification_id


@dataclass(frozen=True)
class Notice:
    """One notice to write (see notify_many)."""

    recipient_id: int
    kind: str
    message: str
    lead_id: int | None = None
    opportunity_id: int | None = None
    link: str = ""
    key: str = ""

    @classmethod
    def about(
        cls, assignment: Assignment, kind: str, message: str, *, to: int | None = None
    ) -> Notice:
        """A notice about an assignment's lead (to its rep unless `to` says whom),
        keyed by the kind and the assignment: once per event and member."""
        return cls(
            recipient_id=to or assignment.membership_id,
            kind=kind,
            message=message,
            lead_id=assignment.lead_id,
            key=f"{kind}:{assignment.pk}",
        )


# --- Preferences ----------------------------------------------------------------------


def email_preferences(*, membership_id: int) -> dict[str, str]:
    """The member's email mode per preference key (stored choices over the defaults;
    anything stored that is not a mode is ignored)."""
    row = NotificationPreference.objects.filter(membership_id=membership_id).first()
    return _modes(row.email if row else {})


def preference_defaults() -> dict[str, str]:
    return _modes({})


def _modes(stored) -> dict[str, str]:
    stored = stored if isinstance(stored, dict) else {}
    return {
        key: stored[key] if stored.get(key) in EMAIL_MODES else default
        for key, (_label, _kinds, default) in PREFERENCES.items()
    }


def email_preferences_save(*, membership: Membership, modes: dict[str, str]) -> dict[str, str]:
    """Store a member's choices; unknown keys and modes are refused."""
    unknown = {k for k in modes if k not in PREFERENCES} | {
        v for v in modes.values() if v not in EMAIL_MODES
    }
    if unknown:
        raise ValueError(f"Unknown preference or mode: {sorted(unknown)}")
    merged = {**email_preferences(membership_id=membership.pk), **modes}
    NotificationPreference.objects.update_or_create(
        membership=membership,
        defaults={"organization_id": membership.organization_id, "email": merged},
    )
    return merged


# --- Writing notices ------------------------------------------------------------------


def notify(
    *,
    recipient: Membership | int,
    kind: str,
    message: str,
    lead: Lead | int | None = None,
    opportunity=None,
    link: str = "",
    key: str = "",
    now: datetime | None = None,
) -> Notification | None:
    """Tell one member something: the notice shows in their bell and is emailed as
    they prefer for `kind`. `link` is a path of this site (default: the lead's or
    the opportunity's page). With a `key`, a second call for the same member and
    key writes nothing and returns None."""
    notice = Notice(
        recipient_id=recipient if isinstance(recipient, int) else recipient.pk,
        kind=kind,
        message=message,
        lead_id=_pk(lead),
        opportunity_id=_pk(opportunity),
        link=link,
        key=key,
    )
    created = notify_many(notices=[notice], now=now)
    return created[0] if created else None


def _pk(value) -> int | None:
    return value if value is None or isinstance(value, int) else value.pk


def notify_many(*, notices: Iterable[Notice], now: datetime | None = None) -> list[Notification]:
    """notify() for many notices in a constant number of queries; returns the
    notices written (those whose key was new)."""
    wanted = {(n.recipient_id, n.key or object()): n for n in notices if n.recipient_id}
    if not wanted:
        return []
    now = now or timezone.now()
    # Each notice belongs to its recipient's organization (read from the membership,
    # so a notice can never land in another tenant than its reader's).
    seats = {
        pk: (organization_id, slug)
        for pk, organization_id, slug in Membership.objects.filter(
            pk__in={n.recipient_id for n in wanted.values()}
        ).values_list("pk", "organization_id", "organization__slug")
    }
    wanted = {k: n for k, n in wanted.items() if n.recipient_id in seats}
    keyed = [n for n in wanted.values() if n.key]
    if keyed:
        done = set(
            Notification.objects.filter(
                recipient_id__in={n.recipient_id for n in keyed}, key__in={n.key for n in keyed}
            ).values_list("recipient_id", "key")
        )
        wanted = {k: n for k, n in wanted.items() if (n.recipient_id, n.key) not in done}
    if not wanted:
        return []
    recipients = {n.recipient_id for n in wanted.values()}
    prefs = {
        membership_id: _modes(stored)
        for membership_id, stored in NotificationPreference.objects.filter(
            membership_id__in=recipients
        ).values_list("membership_id", "email")
    }
    defaults = preference_defaults()
    rows = [
        Notification(
            organization_id=seats[n.recipient_id][0],
            recipient_id=n.recipient_id,
            lead_id=n.lead_id,
            opportunity_id=n.opportunity_id,
            kind=n.kind,
            message=header_text(n.message, 500),
            link=(n.link or _default_link(seats[n.recipient_id][1], n))[:300],
            key=n.key[:120],
            email=prefs.get(n.recipient_id, defaults).get(
                PREFERENCE_OF_KIND.get(n.kind, ""), EmailDelivery.IMMEDIATE
            ),
            created_at=now,
        )
        for n in wanted.values()
    ]
    try:
        with transaction.atomic():
            created = Notification.objects.bulk_create(rows)
    except IntegrityError:
        # Another run wrote some of the same keys meanwhile: keep theirs, add the rest.
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        created = list(
            Notification.objects.filter(
                recipient_id__in=recipients,
                key__in=[r.key for r in rows],
                created_at=now,
            )
        )
    immediate: dict[int, list[int]] = {}
    for notice in created:
        if notice.email == EmailDelivery.IMMEDIATE:
            immediate.setdefault(notice.organization_id, []).append(notice.pk)
    for organization_id, ids in immediate.items():
        _enqueue_emails(organization_id, ids)
    return created


def _default_link(org_slug: str, notice: Notice) -> str:
    if notice.opportunity_id:
        return reverse(
            "pipeline:opportunity",
            kwargs={"org_slug": org_slug, "opportunity_id": notice.opportunity_id},
        )
    if notice.lead_id:
        kwargs = {"org_slug": org_slug, "lead_id": notice.lead_id}
        return reverse("leads:lead_detail", kwargs=kwargs)
    return reverse("notifications:list", kwargs={"org_slug": org_slug})


def assignment_notices(
    *, assignments: list[Assignment], previous_owner: dict[int, int], now: datetime
) -> list[Notification]:
    """The notices of new assignments: "assigned" for a lead nobody had, "reassigned"
    to the new owner and "reassigned away" to the old one for a lead that moved."""
    if not assignments:
        return []
    names = {
        lead.pk: str(lead)
        for lead in Lead.objects.filter(pk__in=[a.lead_id for a in assignments]).only(
            "first_name", "last_name", "email", "external_id"
        )
    }
    notices = []
    for a in assignments:
        name = names.get(a.lead_id, "a lead")
        before = previous_owner.get(a.lead_id)
        if before is None:
            message = f"New lead assigned to you: {name}. {_reason(a)}"
            notices.append(Notice.about(a, K.ASSIGNED, message))
            continue
        if before == a.membership_id:
            continue
        sla = a.method == AssignmentMethod.SLA_REASSIGN
        if sla:
            to_new = f"{name} was reassigned to you after an SLA breach: act quickly."
            to_old = f"{name} was reassigned to someone else after an SLA breach."
        else:
            to_new = f"{name} was reassigned to you. {_reason(a)}"
            to_old = f"{name} was reassigned to someone else."
        notices.append(Notice.about(a, K.SLA_REASSIGNED if sla else K.REASSIGNED, to_new))
        notices.append(Notice.about(a, K.REASSIGNED_AWAY, to_old, to=before))
    return notify_many(notices=notices, now=now)


def _reason(assignment: Assignment) -> str:
    return f"Why: {assignment.reason}" if assignment.reason else ""


# --- Emails ---------------------------------------------------------------------------


def absolute(path: str) -> str:
    """A link of this site for an email (only our own paths are made absolute)."""
    if not path.startswith("/") or path.startswith("//"):
        return settings.SITE_URL.rstrip("/") + "/"
    return settings.SITE_URL.rstrip("/") + path


def _preferences_url(notice: Notification) -> str:
    slug = notice.organization.slug
    return absolute(reverse("notifications:preferences", kwargs={"org_slug": slug}))


def _send(*, to: str, subject: str, body: str) -> None:
    send_mail(
        # The message names the lead: lead data never breaks the header.
        subject=header_text(subject, 130),
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[to],
    )


def notification_emails_send(*, notification_ids: list[int]) -> int:
    """Email each notice to its recipient at most once.

    Each notice is claimed (emailed_at set, committed) before the SMTP call, so a
    retried task skips the ones already sent; this runs in autocommit on purpose.
    A transient mail failure releases the claim and raises NoticeEmailDeferred (the
    task retries); a permanent one is recorded on the notice (the team page lists
    it) and the other notices still go out."""
    sent = 0
    notices = Notification.objects.filter(
        pk__in=notification_ids,
        emailed_at__isnull=True,
        email=EmailDelivery.IMMEDIATE,  # the digest sends the others; "off" never
    )
    for notice in notices.select_related("recipient__user", "organization").order_by("pk"):
        claimed = Notification.objects.filter(pk=notice.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        user = notice.recipient.user
        if not claimed or not notice.recipient.is_active or not user.email:
            continue
        body = (
            f"{notice.message}\n\nOpen it in LeadFlow: {absolute(notice.link)}\n\n"
            f"Choose which emails you get: {_preferences_url(notice)}\n"
        )
        try:
            _send(to=user.email, subject=f"[LeadFlow] {notice.message}", body=body)
        except Exception as exc:
            logger.exception("Email of notice %s failed", notice.pk)
            if is_transient(exc):
                Notification.objects.filter(pk=notice.pk).update(emailed_at=None)
                raise NoticeEmailDeferred(notification_id=notice.pk) from exc
            # Permanent: it would fail again. Keep the claim, say why, go on.
            Notification.objects.filter(pk=notice.pk).update(email_error=describe(exc)[:300])
            continue
        sent += 1
    return sent


def notification_emails_failed(*, notification_ids: list[int], error: str) -> int:
    """The mail server stayed unavailable through every retry: the batch's notices not
    yet emailed are marked failed with why (the team page lists them)."""
    return Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).update(
        emailed_at=timezone.now(), email_error=error[:300]
    )


# An immediate email still owed this long after its notice was written lost its task
# (a broker outage at enqueue, a killed worker): the hourly digest run re-enqueues it.
LOST_EMAIL_AFTER = timedelta(minutes=15)


def notification_emails_requeue(*, now: datetime | None = None) -> int:
    """Enqueue again the immediate emails of the active organization whose task was
    lost; the send's claim keeps a task that was only slow from sending twice."""
    now = now or timezone.now()
    owed = list(
        Notification.objects.filter(
            email=EmailDelivery.IMMEDIATE,
            emailed_at__isnull=True,
            created_at__lt=now - LOST_EMAIL_AFTER,
        ).values_list("pk", flat=True)[:1000]
    )
    if owed:
        _enqueue_emails(get_scope()["organization"], owed)
    return len(owed)


def _enqueue_emails(organization_id: int, notification_ids: list[int]) -> None:
    enqueue_on_commit(
        "pipeline.send_notification_emails",
        organization_id=organization_id,
        notification_ids=notification_ids,
    )


def notification_digests_send(*, now: datetime | None = None) -> int:
    """One email per member of the active organization listing every notice they
    chose to get in a digest and have not been sent yet; returns emails sent.

    Exactly once per notice: a member's pending notices are claimed under one batch
    id before the SMTP call and the email lists exactly the claimed ones. A
    transient failure releases the claim and raises NoticeEmailDeferred (the task
    retries; a later run would also pick them up); a permanent one is recorded."""
    now = now or timezone.now()
    owed = Notification.objects.filter(email=EmailDelivery.DIGEST, emailed_at__isnull=True)
    recipients = sorted(set(owed.values_list("recipient_id", flat=True)))
    sent = 0
    for recipient_id in recipients:
        batch = uuid.uuid4().hex
        owed.filter(recipient_id=recipient_id).update(emailed_at=now, digest_batch=batch)
        items = list(
            Notification.objects.filter(digest_batch=batch)
            .select_related("recipient__user", "organization")
            .order_by("created_at", "pk")
        )
        if not items:
            continue
        member = items[0].recipient
        if not member.is_active or not member.user.email:
            continue
        lines = [f"- {n.message}\n  {absolute(n.link)}" for n in items]
        body = (
            f"What happened since your last digest ({len(items)}):\n\n"
            + "\n\n".join(lines)
            + f"\n\nChoose which emails you get: {_preferences_url(items[0])}\n"
        )
        try:
            _send(
                to=member.user.email,
                subject=f"[LeadFlow] Your digest: {len(items)} notification"
                + ("" if len(items) == 1 else "s"),
                body=body,
            )
        except Exception as exc:
            logger.exception("Digest of member %s failed", recipient_id)
            claimed = Notification.objects.filter(digest_batch=batch)
            if is_transient(exc):
                claimed.update(emailed_at=None, digest_batch="")
                raise NoticeEmailDeferred(notification_id=items[0].pk) from exc
            claimed.update(email_error=describe(exc)[:300])
            continue
        sent += 1
    return sent


# --- Reading state --------------------------------------------------------------------


def notifications_mark_read(*, recipient_id: int, notification_ids: list[int] | None = None) -> int:
    """Mark a member's notices (all, or the given ones) as read."""
    unread = Notification.objects.filter(recipient_id=recipient_id, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


def notification_open(*, recipient_id: int, notification_id: int) -> Notification | None:
    """The member opens one of their notices: it is marked read; None when it is not
    theirs (someone else's notice is a 404, like another tenant's)."""
    notice = Notification.objects.filter(
        Q(pk=notification_id) & Q(recipient_id=recipient_id)
    ).first()
    if notice is not None and notice.read_at is None:
        notice.read_at = timezone.now()
        Notification.objects.filter(pk=notice.pk).update(read_at=notice.read_at)
    return notice
