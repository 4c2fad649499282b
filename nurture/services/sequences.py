"""Email templates and sequences (with their ordered steps).

Rules enforced here:

- a template's HTML is sanitized with nh3 and every part is validated (known
  merge fields only, no tags beyond if/else) before it is stored;
- names are unique per organization (case-insensitively, with a clear message);
- a sequence's triggers may only name lists and capture forms of its own
  organization; exit conditions, send window and time zone are checked;
- steps stay numbered 1..n: adding appends, deleting closes the gap, moving
  swaps neighbours — and live enrollments keep pointing at the step they were
  going to receive next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import F, Max

from accounts.models import Membership
from leads.models import CaptureForm
from nurture.models import (
    LIVE_ENROLLMENT,
    EmailTemplate,
    Enrollment,
    ExitCondition,
    NurtureList,
    Sequence,
    SequenceStep,
    Trigger,
)
from nurture.rendering import TemplateInvalid, sanitize_html, validate_template
from nurture.services.common import SequenceInvalid, is_verified, org_settings, owner_org_id

MAX_DELAY_DAYS = 365
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# Steps are renumbered in two UPDATEs through a range no real position reaches,
# so the (sequence, position) unique constraint never sees a transient clash.
_PARK = 10000


def _unique_name(model, name: str, instance, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise SequenceInvalid(f"A {what} needs a name.")
    clash = model.objects.filter(name__iexact=name)
    if instance is not None and instance.pk:
        clash = clash.exclude(pk=instance.pk)
    if clash.exists():
        raise SequenceInvalid(f"There is already a {what} named {name!r}.")
    return name


# --- templates ---------------------------------------------------------------------


def template_save(
    *,
    template: EmailTemplate | None = None,
    data: Mapping[str, Any],
    actor: Membership | None = None,
    organization_id: int | None = None,
) -> EmailTemplate:
    """Create or update a template: sanitize the HTML (script, iframe and event
    handlers go), then validate subject, body and text part; raises
    TemplateInvalid or SequenceInvalid and stores nothing on bad input."""
    org_id = owner_org_id(template, actor, organization_id)
    body_html = sanitize_html(data.get("body_html", ""))
    if not body_html.strip():
        raise TemplateInvalid("Body: the email needs a body.")
    subject = (data.get("subject") or "").strip()
    body_text = (data.get("body_text") or "").strip()
    validate_template(subject, body_html, body_text)
    with transaction.atomic():
        name = _unique_name(EmailTemplate, data.get("name", ""), template, "template")
        template = template or EmailTemplate(organization_id=org_id)
        template.name, template.subject = name, subject
        template.body_html, template.body_text = body_html, body_text
        template.save()
    return template


def template_delete(*, template: EmailTemplate, actor: Membership | None = None) -> None:
    """Delete a template no sequence step uses; raises SequenceInvalid naming
    the sequences that do (their steps would lose their email)."""
    with transaction.atomic():
        names = sorted(
            set(
                SequenceStep.objects.filter(template=template).values_list(
                    "sequence__name", flat=True
                )
            )
        )
        if names:
            raise SequenceInvalid(
                f"“{template.name}” is used by the sequence{'s' if len(names) > 1 else ''} "
                + ", ".join(f"“{name}”" for name in names)
                + ": change or delete those steps first."
            )
        template.delete()


# --- sequences ----------------------------------------------------------------------


def _clean_triggers(raw: Any) -> list[dict]:
    triggers: list[dict] = []
    list_ids, form_ids = set(), set()
    for item in raw or []:
        kind = (item or {}).get("type")
        if kind == Trigger.JOINS_LIST:
            list_ids.add(int(item["list_id"]))
            triggers.append({"type": kind, "list_id": int(item["list_id"])})
        elif kind == Trigger.FORM:
            form_ids.add(int(item["form_id"]))
            triggers.append({"type": kind, "form_id": int(item["form_id"])})
        elif kind == Trigger.RECYCLED:
            triggers.append({"type": kind})
        else:
            raise SequenceInvalid(f"Unknown entry trigger {kind!r}.")
    # Scoped queries: another organization's list or form is simply not found.
    if list_ids and NurtureList.objects.filter(pk__in=list_ids).count() != len(list_ids):
        raise SequenceInvalid("An entry trigger names a list that does not exist.")
    if form_ids and CaptureForm.objects.filter(pk__in=form_ids).count() != len(form_ids):
        raise SequenceInvalid("An entry trigger names a capture form that does not exist.")
    unique = []
    for trigger in triggers:
        if trigger not in unique:
            unique.append(trigger)
    return unique


def _clean_window(raw: Any) -> dict | None:
    if not raw:
        return None
    days = sorted({int(d) for d in raw.get("days") or []})
    if not days or any(d < 0 or d > 6 for d in days):
        raise SequenceInvalid("The send window needs weekdays between 0 (Monday) and 6 (Sunday).")
    start, end = str(raw.get("start", "")), str(raw.get("end", ""))
    if not (_HHMM.match(start) and _HHMM.match(end)):
        raise SequenceInvalid("The send window's hours must look like 09:00.")
    if start >= end:
        raise SequenceInvalid("The send window must close after it opens.")
    return {"days": days, "start": start, "end": end}


def sequence_save(
    *,
    sequence: Sequence | None = None,
    data: Mapping[str, Any],
    actor: Membership | None = None,
    organization_id: int | None = None,
) -> Sequence:
    """Create or update a sequence's settings (its steps have their own services)."""
    org_id = owner_org_id(sequence, actor, organization_id)
    exit_on = list(dict.fromkeys(data.get("exit_on") or []))
    bad = [e for e in exit_on if e not in ExitCondition.values]
    if bad:
        raise SequenceInvalid(f"Unknown exit condition {bad[0]!r}.")
    zone = (data.get("timezone") or "").strip()
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SequenceInvalid(f"Unknown time zone {zone!r}.") from None
    from_email = (data.get("from_email") or "").strip()
    if from_email:
        cfg = org_settings(org_id)
        if not (is_verified(cfg) and from_email.lower() == cfg.from_email.lower()):
            raise SequenceInvalid(
                "From-address: sequences send from the organization's verified sender"
                + (f" ({cfg.from_email})" if is_verified(cfg) else "")
                + "; leave it empty (a from-name of the sequence's own is fine) or set "
                "and verify the address under Sender identity."
            )
    with transaction.atomic():
        name = _unique_name(Sequence, data.get("name", ""), sequence, "sequence")
        triggers = _clean_triggers(data.get("entry_triggers"))
        window = _clean_window(data.get("send_window"))
        sequence = sequence or Sequence(organization_id=org_id)
        sequence.name = name
        sequence.is_active = bool(data.get("is_active", sequence.is_active))
        sequence.entry_triggers, sequence.exit_on, sequence.send_window = triggers, exit_on, window
        sequence.timezone = zone
        sequence.from_name = (data.get("from_name") or "").strip()
        sequence.from_email = from_email
        sequence.save()
    return sequence


