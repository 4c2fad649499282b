"""What a report is about: the date range, its grain, the comparison period and
the filters, parsed from the query string into one frozen `ReportQuery`.

Every report page and export goes through `parse_report_query`; bad input never
reaches a selector. Dates are calendar days in the organization's timezone; the
range is inclusive of both days (`start_at` ≤ t < `end_at` in UTC terms).

Role scoping is part of the query: `owner_ids` is None for admins and marketers
(everything in the org) and, for a sales rep, the rep plus their teammates — every
selector restricts leads to those owners, so a rep never sees numbers beyond them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Exists, OuterRef, Q

from leadflow.core.errors import LeadflowError

GRAINS = {"day": "Day", "week": "Week", "month": "Month"}
COMPARES = {"previous": "Previous period", "none": "No comparison"}
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366  # "three years", leap days included
# Buckets drawn on one chart: beyond this the grain is too fine to read.
MAX_BUCKETS = 400


class ReportInputError(LeadflowError):
    """The report's query string cannot be answered; the message says why."""


@dataclass(frozen=True)
class ReportQuery:
    start: dt.date
    end: dt.date  # inclusive
    grain: str = "day"
    compare: str = "previous"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    source: str = ""
    campaign_id: int | None = None
    team_id: int | None = None
    rep_id: int | None = None
    # None: the whole org. Otherwise only leads owned by these memberships count.
    owner_ids: frozenset[int] | None = None
    # Labels of the chosen filters, for the page ("Campaign: Spring webinar").
    filter_labels: tuple[tuple[str, str], ...] = ()

    # -- the period ---------------------------------------------------------
    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=self.tz)

    @property
    def end_at(self) -> dt.datetime:
        """Exclusive upper bound: midnight after the last day."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=self.tz)

    @property
    def has_previous(self) -> bool:
        return self.compare == "previous"

    @property
    def previous(self) -> ReportQuery:
        """The same query over the equally long period just before this one."""
        end = self.start - dt.timedelta(days=1)
        return replace(self, start=end - dt.timedelta(days=self.days - 1), end=end)

    def bucket_start(self, day: dt.date) -> dt.date:
        if self.grain == "week":
            return day - dt.timedelta(days=day.weekday())
        if self.grain == "month":
            return day.replace(day=1)
        return day

    def buckets(self) -> list[dt.date]:
        """The first day of every bucket the period touches, in order."""
        out, day = [], self.bucket_start(self.start)
        while day <= self.end:
            out.append(day)
            if self.grain == "week":
                day += dt.timedelta(days=7)
            elif self.grain == "month":
                day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            else:
                day += dt.timedelta(days=1)
        return out

    def bucket_label(self, day: dt.date) -> str:
        if self.grain == "month":
            return day.strftime("%b %Y")
        if self.grain == "week":
            return f"Wk {day:%d %b}"
        return day.strftime("%d %b")

    # -- filters --------------------------------------------------------------
    def lead_q(self, prefix: str = "") -> Q:
        """The leads this query covers (filters + role scope), for Lead or via a FK."""
        p = prefix
        q = Q(**{f"{p}merged_into__isnull": True})
        if self.source:
            q &= Q(**{f"{p}first_source": self.source})
        if self.campaign_id:
            q &= Q(**{f"{p}first_campaign_id": self.campaign_id})
        if self.rep_id:
            q &= Q(**{f"{p}owner_id": self.rep_id})
        if self.team_id:
            q &= Q(**{f"{p}owner__team_seats__team_id": self.team_id})
        if self.owner_ids is not None:
            q &= Q(**{f"{p}owner_id__in": sorted(self.owner_ids)})
        return q

    def lead_exists(self, lead_field: str = "lead_id"):
        """lead_q for a history table (transitions, assignments) as a semi-join on
        its lead, without joining every lead: unfiltered, only "not merged" is left,
        and NOT EXISTS over the few merged leads is all it costs."""
        from leads.models import Lead

        if not (self.source or self.campaign_id or self.rep_id or self.team_id) and (
            self.owner_ids is None
        ):
            return ~Exists(Lead.objects.filter(pk=OuterRef(lead_field), merged_into__isnull=False))
        return Exists(Lead.objects.filter(self.lead_q(), pk=OuterRef(lead_field)))

    def created_q(self, prefix: str = "") -> Q:
        """Leads that arrived in the period (the cohort)."""
        return self.lead_q(prefix) & Q(
            **{f"{prefix}created_at__gte": self.start_at, f"{prefix}created_at__lt": self.end_at}
        )

    def params(self, **overrides) -> dict[str, str]:
        values = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "grain": self.grain,
            "compare": self.compare,
            "source": self.source,
            "campaign": self.campaign_id or "",
            "team": self.team_id or "",
            "rep": self.rep_id or "",
        }
        values.update(overrides)
        return {k: str(v) for k, v in values.items() if v not in ("", None)}

    def querystring(self, **overrides) -> str:
        return urlencode(self.params(**overrides))


# -- parsing ---------------------------------------------------------------------


def _date(params, name: str, label: str) -> dt.date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ReportInputError(
            f"The {label} date “{raw[:20]}” is not a date (use YYYY-MM-DD)."
        ) from None


def _choice(params, name: str, choices: dict, default: str, label: str) -> str:
    raw = (params.get(name) or "").strip() or default
    if raw not in choices:
        allowed = ", ".join(choices)
        raise ReportInputError(f"Unknown {label} “{raw[:20]}”: choose one of {allowed}.")
    return raw


def _id(params, name: str, label: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ReportInputError(f"Unknown {label}: “{raw[:20]}”.")
    return int(raw)


def org_timezone(organization) -> ZoneInfo:
    try:
        return ZoneInfo(organization.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def rep_scope(membership) -> frozenset[int] | None:
    """Owners whose leads this member may see in reports (None: all of them)."""
    from accounts.models import Role
    from pipeline.models import TeamMember

    if membership is None or membership.role != Role.SALES_REP:
        return None
    teams = TeamMember.objects.filter(membership_id=membership.pk).values("team_id")
    mates = TeamMember.objects.filter(team_id__in=teams).values_list("membership_id", flat=True)
    return frozenset({membership.pk, *mates})


def parse_report_query(
    params, *, organization, membership=None, today: dt.date | None = None
) -> ReportQuery:
    """Turn a GET dict into a ReportQuery, or raise ReportInputError with a clear message.

    Must run inside the organization's scope: filter ids are looked up among its own
    campaigns, teams and members only, so another tenant's id is simply "unknown".
    """
    from accounts.models import Membership
    from leads.models import Campaign, Channel
    from pipeline.models import Team

    tz = org_timezone(organization)
    today = today or dt.datetime.now(tz).date()
    start = _date(params, "start", "start")
    end = _date(params, "end", "end")
    if end is None:
        end = today if start is None else min(start + dt.timedelta(days=DEFAULT_DAYS - 1), today)
    if start is None:
        start = end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ReportInputError(
            f"The period starts ({start:%d %b %Y}) after it ends ({end:%d %b %Y}): swap the dates."
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportInputError("The period is longer than 3 years: choose a shorter range.")
    if start.year < 2000 or end.year > today.year + 1:
        raise ReportInputError("The period lies outside the years a report can cover.")

    grain = _choice(params, "grain", GRAINS, "day", "grain")
    compare = _choice(params, "compare", COMPARES, "previous", "comparison")
    labels: list[tuple[str, str]] = []

    source = (params.get("source") or "").strip()
    if source:
        if source not in Channel.values:
            raise ReportInputError(f"Unknown source “{source[:30]}”.")
        labels.append(("Source", Channel(source).label))

    campaign_id = _id(params, "campaign", "campaign")
    if campaign_id:
        campaign = Campaign.objects.filter(pk=campaign_id).values_list("name", flat=True).first()
        if campaign is None:
            raise ReportInputError("Unknown campaign: it does not exist in this organization.")
        labels.append(("Campaign", campaign))

    owner_ids = rep_scope(membership)
    team_id = _id(params, "team", "team")
    if team_id:
        team = Team.objects.filter(pk=team_id).values_list("name", flat=True).first()
        if team is None:
            raise ReportInputError("Unknown team: it does not exist in this organization.")
        labels.append(("Team", team))

    rep_id = _id(params, "rep", "rep")
    if rep_id:
        rep = (
            Membership.objects.filter(organization=organization, pk=rep_id)
            .select_related("user")
            .first()
        )
        if rep is None or (owner_ids is not None and rep_id not in owner_ids):
            raise ReportInputError("Unknown rep: no such member in your reports.")
        labels.append(("Rep", rep.user.display_name))

    query = ReportQuery(
        start=start,
        end=end,
        grain=grain,
        compare=compare,
        tz=tz,
        source=source,
        campaign_id=campaign_id,
        team_id=team_id,
        rep_id=rep_id,
        owner_ids=owner_ids,
        filter_labels=tuple(labels),
    )
    if len(query.buckets()) > MAX_BUCKETS:
        raise ReportInputError(
            f"{len(query.buckets())} {grain}s are too many for one chart: pick a coarser grain."
        )
    return query
