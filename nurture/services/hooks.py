"""Subscribers to the lower apps' hooks (leadflow.core.hooks, registered in NurtureConfig.ready).

Each runs inside the transaction of the change that fired it, so its writes
commit or roll back with that change.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from leads.models import Activity, LeadStage
from leads.services.ingest import ingested_touch
from nurture.models import MembershipSource, Sequence, Trigger
from nurture.services.enrollments import enroll_for_trigger, enrollments_exit
from nurture.services.lists import community_list, list_add_leads, refresh_dynamic_lists

# A stage past MQL/SQL implies it: a won deal also "became an SQL".
EXIT_REASONS_FOR_STAGE: dict[str, tuple[str, ...]] = {
    LeadStage.MQL: ("mql",),
    LeadStage.SAL: ("mql",),
    LeadStage.SQL: ("mql", "sql"),
    LeadStage.OPPORTUNITY: ("mql", "sql"),
    LeadStage.WON: ("mql", "sql"),
}
FORM_TRIGGER_WINDOW = timedelta(minutes=5)


def after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """New or changed leads: re-evaluate dynamic lists for them, and enroll leads
    a capture form just created into sequences triggered by that form."""
    if not lead_ids:
        return
    refresh_dynamic_lists(organization_id=organization_id, lead_ids=lead_ids)
    touched = ingested_touch()
    if touched is not None and not touched.form_ids:
        return  # not a form's touch: its own ingest already enrolled what it created
    form_ids = {
        int(t["form_id"])
        for triggers in Sequence.objects.filter(is_active=True).values_list(
            "entry_triggers", flat=True
        )
        for t in triggers or []
        if t.get("type") == Trigger.FORM and t.get("form_id") is not None
    }
    if not form_ids:
        return
    since = timezone.now() - FORM_TRIGGER_WINDOW
    rows = (
        Activity.objects.filter(lead_id__in=lead_ids, created_at__gte=since)
        .filter(lead__created_at__gte=since)
        .values_list("properties__form_id", "lead_id")
    )
    by_form: dict[int, set[int]] = {}
    for form_id, lead_id in rows:
        if form_id is not None and int(form_id) in form_ids:
            by_form.setdefault(int(form_id), set()).add(lead_id)
    for form_id, ids in by_form.items():
        enroll_for_trigger(
            organization_id=organization_id,
            trigger={"type": Trigger.FORM, "form_id": form_id},
            lead_ids=sorted(ids),
        )


def after_mql_crossing(organization_id: int, up_ids: list[int], down_ids: list[int]) -> None:
    """Leads that became MQLs leave sequences exiting on MQL; both directions can
    change which dynamic lists (by band, score, MQL) they belong to."""
    if up_ids:
        enrollments_exit(organization_id=organization_id, lead_ids=up_ids, reason="mql")
    changed = sorted(set(up_ids) | set(down_ids))
    if changed:
        refresh_dynamic_lists(organization_id=organization_id, lead_ids=changed)


def after_stage_change(
    organization_id: int, lead_ids: list[int], from_stage: str, to_stage: str
) -> None:
    """Recycled leads join the community list (and recycle-triggered sequences);
    converting leads leave the sequences that exit on that conversion."""
    if not lead_ids:
        return
    for reason in EXIT_REASONS_FOR_STAGE.get(to_stage, ()):
        enrollments_exit(organization_id=organization_id, lead_ids=lead_ids, reason=reason)
    if to_stage == LeadStage.RECYCLED:
        community = community_list(organization_id=organization_id)
        list_add_leads(nurture_list=community, lead_ids=lead_ids, source=MembershipSource.RECYCLED)
        enroll_for_trigger(
            organization_id=organization_id, trigger={"type": "recycled"}, lead_ids=lead_ids
        )
    refresh_dynamic_lists(organization_id=organization_id, lead_ids=lead_ids)
