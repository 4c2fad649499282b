"""The sales pipeline: stage history, BANT qualification, opportunities, teams
and routing rules, assignments with their SLA clocks, the per-org policy, and
in-app notifications. All rows are tenant-owned.

The lead's current stage lives on `leads.Lead.stage`; every change of it goes
through `pipeline.services.stage_transition` (or its set-based twin), which
appends a StageTransition. History rows are never updated or deleted.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.core.orgfacts import org_fact_forget
from leadflow.core.tenancy import TenantModel
from leads.models import LeadStage

# Stages a rep still works (the queue, capacity and SLA count these).
OPEN_STAGES = (LeadStage.MQL, LeadStage.SAL, LeadStage.SQL, LeadStage.OPPORTUNITY)


class StageTransition(TenantModel):
    """One move of a lead between stages. Append-only."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=16, choices=LeadStage.choices, blank=True)
    to_stage = models.CharField(max_length=16, choices=LeadStage.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.CharField(
        max_length=40, blank=True, help_text="What moved it: score, pql, routing, sla, manual…"
    )
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        indexes = [
            models.Index(fields=["organization", "lead", "occurred_at"]),
            models.Index(fields=["organization", "to_stage", "occurred_at"]),
            # Reports: every move of a period (time in stage).
            models.Index(fields=["organization", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '—'} → {self.to_stage}"


class TimingWindow(models.TextChoices):
    UNDER_1M = "lt_1m", "Within a month"
    M1_3 = "1_3m", "1–3 months"
    M3_6 = "3_6m", "3–6 months"
    M6_12 = "6_12m", "6–12 months"
    OVER_12M = "gt_12m", "More than 12 months"
    UNKNOWN = "unknown", "Unknown"


class Bant(models.TextChoices):
    BUDGET = "budget", "Budget"
    AUTHORITY = "authority", "Authority"
    NEED = "need", "Need"
    TIMING = "timing", "Timing"


class Qualification(TenantModel):
    """BANT notes of one lead, kept as the rep fills them in."""

    lead = models.OneToOneField(
        "leads.Lead", on_delete=models.CASCADE, related_name="qualification"
    )
    budget_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    budget_currency = models.CharField(max_length=3, blank=True)
    budget_confirmed = models.BooleanField(default=False)
    authority_role = models.CharField(
        max_length=200, blank=True, help_text="The contact's role in the decision."
    )
    decision_maker = models.BooleanField(null=True, blank=True)
    need = models.TextField(blank=True, help_text="The pain, in the lead's words.")
    timing_window = models.CharField(max_length=8, choices=TimingWindow.choices, blank=True)
    timing_date = models.DateField(null=True, blank=True)
    updated_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_amount__isnull=True) | Q(budget_amount__gte=0),
                name="qualification_budget_not_negative",
            )
        ]

    def __str__(self) -> str:
        return f"Qualification of lead {self.lead_id}"

    def completed(self) -> set[str]:
        """Which BANT parts are filled in enough to count."""
        done = set()
        if self.budget_amount is not None:
            done.add(Bant.BUDGET.value)
        if self.authority_role.strip() or self.decision_maker is not None:
            done.add(Bant.AUTHORITY.value)
        if self.need.strip():
            done.add(Bant.NEED.value)
        if self.timing_date or self.timing_window not in ("", TimingWindow.UNKNOWN):
            done.add(Bant.TIMING.value)
        return done

    def missing(self, required) -> list[str]:
        """The required parts not yet filled in, in BANT order."""
        done = self.completed()
        return [part for part in Bant.values if part in set(required) and part not in done]


class OpportunityStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class DealStageKind(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class DealStage(TenantModel):
    """A column of the organization's opportunity board: its name, place, the
    probability a deal in it gets, and its kind (open, or closing the deal as won
    or lost). Defaults come from pipeline.services.deal_stages."""

    name = models.CharField(max_length=60)
    position = models.PositiveIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    kind = models.CharField(max_length=8, choices=DealStageKind.choices, default=DealStageKind.OPEN)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="deal_stage_name_unique"),
            models.CheckConstraint(
                condition=Q(probability__gte=0, probability__lte=100),
                name="deal_stage_probability_range",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=DealStageKind.values), name="deal_stage_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "position"])]

    def __str__(self) -> str:
        return self.name


