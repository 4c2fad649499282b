"""The leads JSON API: upsert a lead, post activity batches, list/get leads (CRM sync).

Handlers are thin: the routers (accounts.api_auth.tenant_router) authenticate
the API key, rate-limit it and open its organization's scope; the handlers
parse, call a service in leads.services.activities, and shape the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import pydantic
from django.db.models import Q, QuerySet
from django.http import Http404
from ninja import Query, Status
from ninja.decorators import decorate_view

from accounts.api_auth import ApiError, invalid_request, json_body, tenant_router
from leadflow.core.api_schemas import API_ERRORS, API_WRITE_ERRORS
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.api_schemas import (
    ActivityBatchIn,
    ActivityBatchOut,
    LeadDetailOut,
    LeadFilters,
    LeadIn,
    LeadPageOut,
    LeadUpsertOut,
)
from leads.models import Activity, Lead
from leads.scrub import normalize_country, normalize_email
from leads.search import search_leads
from leads.services.activities import (
    MAX_ID,
    ActivityError,
    LeadRejected,
    UnknownCampaign,
    activity_record_batch,
    api_submission_store,
    lead_upsert,
)

LEAD_BODY_LIMIT = 1024 * 1024  # one lead: generous for 10k-character values
ACTIVITY_BODY_LIMIT = 5 * 1024 * 1024  # up to 1,000 activities with their properties
DETAIL_ACTIVITY_LIMIT = 50

leads_router = tenant_router()
activities_router = tenant_router()


def _consent_origin(request) -> str:
    return f"api: {request.auth.name}"


# --- POST /leads -------------------------------------------------------------------


@leads_router.post(
    "",
    response={200: LeadUpsertOut, 201: LeadUpsertOut, **API_WRITE_ERRORS},
    summary="Create or update a lead",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LeadIn.model_json_schema()}},
        }
    },
)
@decorate_view(json_body(LEAD_BODY_LIMIT))
def lead_upsert_endpoint(request):
    """Upsert one lead, identified by email (case-insensitive) or external_id.

    The body is validated first: an invalid one is a 400 and nothing is stored.
    A valid body is stored raw before anything else happens. Answers 201 when
    the lead was created, 200 when it was merged into an existing one. Junk
    (e.g. a disposable address) is stored but quarantined: see `outcome` and
    `reasons`.
    """
    organization_id = request.auth.organization_id
    raw = request.json_body
    data = _validated_lead(raw)
    submission = api_submission_store(
        organization_id=organization_id,
        payload=raw,
        user_agent=request.headers.get("User-Agent", ""),
    )
    try:
        result = lead_upsert(
            organization_id=organization_id,
            submission=submission,
            row=data.lead_row(),
            campaign=data.campaign,
            source=data.source or "",
            activity_kind=data.activity_kind,
            occurred_at=data.occurred_at,
            consent_origin=_consent_origin(request),
        )
    except UnknownCampaign as exc:
        raise ApiError(400, "unknown_campaign", str(exc), [{"field": "campaign"}]) from exc
    except LeadRejected as exc:
        raise ApiError(400, "invalid_lead", str(exc), exc.reasons) from exc
    except ActivityError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    body = {
        "outcome": result.outcome,
        "created": result.created,
        "quality": result.lead.quality,
        "reasons": result.reasons,
        "submission_id": submission.pk,
        "lead": result.lead,
    }
    return Status(201 if result.created else 200, body)


def _validated_lead(raw: Any) -> LeadIn:
    """The body as a LeadIn, else a 400 naming the fields (before anything is stored)."""
    if not isinstance(raw, dict):
        details = [{"field": "", "code": "type", "message": "Expected a JSON object."}]
        raise ApiError(400, "invalid_request", "The body must be a JSON object.", details)
    try:
        return LeadIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False)) from exc


# --- GET /leads ----------------------------------------------------------------------


@leads_router.get("", response={200: LeadPageOut, **API_ERRORS})
def lead_list(request, filters: Query[LeadFilters]):
    """List leads with filters, oldest id first by default.

    Pagination is by cursor: pass the `next_cursor` of a page as `cursor` to
    get the next one. For CRM sync, use `order=updated_at` with `updated_after`.
    """
    unknown = sorted(set(request.GET) - set(LeadFilters.model_fields))
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            [{"field": name, "code": "unknown"} for name in unknown],
        )
    qs = _filtered_leads(filters)
    qs = _after_cursor(qs, filters.order, filters.cursor)
    rows = list(qs.order_by(*_ordering(filters.order))[: filters.limit + 1])
    has_more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    next_cursor = _encode_cursor(filters.order, rows[-1]) if has_more else None
    return {"items": rows, "next_cursor": next_cursor, "has_more": has_more}


def _filtered_leads(f: LeadFilters) -> QuerySet[Lead]:
    qs = Lead.objects.select_related("company")
    if not f.include_inactive:
        qs = qs.filter(merged_into__isnull=True, discarded_at__isnull=True)
    if f.q:
        qs = search_leads(qs, f.q)
    if f.email:
        qs = qs.filter(email=normalize_email(f.email).email or f.email.strip().lower())
    if f.external_id:
        qs = qs.filter(external_id=f.external_id.strip())
    if f.country:
        code = normalize_country(f.country)
        if code is None:
            raise ApiError(400, "invalid_request", f"Unknown country {f.country!r}.")
        qs = qs.filter(country=code)
    if f.quality:
        qs = qs.filter(quality=f.quality)
    if f.source:
        qs = qs.filter(Q(first_source=f.source) | Q(latest_source=f.source))
    if f.campaign is not None:
        qs = qs.filter(Q(first_campaign_id=f.campaign) | Q(latest_campaign_id=f.campaign))
    if f.owner is not None:
        qs = qs.filter(owner_id=f.owner)
    if f.created_after:
        qs = qs.filter(created_at__gte=f.created_after)
    if f.created_before:
        qs = qs.filter(created_at__lt=f.created_before)
    if f.updated_after:
        qs = qs.filter(updated_at__gte=f.updated_after)
    return qs


def _ordering(order: str) -> list[str]:
    if order.lstrip("-") == "id":
        return [order]
    return [order, "-id" if order.startswith("-") else "id"]


# A cursor is the sort key of the last row of a page: opaque to clients, and
# keyset-based so pages stay consistent while leads are being added.


def _encode_cursor(order: str, lead: Lead) -> str:
    value = lead.updated_at.isoformat() if order.lstrip("-") == "updated_at" else None
    raw = json.dumps({"o": order, "v": value, "id": lead.pk}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(order: str, cursor: str) -> tuple[datetime | None, int]:
    invalid = ApiError(400, "invalid_cursor", "The cursor is invalid; start again without one.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        last_id = data["id"]
        value = datetime.fromisoformat(data["v"]) if data.get("v") else None
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise invalid from exc
    if not isinstance(last_id, int) or data.get("o") != order:
        raise ApiError(
            400, "invalid_cursor", "The cursor belongs to another ordering; keep `order` the same."
        )
    if order.lstrip("-") == "updated_at" and value is None:
        raise invalid
    return value, last_id


def _after_cursor(qs: QuerySet[Lead], order: str, cursor: str | None) -> QuerySet[Lead]:
    if not cursor:
        return qs
    value, last_id = _decode_cursor(order, cursor)
    op = "lt" if order.startswith("-") else "gt"
    if value is None:
        return qs.filter(**{f"pk__{op}": last_id})
    return qs.filter(
        Q(**{f"updated_at__{op}": value}) | Q(updated_at=value, **{f"pk__{op}": last_id})
    )


# --- GET /leads/{id} -------------------------------------------------------------------


@leads_router.get("/{lead_id}", response={200: LeadDetailOut, **API_ERRORS})
def lead_detail(request, lead_id: int):
    """One lead with its company and its latest activities (newest first)."""
    if not 0 < lead_id <= MAX_ID:
        raise Http404("No lead matches the given query.")
    lead = get_tenant_object_or_404(Lead.objects.select_related("company"), pk=lead_id)
    lead.recent_activities = list(
        Activity.objects.filter(lead=lead).order_by("-occurred_at", "-pk")[:DETAIL_ACTIVITY_LIMIT]
    )
    return lead


# --- POST /activities ------------------------------------------------------------------


@activities_router.post("", response={200: ActivityBatchOut, **API_WRITE_ERRORS})
@decorate_view(json_body(ACTIVITY_BODY_LIMIT))
def activity_batch(request, payload: ActivityBatchIn):
    """Record up to 1,000 activities (touchpoints) in one call.

    Every item is validated first and answered on its own (`results[i].status`:
    created, duplicate or error with reasons); bad items don't block good ones.
    Items with an `external_id` already stored are reported as duplicates, so a
    retried call is safe.
    """
    result = activity_record_batch(
        organization_id=request.auth.organization_id,
        items=[item.model_dump() for item in payload.activities],
        create_missing_leads=payload.create_missing_leads,
        source=payload.source or "",
        consent_origin=_consent_origin(request),
    )
    return {
        "created": result.count("created"),
        "duplicates": result.count("duplicate"),
        "errors": result.count("error"),
        "leads_created": result.leads_created,
        "results": result.results,
    }
