"""Rule-set versions: learning writes a draft; applying replaces the live rules
and settings with a version (audited, rescored) after keeping the live set as
a version of its own; rollback applies the version that was live before.

Writes live here (services); the learning itself is scoring.learning.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Membership, User
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import enqueue_on_commit
from scoring import learning
from scoring.engine import config_changed
from scoring.models import (
    DriftNotice,
    LearningJob,
    RescoreStatus,
    RuleChange,
    RuleSetVersion,
    ScoreGroup,
    ScoringRule,
    ScoringSettings,
    TrainingLead,
    VersionStatus,
)
from scoring.rescoring import rescore_job_start
from scoring.selectors import RULE_FIELDS, describe_rule, live_rules, post_qualification_fields

SETTINGS_FIELDS = ("mql_threshold", "temperature_bands", "grade_bands")
TRAINING_BATCH = 5000
STALE_HOURS = 2  # past the learning task's time limit


class VersionError(LeadflowError):
    """A version that cannot be applied or rolled back in its state."""


def _user(actor: Membership | None) -> User | None:
    """Versions and their audit rows record the person (who outlives a seat)."""
    return actor.user if actor else None


def _next_number() -> int:
    return (RuleSetVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def live_settings(organization_id: int) -> dict:
    settings, _ = ScoringSettings.objects.get_or_create(organization_id=organization_id)
    return {name: getattr(settings, name) for name in SETTINGS_FIELDS}


def _describe(rule: dict) -> str:
    return describe_rule(ScoringRule(**{k: v for k, v in rule.items() if k in RULE_FIELDS}))


# --- learning jobs ------------------------------------------------------------


def learning_job_start(*, organization_id: int, actor: Membership | None) -> LearningJob:
    """Queue learning for the organization; a job already waiting or running absorbs it."""

    # A job whose worker died long ago no longer blocks a new one.
    waiting = LearningJob.objects.filter(
        status__in=[RescoreStatus.QUEUED, RescoreStatus.RUNNING],
        created_at__gte=timezone.now() - timedelta(hours=STALE_HOURS),
    ).first()
    if waiting:
        return waiting
    job = LearningJob.objects.create(organization_id=organization_id, requested_by=_user(actor))
    enqueue_on_commit("scoring.run_learning_job", organization_id=organization_id, job_id=job.pk)
    return job


def learning_job_run(*, job_id: int) -> LearningJob | None:
    """Learn and store a draft version. Idempotent: a finished job is skipped."""
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (RescoreStatus.DONE, RescoreStatus.FAILED):
            return job
        job.status = RescoreStatus.RUNNING
        job.save(update_fields=["status"])

    def progress(step: str, percent: int) -> None:
        LearningJob.objects.filter(pk=job.pk).update(step=step[:200], percent=percent)

    try:
        version = _version_learn(
            organization_id=job.organization_id, created_by=job.requested_by, progress=progress
        )
    except learning.NotEnoughOutcomes as exc:
        job.status, job.message = RescoreStatus.FAILED, str(exc)
    else:
        job.status, job.version, job.message = RescoreStatus.DONE, version, ""
        job.percent = 100
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "version", "message", "percent", "finished_at"])
    return job


def learning_job_start_if_due(*, organization_id: int) -> LearningJob | None:
    """Retraining (beat): only for an organization whose rules in use were
    learned, when its last learning is older than SCORING_RETRAIN_DAYS."""
    days = settings.SCORING_RETRAIN_DAYS
    if (
        days <= 0
        or not RuleSetVersion.objects.filter(
            status=VersionStatus.APPLIED, source="learned"
        ).exists()
    ):
        return None
    last = LearningJob.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if last is not None and last > timezone.now() - timedelta(days=days):
        return None
    return learning_job_start(organization_id=organization_id, actor=None)


@transaction.atomic
def version_learn(
    *, organization_id: int, actor: Membership | None, progress=None
) -> RuleSetVersion:
    """A draft version learned from the outcomes (raises NotEnoughOutcomes)."""
    return _version_learn(
        organization_id=organization_id, created_by=_user(actor), progress=progress
    )


def _version_learn(
    *, organization_id: int, created_by: User | None, progress=None
) -> RuleSetVersion:
    now = timezone.now()
    window = ScoringSettings.objects.values_list("conversion_window_days", flat=True).first()
    result = learning.learn(
        excluded=post_qualification_fields(),
        now=now,
        progress=progress,
        describe=_describe,
        window_days=window,
    )
    version = RuleSetVersion.objects.create(
        organization_id=organization_id,
        number=_next_number(),
        title=f"Learned from {result.metrics['training']['leads']:,} outcomes",
        rules=result.rules,
        settings=result.settings,
        metrics=result.metrics,
        created_by=created_by,
    )
    _training_leads_store(organization_id, version, result.training_lead_ids)
    return version


def _training_leads_store(organization_id: int, version: RuleSetVersion, ids: list[int]) -> None:
    """One row per lead learned from; on PostgreSQL an array per 50k ids
    (a million rows in seconds, not one INSERT value list per 5k)."""
    if connection.vendor != "postgresql":
        for start in range(0, len(ids), TRAINING_BATCH):
            TrainingLead.objects.bulk_create(
                TrainingLead(organization_id=organization_id, version=version, lead_id=pk)
                for pk in ids[start : start + TRAINING_BATCH]
            )
        return
    with connection.cursor() as cursor:
        for start in range(0, len(ids), TRAINING_BATCH * 10):
            cursor.execute(
                f"INSERT INTO {TrainingLead._meta.db_table} (organization_id, version_id, lead_id)"
                " SELECT %s, %s, unnest(%s::bigint[])",
                [organization_id, version.pk, ids[start : start + TRAINING_BATCH * 10]],
            )


# --- apply and roll back ---------------------------------------------------------------


def rules_install(organization_id: int, rules_data: list[dict]) -> int:
    """Version-form rules become the live rules (after the ones there are
    deleted); a fit rule on a field sales fills in is kept switched off."""
    refused = post_qualification_fields()
    config_changed(organization_id=organization_id)
    ScoringRule.objects.all().delete()
    groups: dict[str, ScoreGroup] = {}
    rules = []
    for position, data in enumerate(rules_data):
        spec = {k: data[k] for k in RULE_FIELDS if k in data}
        group = None
        if data.get("group"):
            name = data["group"]["name"]
            if name not in groups:
                groups[name], _ = ScoreGroup.objects.get_or_create(
                    organization_id=organization_id,
                    name=name,
                    defaults={"cap": data["group"].get("cap")},
                )
            group = groups[name]
        active = data.get("is_active", True) and not (
            spec.get("kind") == "fit" and spec.get("field") in refused
        )
        rules.append(
            ScoringRule(
                organization_id=organization_id, position=position, group=group,
                is_active=active, **spec,
            )
        )  # fmt: skip
    ScoringRule.objects.bulk_create(rules)
    return len(rules)


def _replace_live(organization_id: int, version: RuleSetVersion) -> None:
    rules_install(organization_id, version.rules)
    settings, _ = ScoringSettings.objects.get_or_create(organization_id=organization_id)
    for name in SETTINGS_FIELDS:
        if name in version.settings:
            setattr(settings, name, version.settings[name])
    settings.save()


@transaction.atomic
def version_apply(*, version: RuleSetVersion, actor: Membership | None) -> RuleSetVersion:
    """Make `version` the live rule set. The live set is kept first (as the
    version in use, or a snapshot), so rollback is one step."""

    version = RuleSetVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == VersionStatus.APPLIED:
        raise VersionError("This version is already in use.")
    organization_id = version.organization_id
    current = RuleSetVersion.objects.filter(status=VersionStatus.APPLIED).first()
    if current is None:
        current = RuleSetVersion.objects.create(
            organization_id=organization_id,
            number=_next_number(),
            source="snapshot",
            title="Rules in use before learning",
            rules=live_rules(),
            settings=live_settings(organization_id),
            created_by=_user(actor),
        )
    else:
        # Hand edits since it was applied are kept with it.
        current.rules, current.settings = live_rules(), live_settings(organization_id)
    current.status = VersionStatus.SUPERSEDED
    current.save()
    before = len(current.rules)
    _replace_live(organization_id, version)
    version.status = VersionStatus.APPLIED
    version.applied_at, version.applied_by, version.previous = timezone.now(), _user(actor), current
    version.save()
    RuleChange.objects.create(
        organization_id=organization_id,
        subject=f"Rule set: version {version.number} ({version.title})"[:200],
        action="applied",
        changes={"rules": [before, len(version.rules)], "replaced_version": current.number},
        actor=_user(actor),
    )
    rescore_job_start(organization_id=organization_id, reason=f"Version {version.number} applied")
    return version


@transaction.atomic
def version_rollback(*, actor: Membership | None) -> RuleSetVersion:
    """Apply the version that was in use before the current one."""
    current = RuleSetVersion.objects.filter(status=VersionStatus.APPLIED).first()
    if current is None or current.previous is None:
        raise VersionError("There is no earlier rule set to go back to.")
    return version_apply(version=current.previous, actor=actor)


@transaction.atomic
def version_discard(*, version: RuleSetVersion) -> None:
    if version.status != VersionStatus.DRAFT:
        raise VersionError("Only a draft can be discarded.")
    version.status = VersionStatus.DISCARDED
    version.save(update_fields=["status"])


@transaction.atomic
def version_import(
    *, organization_id: int, text: str, file_name: str, actor: Membership | None
) -> RuleSetVersion:
    """A draft version from a rules CSV or, named .yaml/.yml, a rules YAML file
    (scoring.transfer); raises RuleImportError."""
    from scoring.transfer import parse_rules_csv, parse_rules_yaml

    is_yaml = file_name.lower().endswith((".yaml", ".yml"))
    parse = parse_rules_yaml if is_yaml else parse_rules_csv
    rules = parse(text, refused=post_qualification_fields())
    return RuleSetVersion.objects.create(
        organization_id=organization_id,
        number=_next_number(),
        source="import",
        title=f"Imported from {file_name}"[:200],
        rules=rules,
        settings={},
        created_by=_user(actor),
    )


# --- starter sets ---------------------------------------------------------------------


def _starter_version(
    organization_id: int, business_type: str, actor: Membership | None, **extra
) -> RuleSetVersion:
    from scoring import starters

    starter = starters.SETS[business_type]
    return RuleSetVersion.objects.create(
        organization_id=organization_id,
        number=_next_number(),
        source="starter",
        title=starter.title,
        rules=starters.starter_rules(business_type),
        settings={},
        created_by=_user(actor),
        **extra,
    )


@transaction.atomic
def version_from_starter(
    *, organization_id: int, business_type: str, actor: Membership | None
) -> RuleSetVersion:
    """A starter set as a draft, compared and applied like a suggestion."""
    return _starter_version(organization_id, business_type, actor)


@transaction.atomic
def starter_set_choose(
    *, organization_id: int, business_type: str, actor: Membership | None
) -> RuleSetVersion | None:
    """Sign-up: the chosen starter set becomes the organization's first rule
    version, in use. Does nothing once the organization has a version."""
    if RuleSetVersion.objects.exists():
        return None
    version = _starter_version(
        organization_id, business_type, actor,
        status=VersionStatus.APPLIED, applied_at=timezone.now(), applied_by=_user(actor),
    )  # fmt: skip
    ScoringSettings.objects.get_or_create(organization_id=organization_id)
    rules_install(organization_id, version.rules)
    return version


# --- drift notices ----------------------------------------------------------------------


class DriftEmailDeferred(LeadflowError):
    """The drift email hit a transient mail failure; the task retries it."""


def drift_notice_check(*, organization_id: int) -> DriftNotice | None:
    """Beat: when the rules in use have drifted, open a notice and email the
    admins (once per episode: the open notice is a unique marker); when they no
    longer drift, close the episode. Returns the notice opened, if any."""
    from scoring.selectors import drift_check

    drift = drift_check()
    open_notices = DriftNotice.objects.filter(resolved_at__isnull=True)
    if drift is None:
        open_notices.update(resolved_at=timezone.now())
        return None
    version = RuleSetVersion.objects.get(status=VersionStatus.APPLIED)
    open_notices.exclude(version=version).update(resolved_at=timezone.now())
    try:
        with transaction.atomic():
            notice, created = DriftNotice.objects.get_or_create(
                organization_id=organization_id,
                version=version,
                resolved_at=None,
                defaults={"learned_auc": drift["learned"], "now_auc": drift["now"],
                          "leads": drift["leads"]},
            )  # fmt: skip
    except IntegrityError:  # a concurrent check opened it first
        return None
    if not created:
        return None
    enqueue_on_commit(
        "scoring.send_drift_notice", organization_id=organization_id, notice_id=notice.pk
    )
    return notice


def drift_notice_email(*, notice_id: int) -> int:
    """Email the organization's admins about a drift notice, at most once: the
    notice is claimed (emailed_at) before the SMTP call. A transient failure
    releases the claim and raises DriftEmailDeferred; a permanent one is
    recorded on the notice (the learning page shows it)."""
    from django.core.mail import send_mail
    from django.urls import reverse

    from accounts.models import Membership, Role
    from leadflow.core.mail import describe, header_text, is_transient

    claimed = DriftNotice.objects.filter(pk=notice_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return 0
    notice = DriftNotice.objects.select_related("organization", "version").get(pk=notice_id)
    org = notice.organization
    emails = sorted(
        Membership.objects.filter(
            organization=org, role=Role.ADMIN, is_active=True, user__is_active=True
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not emails:
        return 0
    link = settings.SITE_URL.rstrip("/") + reverse("scoring:learning", args=[org.slug])
    try:
        send_mail(
            subject=header_text(f"[LeadFlow] {org.name}: lead scores rank buyers worse", 130),
            message=(
                f"The scoring rules in use in {org.name} (version {notice.version.number}) "
                f"ranked buyers at {notice.learned_auc:.2f} on the leads they were tested on; "
                f"on the {notice.leads:,} leads with an outcome since, they rank them at "
                f"{notice.now_auc:.2f} (0.5 is a coin toss, 1.0 perfect).\n\n"
                f"Learn again from your latest outcomes, compare, and apply if it is better:\n"
                f"{link}\n\nYou get this once until the rules change or recover.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=emails,
        )
    except Exception as exc:
        if is_transient(exc):
            DriftNotice.objects.filter(pk=notice_id).update(emailed_at=None)
            raise DriftEmailDeferred(f"Drift email {notice_id} deferred") from exc
        DriftNotice.objects.filter(pk=notice_id).update(email_error=describe(exc)[:300])
        return 0
    return len(emails)


def drift_notice_email_failed(*, notice_id: int, error: str) -> int:
    """The mail server stayed unavailable through every retry: say so on the notice."""
    return DriftNotice.objects.filter(pk=notice_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now(), email_error=error[:300]
    )
