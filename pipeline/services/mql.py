"""Marketing hands leads to sales: MQL by score, by product usage (PQL), or by
hand — and routing runs right away, in the same transaction (and so the same
background task) that qualified them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Membership
from accounts.permissions import Perm
from leadflow.core.orgfacts import org_fact
from leads.models import Lead, LeadStage, MqlSource
from leads.services.ingest import ingested_touch, note_leads_changed
from pipeline.errors import TransitionNotAllowed
from pipeline.models import Assignment, StageTransition
from pipeline.policy import policy_get
from pipeline.routing import leads_route
from pipeline.services.transitions import stage_transition, stages_transition_many
from scoring.engine import property_condition


@transaction.atomic
def leads_mark_mql(
    *,
    organization_id: int,
    lead_ids: Iterable[int],
    source: str,
    actor: Membership | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> list[Assignment]:
    """Make MQLs of the leads still in new/recycled, then route them.

    Constant statements whatever the number of leads. Returns the assignments made."""
    if source not in MqlSource.values:
        raise ValueError(f"Unknown MQL source {source!r}")
    now = now or timezone.now()
    moved = stages_transition_many(
        organization_id=organization_id,
        lead_ids=lead_ids,
        to=LeadStage.MQL,
        rule=source,
        reason=reason,
        actor=actor,
        now=now,
        also_set={"mql_source": source},
    )
    return leads_route(organization_id=organization_id, lead_ids=moved, now=now)


def mql_after_rescore(organization_id: int, up_ids: list[int], down_ids: list[int]) -> None:
    """leadflow.core.hooks.mql_crossing: leads over the threshold (and not gated) become
    MQLs. A lead dropping back under it keeps its stage: sales may be working it."""
    if up_ids:
        leads_mark_mql(organization_id=organization_id, lead_ids=up_ids, source=MqlSource.SCORE)


@transaction.atomic
def lead_mark_mql_manual(*, lead: Lead, actor: Membership, reason: str) -> StageTransition:
    """A marketer (or admin) hands a lead to sales by hand, with a reason; it is routed."""
    if not actor.has_perm(Perm.ASSIGN_LEADS):
        raise TransitionNotAllowed("Only marketers and admins can mark a lead as MQL.")
    transition = stage_transition(
        lead=lead,
        to=LeadStage.MQL,
        actor=actor,
        rule=MqlSource.MANUAL,
        reason=reason,
        also_set={"mql_source": MqlSource.MANUAL},
    )
    leads_route(organization_id=lead.organization_id, lead_ids=[lead.pk])
    return transition


# --- PQL: product usage ----------------------------------------------------------------


def pql_lead_ids(*, organization_id: int, lead_ids: list[int], rules: list[dict], now) -> list[int]:
    """Of these leads, the ones not yet PQL that some product-usage rule now matches (1 query)."""
    if not rules or not lead_ids:
        return []
    counts, matched = {}, Q()
    for i, rule in enumerate(rules):
        q = Q(activities__kind=rule["kind"])
        if rule.get("window_days"):
            q &= Q(activities__occurred_at__gte=now - timedelta(days=int(rule["window_days"])))
        if rule.get("field"):
            q &= property_condition(rule["field"], rule.get("operator") or "eq", rule.get("value"))
        counts[f"pql{i}"] = Count("activities", filter=q)
        matched |= Q(**{f"pql{i}__gte": int(rule.get("min_count") or 1)})
    return list(
        Lead.objects.filter(
            pk__in=lead_ids, is_pql=False, discarded_at__isnull=True, merged_into__isnull=True
        )
        .annotate(**counts)
        .filter(matched)
        .values_list("pk", flat=True)
    )


@transaction.atomic(savepoint=False)  # all or nothing, as a part of its caller's transaction
def _pql_kinds(organization_id: int) -> list[str]:
    """The activity kinds the PQL rules count (cached per organization: the
    single-lead path asks on every capture)."""
    rules = policy_get(organization_id=organization_id).pql_rules or []
    return sorted({str(rule["kind"]) for rule in rules if rule.get("kind")})


def pql_evaluate(
    *, organization_id: int, lead_ids: list[int], now: datetime | None = None
) -> list[int]:
    """Flag leads whose product usage matches the policy's PQL rules; those still in
    new/recycled become MQLs (source: pql) and are routed. Returns the new PQL ids."""
    now = now or timezone.now()
    touched = ingested_touch()
    if touched is not None and not touched.activity_kinds & set(
        org_fact("pql_kinds", organization_id, lambda: _pql_kinds(organization_id))
    ):
        return []  # no new activity any rule counts: no lead can have become a PQL
    policy = policy_get(organization_id=organization_id)
    ids = pql_lead_ids(
        organization_id=organization_id, lead_ids=lead_ids, rules=policy.pql_rules or [], now=now
    )
    if ids:
        note_leads_changed(ids)
        Lead.objects.filter(pk__in=ids).update(is_pql=True, updated_at=now)
        leads_mark_mql(organization_id=organization_id, lead_ids=ids, source=MqlSource.PQL, now=now)
    return ids


def pql_after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """leadflow.core.hooks.post_ingest (after scoring's rescore)."""
    if lead_ids:
        pql_evaluate(organization_id=organization_id, lead_ids=list(lead_ids))
