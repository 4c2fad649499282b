"""Scoring configuration (rules, groups, gating, settings) and its audit trail.

Rules are data: the engine (scoring.engine) compiles them to SQL expressions.
"""

from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from leadflow.core.tenancy import TenantModel
from leads.models import ScoreGrade

POINTS_LIMIT = 1000
MAX_WINDOW_DAYS = 3650


class RuleKind(models.TextChoices):
    FIT = "fit", "Fit (profile)"
    ENGAGEMENT = "engagement", "Engagement (behaviour)"


class Operator(models.TextChoices):
    EQUALS = "eq", "equals"
    NOT_EQUALS = "ne", "does not equal"
    IN = "in", "is one of"
    NOT_IN = "not_in", "is not one of"
    CONTAINS = "contains", "contains"
    NOT_CONTAINS = "not_contains", "does not contain"
    STARTS_WITH = "startswith", "starts with"
    GT = "gt", "greater than"
    GTE = "gte", "at least"
    LT = "lt", "less than"
    LTE = "lte", "at most"
    BETWEEN = "between", "between"
    EMPTY = "empty", "is empty"
    NOT_EMPTY = "not_empty", "is not empty"


class ScoreGroup(TenantModel):
    """Rules belong to groups so one noisy behaviour cannot dominate (cap)."""

    name = models.CharField(max_length=100)
    cap = models.IntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10000)]
    )
    half_life_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)],
        help_text="Overrides the organization's decay for engagement rules of this group.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="score_group_unique")
        ]

    def __str__(self) -> str:
        return self.name


class ScoringRule(TenantModel):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=RuleKind.choices)
    group = models.ForeignKey(
        ScoreGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="rules"
    )
    is_active = models.BooleanField(default=True)
    points = models.IntegerField(
        validators=[MinValueValidator(-POINTS_LIMIT), MaxValueValidator(POINTS_LIMIT)]
    )
    # Fit: a condition on a lead field, a company field ("company.<field>") or a
    # custom attribute ("custom.<key>"). Engagement: an optional property filter.
    field = models.CharField(max_length=120, blank=True)
    operator = models.CharField(max_length=16, choices=Operator.choices, blank=True)
    value = models.JSONField(default=None, null=True, blank=True)
    # Engagement only.
    activity_kinds = models.JSONField(default=list, blank=True)
    min_count = models.PositiveIntegerField(default=1, validators=[MaxValueValidator(10000)])
    window_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)]
    )
    per_occurrence = models.BooleanField(
        default=False, help_text="Points for every matching activity instead of once."
    )
    max_points = models.IntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-POINTS_LIMIT * 100), MaxValueValidator(POINTS_LIMIT * 100)],
    )
    first_only = models.BooleanField(
        default=False, help_text="Score only the first matching activity (e.g. an email open)."
    )
    half_life_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)]
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gte=-POINTS_LIMIT, points__lte=POINTS_LIMIT),
                name="rule_points_bounded",
            ),
            models.CheckConstraint(condition=Q(kind__in=["fit", "engagement"]), name="rule_kind"),
        ]
        indexes = [models.Index(fields=["organization", "is_active"])]

    # Set by scoring.selectors for the rule list (not stored).
    condition: str
    scoring: str
    matches: int

    def __str__(self) -> str:
        return self.name


class GatingRule(TenantModel):
    """Unacceptable customer profile: blocks MQL whatever the score, with a reason."""

    reason = models.CharField(max_length=200)
    field = models.CharField(max_length=120)
    operator = models.CharField(max_length=16, choices=Operator.choices)
    value = models.JSONField(default=None, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    # Set by scoring.selectors for the rule list (not stored).
    condition: str
    gated: int

    def __str__(self) -> str:
        return self.reason


def default_grade_bands() -> dict:
    # Minimum fit score for each grade; below D is F.
    return {"A": 40, "B": 25, "C": 10, "D": 0}


def default_temperature_bands() -> dict:
    return {"hot": 100, "warm": 40}


def new_config_version() -> int:
    """A random version: one a rolled-back change (or a rolled-back new row) used
    is never stored again, so a copy cached under it can never match."""
    return secrets.randbits(62)


class ScoringSettings(TenantModel):
    mql_threshold = models.IntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(POINTS_LIMIT * 100)]
    )
    min_fit_grade = models.CharField(
        max_length=1,
        choices=ScoreGrade.choices,
        blank=True,
        help_text="Optional: e.g. B or better.",
    )
    grade_bands = models.JSONField(default=default_grade_bands)
    temperature_bands = models.JSONField(default=default_temperature_bands)
    half_life_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)],
        help_text="Engagement points halve every N days; empty = no decay.",
    )
    total_ceiling = models.IntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(POINTS_LIMIT * 100)],
    )
    conversion_window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)],
        help_text="Learning counts a lead still open after N days as not converted; "
        "empty = open leads are never learned from.",
    )
    # A new random value (scoring.engine.cache.config_changed) in the transaction
    # of every change of rules, groups, gates or settings: a cached configuration is used
    # only while its version is the stored one.
    config_version = models.BigIntegerField(default=new_config_version, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def save(self, *args, **kwargs):
        # An instance read before a change must not write its old version back.
        if self.pk is not None and not kwargs.get("force_insert") and not args:
            kwargs.setdefault(
                "update_fields",
                [f.name for f in self._meta.concrete_fields
                 if not f.primary_key and f.name != "config_version"],
            )  # fmt: skip
        super().save(*args, **kwargs)

    class Meta:
        verbose_name_plural = "scoring settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="scoring_settings_one_per_org")
        ]