def _check_delay(delay_days: int, delay_hours: int) -> tuple[int, int]:
    days, hours = int(delay_days or 0), int(delay_hours or 0)
    if not (0 <= days <= MAX_DELAY_DAYS and 0 <= hours <= 23 * 7):
        raise SequenceInvalid(
            f"A step waits 0–{MAX_DELAY_DAYS} days and 0–{23 * 7} hours after the previous one."
        )
    return days, hours


def step_save(
    *,
    sequence: Sequence,
    template: EmailTemplate,
    delay_days: int = 0,
    delay_hours: int = 0,
    step: SequenceStep | None = None,
    actor: Membership | None = None,
) -> SequenceStep:
    """Add a step at the end of the sequence, or change an existing step."""
    days, hours = _check_delay(delay_days, delay_hours)
    if template.organization_id != sequence.organization_id:
        raise SequenceInvalid("The template belongs to another organization.")
    with transaction.atomic():
        Sequence.objects.select_for_update().filter(pk=sequence.pk).first()
        if step is None:
            last = SequenceStep.objects.filter(sequence=sequence).aggregate(n=Max("position"))["n"]
            step = SequenceStep(
                organization_id=sequence.organization_id,
                sequence=sequence,
                position=(last or 0) + 1,
            )
        step.template, step.delay_days, step.delay_hours = template, days, hours
        step.save()
    return step


def _renumber(sequence: Sequence, after: int, shift: int) -> None:
    steps = SequenceStep.objects.filter(sequence=sequence, position__gt=after)
    steps.update(position=F("position") + _PARK)
    SequenceStep.objects.filter(sequence=sequence, position__gt=_PARK).update(
        position=F("position") - _PARK + shift
    )


def step_delete(*, step: SequenceStep, actor: Membership | None = None) -> None:
    """Delete a step and close the gap; enrollments waiting for a later step follow it."""
    with transaction.atomic():
        sequence = Sequence.objects.select_for_update().get(pk=step.sequence_id)
        position = step.position
        step.delete()
        _renumber(sequence, position, -1)
        Enrollment.objects.filter(
            sequence=sequence, status__in=LIVE_ENROLLMENT, current_step__gt=position
        ).update(current_step=F("current_step") - 1)


def step_move(
    *, step: SequenceStep, direction: str, actor: Membership | None = None
) -> SequenceStep:
    """Swap a step with its neighbour ("up" or "down"); the top and bottom stay put."""
    if direction not in ("up", "down"):
        raise SequenceInvalid("A step moves up or down.")
    with transaction.atomic():
        Sequence.objects.select_for_update().get(pk=step.sequence_id)
        step.refresh_from_db()
        target = step.position - 1 if direction == "up" else step.position + 1
        other = SequenceStep.objects.filter(sequence_id=step.sequence_id, position=target).first()
        if other is None:
            return step
        mine = step.position
        SequenceStep.objects.filter(pk=step.pk).update(position=_PARK)
        SequenceStep.objects.filter(pk=other.pk).update(position=mine)
        SequenceStep.objects.filter(pk=step.pk).update(position=target)
        step.position = target
    return step
