"""Writes on scoring configuration, and the rescoring jobs they trigger.

Every rule/settings change is recorded (RuleChange: who, when, what changed)
and enqueues one background rescore of the organization.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Min
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import User
from leadflow.core.tenancy import enqueue_on_commit
from leads.models import Lead
from scoring import engine, starters
from scoring import fields as F_
from scoring.models import (
    GatingRule,
    PostQualificationField,
    RescoreJob,
    RescoreStatus,
    RuleChange,
    RuleKind,
    ScoreGroup,
    ScoringRule,
    ScoringSettings,
)

RESCORE_BATCH = 50_000  # leads per statement of a tenant rescore (progress granularity)

AUDITED_RULE_FIELDS = [
    "name",
    "kind",
    "group",
    "is_active",
    "points",
    "field",
    "operator",
    "value",
    "activity_kinds",
    "min_count",
    "window_days",
    "per_occurrence",
    "max_points",
    "first_only",
    "half_life_days",
]


def _diff(before: dict, after: dict) -> dict:
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _snapshot(obj, fields: list[str]) -> dict:
    data = model_to_dict(obj, fields=fields)
    return {k: (v if isinstance(v, str | int | float | bool | list | dict | None) else str(v))
            for k, v in data.items()}  # fmt: skip


def _audit(*, organization_id: int, subject: str, action: str, changes: dict, actor, rule=None):
    """Record a configuration change; every audited change also retires the
    cached configuration (engine.config_changed), in the same transaction."""
    engine.config_changed(organization_id=organization_id)
    RuleChange.objects.create(
        organization_id=organization_id,
        rule=rule,
        subject=subject[:200],
        action=action,
        changes=changes,
        actor=actor,
    )


@transaction.atomic
def rule_save(*, rule: ScoringRule, actor: User | None) -> ScoringRule:
    """Create or update a rule (already validated by its form), audit, rescore."""
    before = {}
    if rule.pk:
        before = _snapshot(ScoringRule.objects.get(pk=rule.pk), AUDITED_RULE_FIELDS)
    action = "updated" if rule.pk else "created"
    rule.save()
    changes = _diff(before, _snapshot(rule, AUDITED_RULE_FIELDS))
    if changes:
        _audit(
            organization_id=rule.organization_id,
            subject=rule.name,
            action=action,
            changes=changes,
            actor=actor,
            rule=rule,
        )
        rescore_job_start(
            organization_id=rule.organization_id, reason=f"Rule {action}: {rule.name}"
        )
    return rule


@transaction.atomic
def rule_set_active(*, rule: ScoringRule, active: bool, actor: User | None) -> None:
    if rule.is_active == active:
        return
    rule.is_active = active
    rule.save(update_fields=["is_active", "updated_at"])
    action = "enabled" if active else "disabled"
    _audit(
        organization_id=rule.organization_id,
        subject=rule.name,
        action=action,
        changes={"is_active": [not active, active]},
        actor=actor,
        rule=rule,
    )
    rescore_job_start(organization_id=rule.organization_id, reason=f"Rule {action}: {rule.name}")


@transaction.atomic
def rule_delete(*, rule: ScoringRule, actor: User | None) -> None:
    _audit(
        organization_id=rule.organization_id,
        subject=rule.name,
        action="deleted",
        changes=_snapshot(rule, AUDITED_RULE_FIELDS),
        actor=actor,
    )
    organization_id, name = rule.organization_id, rule.name
    rule.delete()
    rescore_job_start(organization_id=organization_id, reason=f"Rule deleted: {name}")


SETTINGS_FIELDS = [
    "mql_threshold",
    "min_fit_grade",
    "grade_bands",
    "temperature_bands",
    "half_life_days",
    "total_ceiling",
    "conversion_window_days",
]


@transaction.atomic
def settings_save(*, settings: ScoringSettings, actor: User | None) -> ScoringSettings:
    before = {}
    if settings.pk:
        before = _snapshot(ScoringSettings.objects.get(pk=settings.pk), SETTINGS_FIELDS)
    settings.save()
    changes = _diff(before, _snapshot(settings, SETTINGS_FIELDS))
    if changes:
        _audit(
            organization_id=settings.organization_id,
            subject="Scoring settings",
            action="updated",
            changes=changes,
            actor=actor,
        )
        rescore_job_start(organization_id=settings.organization_id, reason="Settings changed")
    return settings


@transaction.atomic
def gate_save(*, gate: GatingRule, actor: User | None) -> GatingRule:
    action = "updated" if gate.pk else "created"
    gate.save()
    _audit(
        organization_id=gate.organization_id,
        subject=f"Gate: {gate.reason}",
        action=action,
        changes=_snapshot(gate, ["reason", "field", "operator", "value", "is_active"]),
        actor=actor,
    )
    rescore_job_start(organization_id=gate.organization_id, reason=f"Gate {action}")
    return gate


@transaction.atomic
def gate_delete(*, gate: GatingRule, actor: User | None) -> None:
    _audit(
        organization_id=gate.organization_id,
        subject=f"Gate: {gate.reason}",
        action="deleted",
        changes={},
        actor=actor,
    )
    organization_id = gate.organization_id
    gate.delete()
    rescore_job_start(organization_id=organization_id, reason="Gate deleted")


@transaction.atomic
def group_save(*, group: ScoreGroup, actor: User | None) -> ScoreGroup:
    fields = ["name", "cap", "half_life_days"]
    before = _snapshot(ScoreGroup.objects.get(pk=group.pk), fields) if group.pk else {}
    action = "updated" if group.pk else "created"
    group.save()
    changes = _diff(before, _snapshot(group, fields))
    if changes:
        _audit(
            organization_id=group.organization_id,
            subject=f"Group: {group.name}",
            action=action,
            changes=changes,
            actor=actor,
        )
        rescore_job_start(organization_id=group.organization_id, reason=f"Group {action}")
    return group


@transaction.atomic
def group_delete(*, group: ScoreGroup, actor: User | None) -> None:
    """Its rules stay, ungrouped (no cap)."""
    _audit(
        organization_id=group.organization_id,
        subject=f"Group: {group.name}",
        action="deleted",
        changes={"rules_ungrouped": group.rules.count()},
        actor=actor,
    )
    organization_id = group.organization_id
    group.delete()
    rescore_job_start(organization_id=organization_id, reason="Group deleted")


# --- Starter rule set ---------------------------------------------------------

STARTER_RULES = starters.SETS[starters.BusinessType.B2B].rules  # the default set
STARTER_GROUPS = list(starters.SETS[starters.BusinessType.B2B].groups.items())


@transaction.atomic
def starter_rules_install(*, organization_id: int, business_type: str = "b2b") -> int:
    """A starter set (scoring.starters) on a new organization (idempotent)."""
    if ScoringRule.objects.exists():
        return 0
    from scoring import versions

    ScoringSettings.objects.get_or_create(organization_id=organization_id)
    return versions.rules_install(organization_id, starters.starter_rules(business_type))


def install_starter_rules_for(organization, owner=None, business_type: str = "b2b") -> None:
    """organization_created hook (accounts): every new org starts with the starter
    set of its kind of business, as its first rule version in use."""
    from leadflow.core.tenancy import tenant_scope
    from scoring import versions

    with tenant_scope(organization):
        versions.starter_set_choose(
            organization_id=organization.pk, business_type=business_type, actor=owner
        )


# --- Rescoring ---------------------------------------------------------------


def rescore_job_start(*, organization_id: int, reason: str) -> RescoreJob:
    """Queue a whole-tenant rescore; a job already waiting absorbs the new request."""
    from scoring.tasks import run_rescore_job

    waiting = RescoreJob.objects.filter(status=RescoreStatus.QUEUED).first()
    if waiting:
        return waiting
    job = RescoreJob.objects.create(organization_id=organization_id, reason=reason[:200])
    enqueue_on_commit(run_rescore_job, organization_id=organization_id, job_id=job.pk)
    return job


def rescore_job_run(*, job_id: int) -> RescoreJob | None:
    """Rescore the tenant in id-range batches, recording progress after each.

    Safe to run twice: a finished job is skipped; a job that died mid-way runs
    again from the start (rescoring is idempotent)."""
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status == RescoreStatus.DONE:
            return job
        bounds = Lead.objects.aggregate(lo=Min("pk"), hi=Max("pk"), n=Max("pk") - Min("pk"))
        job.status = RescoreStatus.RUNNING
        job.started_at = timezone.now()
        job.total = Lead.objects.count()
        job.processed = job.crossed_up = job.crossed_down = 0
        job.save()
    config = engine.load_config(organization_id=job.organization_id)
    now = timezone.now()
    lo, hi = bounds["lo"], bounds["hi"]
    start = lo or 0
    while lo is not None and start <= hi:
        end = start + RESCORE_BATCH
        result = engine.rescore(
            organization_id=job.organization_id, id_range=(start, end), now=now, config=config
        )
        job.processed = min(job.total, job.processed + result.scored)
        job.crossed_up += len(result.crossed_up)
        job.crossed_down += len(result.crossed_down)
        job.save(update_fields=["processed", "crossed_up", "crossed_down"])
        start = end
    job.status = RescoreStatus.DONE
    job.processed = job.total
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "processed", "finished_at"])
    return job


def rescore_after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """post_ingest hook: a captured submission or new activity rescores its leads
    (a few leads with the cached configuration, an import chunk set-based)."""
    if lead_ids:
        engine.rescore_leads(organization_id=organization_id, lead_ids=lead_ids)


def rescore_after_merge(organization_id: int, kept_id: int, dropped_id: int) -> None:
    """lead_merged hook: the kept lead now has both leads' history."""
    engine.rescore_leads(organization_id=organization_id, lead_ids=[kept_id])


