"""Reads of the pipeline pages: the rep queue, team load, unassigned MQLs, the
opportunity board and a lead's pipeline history.

Each selector runs a fixed number of queries whatever the number of rows (the
pages pin them in tests): per-row facts come from joins and correlated
subqueries, never from a query per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Least, RowNumber
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from leadflow.core.prepared import STAND_IN_TIME, PreparedQuery
from leads.models import Activity, Lead, LeadStage, ScoreBand
from pipeline.followups import with_task_flags
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    DealStage,
    DealStageKind,
    Notification,
    Opportunity,
    PipelinePolicy,
    Qualification,
    StageTransition,
    TeamMember,
)

BAND_RANK = Case(
    When(band=ScoreBand.HOT, then=Value(0)),
    When(band=ScoreBand.WARM, then=Value(1)),
    When(band=ScoreBand.COLD, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def _open_due(due: str, done: str) -> Case:
    """A deadline of the current assignment that still runs (its step not done yet)."""
    return Case(When(**{f"current__{done}__isnull": True}, then=F(f"current__{due}")))


def _open_leads_of(membership_ref) -> QuerySet[Lead]:
    return Lead.objects.filter(
        owner=membership_ref, stage__in=OPEN_STAGES, merged_into__isnull=True
    )


def _current() -> FilteredRelation:
    """A lead's current assignment (at most one: assignment_one_current), joined.
    A new one per queryset: Django writes its alias and path into the object."""
    return FilteredRelation("assignments", condition=Q(assignments__is_current=True))


def rep_queue(*, membership: Membership, now: datetime | None = None) -> QuerySet[Lead]:
    """The leads a rep works: assigned to them, in an open stage; most urgent first.

    Order: the nearest open SLA deadline (accept or first touch) first, leads
    without one after; then leads with an overdue task (pipeline.followups);
    then hot before warm before cold, higher score first; then the longest
    waiting. Each lead is flagged `has_overdue_task` and `is_stalled`, and carries
    what its queue row shows of its current assignment (why routed, team, SLA
    deadline, accepted, breached), its latest activity's kind and its
    opportunity, in one query.

    Built for the page's cost as well (bench/rep_queue.py): the clocks are
    resolved once as aliases, and what only orders the rows is not selected.
    """
    latest_kind = (
        Activity.objects.filter(lead=OuterRef("pk")).order_by("-occurred_at", "-pk").values("kind")
    )[:1]
    leads = with_task_flags(_open_leads_of(membership), now or timezone.now())
    return (
        leads.alias(
            current=_current(),
            accept_due=_open_due("accept_due_at", "accepted_at"),
            touch_due=_open_due("first_touch_due_at", "first_touched_at"),
            band_rank=BAND_RANK,
            routed_at=F("current__assigned_at"),
        )
        .annotate(
            # LEAST is NULL on SQLite when an argument is; the Coalesces make it
            # behave as on PostgreSQL (NULLs ignored) on both.
            sla_due_at=Least(
                Coalesce("accept_due", "touch_due"), Coalesce("touch_due", "accept_due")
            ),
            assignment_reason=F("current__reason"),
            assignment_method=F("current__method"),
            assignment_rule=F("current__rule__name"),
            accepted_at=F("current__accepted_at"),
            breached_at=F("current__breached_at"),
            team_name=F("current__team__name"),
            last_activity_kind=Subquery(latest_kind),
        )
        .select_related("opportunity")
        .order_by(
            F("sla_due_at").asc(nulls_last=True),
            F("has_overdue_task").desc(),
            "band_rank",
            "-score",
            F("routed_at").asc(nulls_last=True),
            "pk",
        )
    )


# What the queue's row shows of a lead (pipeline/rows.py; the annotations above come
# along): not the JSON columns, the company or the BANT notes.
QUEUE_ROW_FIELDS = (
    "first_name", "last_name", "email", "external_id", "title", "company_name", "phone",
    "stage", "score", "grade", "band", "scored_at", "is_pql", "last_activity_at",
    "opportunity__currency", "opportunity__amount",
)  # fmt: skip

_QUEUE_PAGE = PreparedQuery(
    lambda membership, now: rep_queue(membership=membership, now=now).only(*QUEUE_ROW_FIELDS),
    {"membership": PreparedQuery.instance(Membership), "now": STAND_IN_TIME},
)


def rep_queue_page(*, membership: Membership, now: datetime, offset: int, limit: int) -> list[Lead]:
    """A page of `rep_queue` with the columns its rows show. The same statement on
    every call: built and compiled once per process (leadflow.core.prepared), which
    the ORM otherwise spends longer on than the database takes to run it."""
    return _QUEUE_PAGE.run(membership=membership, now=now, offset=offset, limit=limit)


def _queue_counts(membership: Membership, now: datetime) -> QuerySet:
    clocks = (("accept_due_at", "accepted_at"), ("first_touch_due_at", "first_touched_at"))
    overdue = Q(current__breached_at__isnull=False)
    for due, done in clocks:
        overdue |= Q(**{f"current__{done}__isnull": True, f"current__{due}__lt": now})
    return (
        _open_leads_of(membership)
        .alias(current=_current())
        .order_by()
        .values_list("stage")
        .annotate(n=Count("pk"), late=Count("pk", filter=overdue))
    )


_QUEUE_COUNTS = PreparedQuery(
    _queue_counts, {"membership": PreparedQuery.instance(Membership), "now": STAND_IN_TIME}
)


def rep_queue_counts(*, membership: Membership, now) -> dict[str, int]:
    """Header figures of the queue: open leads by stage and how many are overdue (one query).

    Counted over the queue's plain lead rows joined to their current assignment,
    grouped by stage, without the page's annotations (they cost more to build
    than the query to run): a lead is overdue when a running SLA clock (accept or
    first touch, its step not done) is past due, or its assignment was marked
    breached -- `sla_due_at < now` of `rep_queue`, spelled per clock.
    """
    rows = _QUEUE_COUNTS.run(membership=membership, now=now)
    by_stage = {stage: (n, late) for stage, n, late in rows}
    return {
        "total": sum(n for n, _late in by_stage.values()),
        "overdue": sum(late for _n, late in by_stage.values()),
        **{stage: by_stage.get(stage, (0, 0))[0] for stage in OPEN_STAGES},
    }


def team_load(*, organization: Organization) -> QuerySet[TeamMember]:
    """Every team seat with the rep's open leads against capacity and open SLA breaches.

    Open leads count whatever team routed them: capacity is per rep."""
    del organization  # the active scope already limits the rows; named for the reader
    member = OuterRef("membership")
    open_count = (
        _open_leads_of(member).order_by().values("owner").annotate(n=Count("pk")).values("n")
    )
    breaches = (
        Assignment.objects.filter(
            membership=member,
            is_current=True,
            breached_at__isnull=False,
            lead__stage__in=OPEN_STAGES,
        )
        .order_by()
        .values("membership")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        TeamMember.objects.select_related("team", "membership__user")
        .annotate(
            open_count=Coalesce(Subquery(open_count), 0),
            breach_count=Coalesce(Subquery(breaches), 0),
        )
        .order_by("team__name", "membership__user__email", "pk")
    )


def unassigned_mqls(*, organization: Organization) -> QuerySet[Lead]:
    """MQLs waiting for an owner (no routing rule or team could take them), best first."""
    del organization
    return (
        Lead.objects.filter(stage=LeadStage.MQL, owner__isnull=True, merged_into__isnull=True)
        .select_related("company")
        .annotate(band_rank=BAND_RANK)
        .order_by("band_rank", "-score", "stage_changed_at", "pk")
    )


def failed_notice_emails(*, limit: int = 20) -> list[Notification]:
    """The latest notices whose email could not be sent (the team page lists them)."""
    return list(
        Notification.objects.exclude(email_error="")
        .select_related("recipient__user")
        .order_by("-created_at", "-pk")[:limit]
    )


def assignable_members(*, organization: Organization) -> QuerySet[Membership]:
    """People a lead can be handed to: active sales reps and admins."""
    return (
        Membership.objects.filter(
            organization=organization, is_active=True, role__in=[Role.SALES_REP, Role.ADMIN]
        )
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


@dataclass
class BoardColumn:
    stage: DealStage
    count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)  # currency -> sum of amounts
    weighted: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount x probability
    items: list[Opportunity] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.stage.kind


BOARD_COLUMN_LIMIT = 60  # cards per column; the totals count every deal


def _board_rows(membership: Membership) -> QuerySet[Opportunity]:
    qs = Opportunity.objects.all()
    if membership.role == Role.SALES_REP:
        qs = qs.filter(owner=membership)
    return qs


def _card_order(deal: Opportunity) -> tuple:
    """Latest closed first, then open ones closing soonest and largest (the window's order)."""
    closed = -deal.closed_at.timestamp() if deal.closed_at else 0.0
    return (closed, deal.expected_close_date or date.max, -deal.amount, -deal.pk)


def pipeline_board(*, membership: Membership, stages: list[DealStage]) -> list[BoardColumn]:
    """The organization's stages as columns, with each column's count and totals and
    probability-weighted totals per currency (never summed across currencies; a won
    column weighs 100 %, a lost one 0 %). Reps
    see their own deals. A deal without a stage of its status's kind (closed in
    bulk, say) counts in that kind's first column. Two queries: the sums, and the
    first BOARD_COLUMN_LIMIT cards of every column in one window query."""
    columns = {stage.pk: BoardColumn(stage) for stage in stages}
    first_of_kind: dict[str, BoardColumn] = {}
    for column in columns.values():
        first_of_kind.setdefault(column.kind, column)

    def column_of(status: str, stage_id: int | None) -> BoardColumn | None:
        column = columns.get(stage_id) if stage_id is not None else None
        return column if column and column.kind == status else first_of_kind.get(status)

    rows = _board_rows(membership)
    weighted = ExpressionWrapper(
        F("amount") * F("probability") / Value(100),
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    sums = (
        rows.order_by()
        .values("status", "stage_id", "currency")
        .annotate(n=Count("pk"), total=Sum("amount"), weighted=Sum(weighted))
        .order_by("currency")
    )
    for row in sums:
        target = column_of(row["status"], row["stage_id"])
        if target is None:
            continue
        target.count += row["n"]
        currency = row["currency"]
        target.totals[currency] = target.totals.get(currency, Decimal(0)) + (row["total"] or 0)
        target.weighted[currency] = target.weighted.get(currency, Decimal(0)) + (
            row["weighted"] or 0
        )
    for column in columns.values():
        if column.kind != DealStageKind.OPEN:  # closed: the amount won, or nothing
            won = column.kind == DealStageKind.WON
            column.weighted = {c: t if won else Decimal(0) for c, t in column.totals.items()}
    rank = Window(
        RowNumber(),
        partition_by=[F("status"), F("stage_id")],
        order_by=[
            F("closed_at").desc(nulls_last=True),
            F("expected_close_date").asc(nulls_last=True),
            F("amount").desc(),
            F("pk").desc(),
        ],
    )
    # The window ranks the deals alone; only the cards shown are joined to their lead
    # and owner (a join under the window would be made for every deal of the tenant).
    shown = rows.annotate(rank=rank).filter(rank__lte=BOARD_COLUMN_LIMIT).values("pk")
    cards = Opportunity.objects.filter(pk__in=Subquery(shown)).select_related("lead", "owner__user")
    for deal in cards:
        target = column_of(deal.status, deal.stage_id)
        if target is not None:
            target.items.append(deal)
    for column in columns.values():
        column.items.sort(key=_card_order)
        del column.items[BOARD_COLUMN_LIMIT:]
    return list(columns.values())


@dataclass
class LeadPipeline:
    lead: Lead
    transitions: list[StageTransition]
    qualification: Qualification | None
    opportunity: Opportunity | None
    assignment: Assignment | None
    bant_required: list[str]
    bant_missing: list[str]


def lead_pipeline(*, lead: Lead, policy: PipelinePolicy | None = None) -> LeadPipeline:
    """A lead's stage history, BANT, opportunity and current assignment (four queries)."""
    transitions = list(
        StageTransition.objects.filter(lead=lead)
        .select_related("actor__user")
        .order_by("-occurred_at", "-pk")[:100]
    )
    qualification = Qualification.objects.filter(lead=lead).first()
    opportunity = Opportunity.objects.filter(lead=lead).select_related("owner__user").first()
    assignment = (
        Assignment.objects.filter(lead=lead, is_current=True)
        .select_related("membership__user", "team", "rule", "assigned_by__user")
        .first()
    )
    required = list(policy.bant_required) if policy else []
    missing = (
        qualification.missing(required)
        if qualification
        else [part for part in required]  # nothing filled in yet
    )
    return LeadPipeline(
        lead, transitions, qualification, opportunity, assignment, required, missing
    )