class RuleChange(TenantModel):
    """Who changed which rule or setting, when, and what changed (append-only)."""

    rule = models.ForeignKey(
        ScoringRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    subject = models.CharField(max_length=200)
    action = models.CharField(max_length=20)  # created / updated / deleted / enabled / disabled
    changes = models.JSONField(default=dict)
    actor = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["organization", "at"])]


class ScoreHistory(TenantModel):
    """A row each time a lead's band, grade or MQL eligibility changes."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="score_history")
    at = models.DateTimeField()
    score = models.IntegerField()
    fit_score = models.IntegerField()
    engagement_score = models.IntegerField()
    grade = models.CharField(max_length=1)
    band = models.CharField(max_length=8)
    mql_eligible = models.BooleanField()
    previous_grade = models.CharField(max_length=1, blank=True)
    previous_band = models.CharField(max_length=8, blank=True)
    previous_mql_eligible = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organization", "lead", "at"])]


class RescoreStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RescoreJob(TenantModel):
    reason = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=RescoreStatus.choices, default=RescoreStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    crossed_up = models.PositiveIntegerField(default=0)
    crossed_down = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def percent(self) -> int:
        if self.status == RescoreStatus.DONE:
            return 100
        return round(100 * self.processed / self.total) if self.total else 0


class PostQualificationField(TenantModel):
    """A lead field or custom attribute that sales fills in after talking to the
    lead (tags, lead quality…). Scoring rules may not use it and learning leaves
    it out: a score built on it would predict the past, not the lead."""

    field = models.CharField(max_length=120)
    marked_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["field"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "field"], name="post_qual_field_unique")
        ]

    def __str__(self) -> str:
        return self.field


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPLIED = "applied", "In use"
    SUPERSEDED = "superseded", "Replaced"
    DISCARDED = "discarded", "Discarded"


class RuleSetVersion(TenantModel):
    """A whole rule set (rules, groups' membership, bands and thresholds) as data.

    Learning writes a draft; applying a version replaces the live rules and
    settings with it (audited), after saving the live set as a version of its
    own so the previous rules are one click away."""

    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    source = models.CharField(max_length=20, default="learned")  # learned / snapshot
    title = models.CharField(max_length=200)
    rules = models.JSONField(default=list)
    settings = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The version that was live when this one was applied: what rollback restores.
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="rule_version_number")
        ]

    def __str__(self) -> str:
        return f"Version {self.number}"


class TrainingLead(TenantModel):
    """A lead whose outcome a learned version was fitted on: the health report
    keeps these out of its holdout figures."""

    version = models.ForeignKey(RuleSetVersion, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "lead"], name="training_lead_unique")
        ]


class LearningJob(TenantModel):
    """One run of learning for an organization, with its progress."""

    status = models.CharField(
        max_length=10, choices=RescoreStatus.choices, default=RescoreStatus.QUEUED
    )
    step = models.CharField(max_length=200, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    version = models.ForeignKey(
        RuleSetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class DriftNotice(TenantModel):
    """One drift episode of a version in use: its holdout AUC fell by more than
    selectors.DRIFT_DROP. At most one open notice per version (the unique
    marker), so the admins are emailed once per episode; the episode closes
    (resolved_at) when the check no longer finds drift, or the version changes."""

    version = models.ForeignKey(RuleSetVersion, on_delete=models.CASCADE, related_name="+")
    learned_auc = models.FloatField()
    now_auc = models.FloatField()
    leads = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Claimed before the mail goes out, so a retried task never sends it twice.
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_drift_notice",
            )
        ]
