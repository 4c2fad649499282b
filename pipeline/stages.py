"""The one transition table: which stage moves exist, who may make them, and
whether a person making them must give a reason.

Actors: SYSTEM (a rule: score, pql, routing, sla — no Membership), and people
by role: ADMIN, MARKETER, REP (sales_rep). Automatic moves always carry the
rule that made them, so "reason required" applies to people only.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Membership, Role
from leads.models import LeadStage
from pipeline.errors import ReasonRequired, TransitionNotAllowed

SYSTEM, ADMIN, MARKETER, REP = "system", "admin", "marketer", "rep"
ROLE_ACTOR = {Role.ADMIN: ADMIN, Role.MARKETER: MARKETER, Role.SALES_REP: REP}


@dataclass(frozen=True)
class Move:
    who: frozenset[str]
    reason_required: bool = False


def _move(*who: str, reason: bool = False) -> Move:
    return Move(frozenset(who), reason)


S = LeadStage
TRANSITIONS: dict[tuple[str, str], Move] = {
    # Marketing hands a lead over: automatically (score/PQL) or by hand with a reason.
    (S.NEW, S.MQL): _move(SYSTEM, MARKETER, ADMIN, reason=True),
    (S.RECYCLED, S.MQL): _move(SYSTEM, MARKETER, ADMIN, reason=True),
    # Sales accepts, or rejects back to nurture (reason), or the SLA recycles it.
    (S.MQL, S.SAL): _move(REP, ADMIN),
    (S.MQL, S.RECYCLED): _move(SYSTEM, REP, MARKETER, ADMIN, reason=True),
    # SQL needs the BANT qualification (checked by lead_qualify).
    (S.SAL, S.SQL): _move(REP, ADMIN),
    (S.SAL, S.RECYCLED): _move(SYSTEM, REP, ADMIN, reason=True),
    # An opportunity opens when sales enters an amount.
    (S.SQL, S.OPPORTUNITY): _move(REP, ADMIN),
    (S.SQL, S.RECYCLED): _move(REP, ADMIN, reason=True),
    (S.OPPORTUNITY, S.WON): _move(REP, ADMIN),
    (S.OPPORTUNITY, S.LOST): _move(REP, ADMIN, reason=True),
    # A lost deal can be reopened, or go back to nurture.
    (S.LOST, S.OPPORTUNITY): _move(REP, ADMIN, reason=True),
    (S.LOST, S.RECYCLED): _move(REP, MARKETER, ADMIN, reason=True),
    # Not a fit at all: out of the funnel, with a reason; marketing may revive it.
    (S.NEW, S.DISQUALIFIED): _move(MARKETER, ADMIN, reason=True),
    (S.MQL, S.DISQUALIFIED): _move(REP, MARKETER, ADMIN, reason=True),
    (S.SAL, S.DISQUALIFIED): _move(REP, ADMIN, reason=True),
    (S.SQL, S.DISQUALIFIED): _move(REP, ADMIN, reason=True),
    (S.RECYCLED, S.DISQUALIFIED): _move(MARKETER, ADMIN, reason=True),
    (S.DISQUALIFIED, S.RECYCLED): _move(MARKETER, ADMIN, reason=True),
}


class RejectReason:
    """Why a rep sends an MQL back (reason_code of the transition)."""

    CHOICES = [
        ("bad_fit", "Bad fit"),
        ("no_contact", "Could not reach them"),
        ("duplicate", "Duplicate"),
        ("not_now", "Not now"),
        ("competitor", "Competitor or partner"),
        ("other", "Other (explain)"),
    ]
    LABELS = dict(CHOICES)


def actor_kind(actor: Membership | None) -> str:
    return SYSTEM if actor is None else ROLE_ACTOR.get(actor.role, "")


def allowed_targets(from_stage: str, actor: Membership | None) -> list[str]:
    """Stages this actor may move a lead to from `from_stage` (for buttons)."""
    kind = actor_kind(actor)
    return [to for (src, to), move in TRANSITIONS.items() if src == from_stage and kind in move.who]


def check_move(from_stage: str, to_stage: str, actor: Membership | None, reason: str) -> Move:
    """Raise unless the table allows this actor to make this move (with this reason)."""
    label = dict(LeadStage.choices)
    move = TRANSITIONS.get((from_stage, to_stage))
    if move is None:
        raise TransitionNotAllowed(
            f"A lead cannot move from {label.get(from_stage, from_stage)} "
            f"to {label.get(to_stage, to_stage)}."
        )
    kind = actor_kind(actor)
    if kind not in move.who:
        who = "automatic rules" if kind == SYSTEM else f"a{'n' if kind == ADMIN else ''} {kind}"
        raise TransitionNotAllowed(
            f"Moving a lead from {label[from_stage]} to {label[to_stage]} cannot be done by {who}."
        )
    if move.reason_required and kind != SYSTEM and not (reason or "").strip():
        raise ReasonRequired(
            f"Give a reason for moving the lead from {label[from_stage]} to {label[to_stage]}."
        )
    return move
