"""Report read models. Reports compute from the facts (leads, activities, stage
history); the only rows they own are the weekly digest's opt-ins and send log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from leadflow.core.tenancy import TenantModel


class DigestSubscription(TenantModel):
    """A member's opt-in to the weekly KPI digest email (off until they turn it on)."""

    membership = models.OneToOneField(
        "accounts.Membership", on_delete=models.CASCADE, related_name="digest_subscription"
    )
    weekly = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "weekly"])]

    def __str__(self) -> str:
        return f"Digest of {self.membership_id}: {'weekly' if self.weekly else 'off'}"


class DigestSend(TenantModel):
    """One weekly digest to one member. Written before the email goes out: the unique
    key makes a retried or doubled task skip instead of sending twice."""

    membership = models.ForeignKey(
        "accounts.Membership", on_delete=models.CASCADE, related_name="digest_sends"
    )
    week_start = models.DateField(help_text="Monday of the week reported on (org timezone).")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A send that failed for good: the member sees it next to the digest toggle.
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-week_start", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "week_start"], name="digest_send_once_per_week"
            )
        ]

    def __str__(self) -> str:
        return f"Digest for {self.membership_id}, week of {self.week_start}"


# --- Dashboard rollups (REPORTS-A) ---------------------------------------------------
# Materialized aggregates of the lead cohort, refreshed by Celery (reports.services.rollups):
# the marketing dashboard reads these instead of scanning every lead, so its cost
# grows with days × sources × campaigns, not with leads. Rebuilt from the facts at
# any time; never the source of truth.


class LeadCohortRollup(TenantModel):
    """Leads that arrived on one day (org timezone) with the same first source and
    campaign, junk flag, furthest funnel rank and outcome: how many, how many became
    customers, and their won revenue."""

    day = models.DateField()
    source = models.CharField(max_length=32, blank=True)
    campaign_id = models.IntegerField(null=True, blank=True)
    junk = models.BooleanField(default=False)
    rank = models.PositiveSmallIntegerField(default=0)  # reports.selectors.funnel.RANK
    won = models.BooleanField(default=False)
    lost = models.BooleanField(default=False)
    leads = models.PositiveIntegerField(default=0)
    customers = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day"]),
            models.Index(fields=["organization", "campaign_id"]),
        ]


class MqlMonthRollup(TenantModel):
    """Distinct leads moved into MQL in one month, per first source and campaign."""

    month = models.DateField()
    source = models.CharField(max_length=32, blank=True)
    campaign_id = models.IntegerField(null=True, blank=True)
    leads = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "month"])]


class RollupState(TenantModel):
    """When the organization's rollups were last brought up to date, and in which timezone."""

    refreshed_at = models.DateTimeField()
    timezone = models.CharField(max_length=64)
    # When the velocity rollups were last brought up to date (None: never built).
    velocity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="rollup_state_one_per_org")
        ]


class VelocityRollup(TenantModel):
    """Velocity facts of one day (org timezone) as mergeable counts: for `measure`
    "stay:<stage>", "system", "rep" or "total" a histogram of durations in
    log-spaced buckets (reports.sketch: any percentile of the
    merged buckets is within 1% of the exact one), and with `bucket` NULL plain
    counts ("open:<stage>", "untouched", "band<i>")."""

    day = models.DateField()
    measure = models.CharField(max_length=24)
    bucket = models.IntegerField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "day"])]


class SlaDayRollup(TenantModel):
    """Assignments made on one day per rep and team: assigned, met, breached."""

    day = models.DateField()
    membership_id = models.IntegerField()
    team_id = models.IntegerField(null=True, blank=True)
    assigned = models.PositiveIntegerField(default=0)
    met = models.PositiveIntegerField(default=0)
    breached = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "day"])]