class Opportunity(TenantModel):
    """The deal a sales-qualified lead became once sales entered an amount.

    `stage` is its board column; a deal whose stage is unset or of another kind
    than its status (closed in bulk, say) shows in its status's first column."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="opportunity")
    name = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    expected_close_date = models.DateField(null=True, blank=True)
    probability = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    next_step = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=8, choices=OpportunityStatus.choices, default=OpportunityStatus.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    owner = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stage = models.ForeignKey(
        DealStage, null=True, blank=True, on_delete=models.PROTECT, related_name="deals"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "opportunities"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount_positive"),
            models.CheckConstraint(
                condition=Q(probability__gte=0, probability__lte=100),
                name="opportunity_probability_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=OpportunityStatus.values), name="opportunity_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "expected_close_date"]),
            models.Index(fields=["organization", "owner", "status"]),
        ]

    def __str__(self) -> str:
        return self.name


class Team(TenantModel):
    """A group of reps leads are routed to (e.g. "EMEA SMB")."""

    name = models.CharField(max_length=100)
    team_lead = models.ForeignKey(
        "accounts.Membership",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Gets SLA breach notices for the team.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Catches every MQL no routing rule matched."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="team_name_unique"),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(is_default=True), name="team_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMember(TenantModel):
    """A rep's seat in a team, with their capacity, weight and away switch.

    `rr_pass` is the rep's position in the team's weighted round robin (stride
    scheduling): the rep with the lowest pass gets the next lead, and each
    assignment adds 1/weight, so a weight-2 rep gets twice the leads."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    membership = models.ForeignKey(
        "accounts.Membership", on_delete=models.CASCADE, related_name="team_seats"
    )
    capacity = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Most open leads this rep may hold.",
    )
    weight = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Share of the round robin (2 = twice as many leads as weight 1).",
    )
    is_away = models.BooleanField(default=False)
    away_since = models.DateTimeField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    rr_pass = models.FloatField(default=0)

    class Meta:
        ordering = ["team", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["team", "membership"], name="team_member_unique"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="team_member_capacity_min"),
            models.CheckConstraint(
                condition=Q(weight__gte=1, weight__lte=10), name="team_member_weight_range"
            ),
        ]
        indexes = [models.Index(fields=["organization", "membership"])]

    def __str__(self) -> str:
        return f"{self.membership_id} in {self.team_id}"


class RoutingMethod(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"


# Fields a routing condition may test (scoring.fields names, plus score/grade/band).
ROUTING_FIELDS: dict[str, str] = {
    "country": "Country (ISO code)",
    "city": "City",
    "company_size": "Company size (employees)",
    "industry": "Industry",
    "first_source": "First source",
    "latest_source": "Latest source",
    "title": "Job title",
    "email_domain": "Email domain",
    "company.country": "Company country",
    "company.employee_count": "Company employees",
    "company.industry": "Company industry",
    "score": "Score",
    "fit_score": "Fit score",
    "grade": "Fit grade",
    "band": "Temperature",
}


class RoutingRule(TenantModel):
    """Send MQLs matching all conditions to a team (round robin / least loaded) or a rep.

    Rules are tried in priority order (lower first); the first match wins."""

    name = models.CharField(max_length=100)
    priority = models.IntegerField(default=100)
    is_active = models.BooleanField(default=True)
    conditions = models.JSONField(
        default=list, blank=True, help_text="[{field, operator, value}], all must hold."
    )
    target_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rules"
    )
    target_rep = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    method = models.CharField(
        max_length=16, choices=RoutingMethod.choices, default=RoutingMethod.ROUND_ROBIN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(target_team__isnull=False) & Q(target_rep__isnull=True))
                | (Q(target_team__isnull=True) & Q(target_rep__isnull=False)),
                name="routing_rule_one_target",
            ),
            models.UniqueConstraint(
                fields=["organization", "name"], name="routing_rule_name_unique"
            ),
        ]
        indexes = [models.Index(fields=["organization", "is_active", "priority"])]

    def __str__(self) -> str:
        return self.name


class AssignmentMethod(models.TextChoices):
    RULE = "rule", "Routing rule"
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"
    ACCOUNT_OWNER = "account_owner", "Account owner"
    DEFAULT_TEAM = "default_team", "Default team"
    MANUAL = "manual", "Assigned by hand"
    SLA_REASSIGN = "sla_reassign", "Reassigned after an SLA breach"


