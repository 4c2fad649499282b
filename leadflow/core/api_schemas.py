"""Shapes every app's JSON API shares: strict inputs, outputs read from
attributes, and the one error body ``{"error": {"code", "message", "details"}}``
with the error answers each authenticated operation documents."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict


class StrictInput(BaseModel):
    # Plain pydantic, not ninja's Schema: inputs are JSON, not ORM objects, and
    # skipping Schema's Django attribute getter makes a 1,000-item batch parse
    # several times faster.
    model_config = ConfigDict(extra="forbid")


class PlainOut(BaseModel):
    """Outputs read from attributes (rows, dataclasses) by pydantic itself (same reason)."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(Schema):
    code: str = Field(..., examples=["invalid_request"])
    message: str
    details: list[dict[str, Any]] = []


class ErrorOut(Schema):
    error: ErrorBody


# What every authenticated operation may answer besides success (documented in
# the OpenAPI document): a bad parameter or body, a missing key, an unknown
# object, the rate limit, and the database too busy to answer in time.
API_ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut, 503: ErrorOut}
API_WRITE_ERRORS = {**API_ERRORS, 413: ErrorOut}