def rescore_after_unmerge(
    organization_id: int, kept_id: int, dropped_id: int, changes: dict
) -> None:
    """lead_unmerged hook: each lead has its own history back."""
    engine.rescore_leads(organization_id=organization_id, lead_ids=[kept_id, dropped_id])


# --- Post-qualification fields --------------------------------------------------


def _clean_field_name(field: str) -> str:
    field = field.strip()
    F_.field_spec(field)  # raises RuleError for an unknown field or a bad key
    return field


@transaction.atomic
def post_qualification_mark(
    *, organization_id: int, fields: list[str], actor: User | None
) -> list[str]:
    """Mark fields as filled in by sales: active scoring rules on them are
    switched off (audited) and the forms and learning refuse them from now on.
    Returns the fields newly marked."""
    marked = []
    for field in dict.fromkeys(_clean_field_name(f) for f in fields):
        _, created = PostQualificationField.objects.get_or_create(
            organization_id=organization_id, field=field, defaults={"marked_by": actor}
        )
        if not created:
            continue
        marked.append(field)
        _audit(
            organization_id=organization_id,
            subject=f"Post-qualification field: {field}",
            action="created",
            changes={"post_qualification": [False, True]},
            actor=actor,
        )
        for rule in ScoringRule.objects.filter(kind=RuleKind.FIT, field=field, is_active=True):
            rule_set_active(rule=rule, active=False, actor=actor)
    return marked


@transaction.atomic
def post_qualification_unmark(*, organization_id: int, field: str, actor: User | None) -> None:
    deleted, _ = PostQualificationField.objects.filter(field=field).delete()
    if deleted:
        _audit(
            organization_id=organization_id,
            subject=f"Post-qualification field: {field}",
            action="deleted",
            changes={"post_qualification": [True, False]},
            actor=actor,
        )