class Assignment(TenantModel):
    """A lead handed to a rep, why, and its speed-to-lead clocks.

    One current assignment per lead; earlier ones stay as history."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignments")
    membership = models.ForeignKey(
        "accounts.Membership", on_delete=models.CASCADE, related_name="assignments"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    method = models.CharField(max_length=16, choices=AssignmentMethod.choices)
    reason = models.CharField(max_length=300, blank=True)
    assigned_at = models.DateTimeField(default=timezone.now)
    assigned_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_touch_due_at = models.DateTimeField(null=True, blank=True)
    accept_due_at = models.DateTimeField(null=True, blank=True)
    first_touched_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # When the rep is warned that the first deadline is near (80 % of its window),
    # and when that warning was given (once per assignment).
    at_risk_at = models.DateTimeField(null=True, blank=True)
    at_risk_notified_at = models.DateTimeField(null=True, blank=True)
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["-assigned_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"], condition=Q(is_current=True), name="assignment_one_current"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "membership", "is_current"]),
            models.Index(fields=["organization", "lead", "assigned_at"]),
            models.Index(fields=["organization", "is_current", "breached_at"]),
            # Reports: the assignments of a period (speed to lead, SLA compliance).
            models.Index(fields=["organization", "assigned_at"]),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} → {self.membership_id}"

    def sla_due_at(self):
        """The next SLA deadline still open (accept or first touch), or None."""
        dues = []
        if self.accepted_at is None and self.accept_due_at:
            dues.append(self.accept_due_at)
        if self.first_touched_at is None and self.first_touch_due_at:
            dues.append(self.first_touch_due_at)
        return min(dues) if dues else None


class BreachAction(models.TextChoices):
    REASSIGN = "reassign", "Reassign to the next rep"
    RECYCLE = "recycle", "Send back to nurture (recycle)"


def default_bant_required() -> list[str]:
    return list(Bant.values)


def default_sla_first_touch() -> dict[str, int]:
    return {"demo_request": 5, "contact_request": 5, "default": 60, "content_download": 1440}


def default_business_hours() -> dict:
    return {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}


def default_pql_rules() -> list[dict]:
    return [
        {"kind": "trial_signup", "min_count": 1},
        {"kind": "product_event", "min_count": 5},
    ]


class PipelinePolicy(TenantModel):
    """Per-organization pipeline settings. Business hours use Organization.timezone."""

    bant_required = models.JSONField(default=default_bant_required, blank=True)
    sla_first_touch_minutes = models.JSONField(default=default_sla_first_touch)
    sla_accept_hours = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(24 * 14)]
    )
    business_hours_only = models.BooleanField(default=False)
    business_hours = models.JSONField(default=default_business_hours)
    breach_action = models.CharField(
        max_length=10, choices=BreachAction.choices, default=BreachAction.REASSIGN
    )
    second_window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(60 * 24 * 14)]
    )
    default_currency = models.CharField(max_length=3, default="USD")
    pql_rules = models.JSONField(default=default_pql_rules, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "pipeline policies"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="pipeline_policy_one_per_org")
        ]

    def __str__(self) -> str:
        return f"Pipeline policy of {self.organization_id}"

    # The single-lead path caches which activity kinds the PQL rules count
    # (orgfacts). A new row is the one that fact is read from (created on
    # first read): what is cached after it, in its transaction, stays.
    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        org_fact_forget("pql_kinds", self.organization_id, at_commit=not adding)

    def delete(self, *args, **kwargs):
        org_fact_forget("pql_kinds", self.organization_id)
        return super().delete(*args, **kwargs)


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", "New lead assigned to you"
    SLA_AT_RISK = "sla_at_risk", "SLA at risk"
    SLA_BREACH = "sla_breach", "SLA missed"
    REASSIGNED = "reassigned", "Lead reassigned to you"
    REASSIGNED_AWAY = "reassigned_away", "Lead reassigned to someone else"
    SLA_REASSIGNED = "sla_reassigned", "Lead reassigned to you after an SLA breach"
    ESCALATION = "sla_escalation", "SLA missed by a rep of your team"
    TASK_DUE = "task_due", "Task due"


class EmailDelivery(models.TextChoices):
    IMMEDIATE = "immediate", "Immediately"
    DIGEST = "digest", "In a digest"
    OFF = "off", "Off"


class Notification(TenantModel):
    """An in-app notice for one member (assignments, SLA warnings and breaches,
    reassignments, escalations, tasks due), and how its email goes out.

    Written only by pipeline.services.notifications.notify(); `key` makes each
    event notify a member once however often the code that raises it runs."""

    recipient = models.ForeignKey(
        "accounts.Membership", on_delete=models.CASCADE, related_name="notifications"
    )
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    opportunity = models.ForeignKey(
        Opportunity, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    # The page that matters, as a path of this site (the email makes it absolute).
    link = models.CharField(max_length=300, blank=True)
    key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # The member's email preference for the kind, fixed when the notice is made.
    email = models.CharField(
        max_length=10, choices=EmailDelivery.choices, default=EmailDelivery.IMMEDIATE
    )
    # Set before the email goes out, so a retried task never sends it twice.
    emailed_at = models.DateTimeField(null=True, blank=True)
    # Which digest run claimed it (a digest lists exactly the notices it claimed).
    digest_batch = models.CharField(max_length=32, blank=True)
    # Why the email could not be sent, when it failed for good (the team page lists it).
    email_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "recipient", "key"],
                condition=~Q(key=""),
                name="notification_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "recipient", "read_at", "created_at"]),
            # The digest and the lost-email sweep: notices whose email is still owed.
            models.Index(
                fields=["organization", "email", "created_at"],
                condition=Q(emailed_at__isnull=True),
                name="notification_email_owed",
            ),
        ]

    def __str__(self) -> str:
        return self.message


# --- Follow-ups (a rep's tasks) and calls --------------------------------------------


class FollowUpKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    TODO = "todo", "To-do"


class CallOutcome(models.TextChoices):
    """What a logged call came to (stored on the CALL activity's properties)."""

    CONNECTED = "connected", "Connected"
    VOICEMAIL = "voicemail", "Left a voicemail"
    NO_ANSWER = "no_answer", "No answer"
    WRONG_NUMBER = "wrong_number", "Wrong number"


class FollowUp(TenantModel):
    """A rep's task: a call, email, meeting or to-do due at a time, on one lead or
    one opportunity (never both, never neither). Open while `done_at` is empty.

    Called FollowUp, not Task, so it is never confused with a Celery task."""

    kind = models.CharField(max_length=8, choices=FollowUpKind.choices, default=FollowUpKind.CALL)
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField()
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="follow_ups"
    )
    opportunity = models.ForeignKey(
        Opportunity, null=True, blank=True, on_delete=models.CASCADE, related_name="follow_ups"
    )
    assignee = models.ForeignKey(
        "accounts.Membership", on_delete=models.CASCADE, related_name="follow_ups"
    )
    created_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Stamped with the "task due" notice, under the row lock: one notice per due date.
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(lead__isnull=False) & Q(opportunity__isnull=True))
                | (Q(lead__isnull=True) & Q(opportunity__isnull=False)),
                name="follow_up_one_subject",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=FollowUpKind.values), name="follow_up_kind_valid"
            ),
        ]
        indexes = [
            # My day and the reminders: a member's open tasks by due time.
            models.Index(fields=["organization", "assignee", "done_at", "due_at"]),
            # Stalled / overdue per lead (the queue's EXISTS) and the lead page.
            models.Index(fields=["organization", "lead", "done_at", "due_at"]),
            models.Index(fields=["organization", "opportunity", "done_at", "due_at"]),
            # The reminder sweep: open tasks come due and not yet reminded.
            models.Index(
                fields=["organization", "due_at"],
                condition=Q(done_at__isnull=True, reminded_at__isnull=True),
                name="follow_up_unreminded",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.done_at is None

    @property
    def subject_lead(self):
        """The lead the task is about (its own, or its opportunity's)."""
        return self.lead if self.lead_id else self.opportunity.lead


class NotificationPreference(TenantModel):
    """How one member wants each kind of notice emailed (missing kinds: the default)."""

    membership = models.OneToOneField(
        "accounts.Membership", on_delete=models.CASCADE, related_name="notification_preference"
    )
    email = models.JSONField(default=dict, help_text="Preference key → immediate/digest/off.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification preferences of {self.membership_id}"


# --- Webhooks (outbound stage-change events for a CRM) ------------------------------

# Event names an endpoint may subscribe to: a stage reached, or every change.
WEBHOOK_ALL_EVENTS = "all"
# Lead record events, each subscribed to by name ("all" means every stage change).
WEBHOOK_LEAD_EVENTS = ("lead.created", "lead.updated", "lead.merged", "lead.deleted")


class WebhookEndpoint(TenantModel):
    """A URL of the organization's that receives signed stage-change events.

    The secret signs every request (HMAC-SHA256); it is stored as is because
    signing needs it, shown once after creation or rotation."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=80)
    events = models.JSONField(
        default=list, help_text='Stage names whose changes are sent, or ["all"].'
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return self.url

    def wants(self, to_stage: str) -> bool:
        return WEBHOOK_ALL_EVENTS in self.events or to_stage in self.events

    def wants_event(self, event_type: str) -> bool:
        return event_type in self.events

    # The single-lead path caches which lead events anyone wants (orgfacts).
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        org_fact_forget("lead_events", self.organization_id)

    def delete(self, *args, **kwargs):
        org_fact_forget("lead_events", self.organization_id)
        return super().delete(*args, **kwargs)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantModel):
    """One event for one endpoint, and how sending it went. A retried send
    reuses the row; `event_id` is what the receiver dedupes on."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=40)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_event_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "endpoint", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id}"
