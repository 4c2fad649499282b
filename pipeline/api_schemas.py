"""Request and response shapes of the pipeline API (/api/v1/leads/{id}/transitions, …)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field
from pydantic import BeforeValidator, WithJsonSchema, field_validator

from leadflow.core.api_schemas import PlainOut, StrictInput
from leads.api_schemas import ApiDatetime
from leads.models import LeadStage

StageValue = Literal[tuple(LeadStage.values)]  # type: ignore[valid-type]
REASON_MAX_LENGTH = 2000


class TransitionIn(StrictInput):
    """Move a lead to another stage, as your integration."""

    to: StageValue = Field(..., description="The stage to move the lead to.")
    reason_code: str = Field(
        "",
        max_length=40,
        pattern=r"^[a-z0-9_]*$",
        description="A short machine code for the reason, e.g. `bad_fit` or `crm_closed`.",
    )
    reason: str = Field(
        "",
        max_length=REASON_MAX_LENGTH,
        description="Why, in words. Required where the stage table asks a person for one.",
    )

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class TransitionOut(PlainOut):
    id: int
    from_stage: str = Field(..., description='"" for the lead\'s first stage.')
    to_stage: str
    occurred_at: datetime
    actor_email: str | None = Field(..., description="The person who moved it, if a person did.")
    rule: str = Field(..., description="What moved it: manual, score, pql, sla, api:<key name>…")
    reason_code: str
    reason: str


class TransitionResultOut(PlainOut):
    lead_id: int
    stage: str = Field(..., description="The lead's stage now.")
    transition: TransitionOut


class StageHistoryOut(PlainOut):
    lead_id: int
    stage: str = Field(..., description="The lead's current stage.")
    items: list[TransitionOut] = Field(..., description="Every stage change, oldest first.")


_AMOUNT = r"^\d{1,12}(\.\d{1,2})?$"


def _amount_text(value: Any) -> Any:
    # Money is decimal text ("1200.50"): a JSON number would go through a float.
    if value is None or (isinstance(value, str) and re.fullmatch(_AMOUNT, value)):
        return value
    raise ValueError('Give the amount as decimal text, e.g. "1200.50".')


AmountText = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    WithJsonSchema({"type": "string", "pattern": _AMOUNT, "examples": ["1200.50"]}),
]


class OutcomeIn(StrictInput):
    """A lead's outcome as your CRM knows it: won or lost, when, why, for how much."""

    outcome: Literal["won", "lost"] = Field(..., description="won or lost.")
    reason: str = Field("", max_length=REASON_MAX_LENGTH, description="Why; required for lost.")
    amount: AmountText | None = Field(None, description="Closes an open deal with it.")
    occurred_at: ApiDatetime | None = Field(None, description="When it happened (default: now).")

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class OutcomeOut(PlainOut):
    lead_id: int
    stage: str = Field(..., description="The lead's stage now: won or lost.")
    recorded: bool = Field(..., description="False when the lead already had this outcome.")
