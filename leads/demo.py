"""Demo data for `manage.py seed_demo`: campaigns with costs, two capture forms,
and a realistic set of leads with activities, taken from the shared public
lead dataset when it is present (synthetic rows otherwise).

Idempotent: running it again adds nothing new (leads are keyed by record id)."""

from __future__ import annotations

import csv
import random
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from leads.models import (
    ActivityKind,
    Campaign,
    CaptureForm,
    CaptureFormField,
    Channel,
    FieldType,
    Lead,
)
from leads.services.ingest import Touch, lead_ingest_batch

DEMO_LEADS = 600
FIRST_NAMES = [
    "Aarav",
    "Priya",
    "Rohan",
    "Ananya",
    "Vikram",
    "Sara",
    "Liam",
    "Emma",
    "Noah",
    "Mia",
    "Lucas",
    "Sofia",
    "Arjun",
    "Neha",
    "Omar",
    "Lea",
]
LAST_NAMES = [
    "Sharma",
    "Patel",
    "Iyer",
    "Khan",
    "Müller",
    "Schmidt",
    "Rossi",
    "Garcia",
    "Chen",
    "Nguyen",
    "Okafor",
    "Silva",
    "Dubois",
    "Kim",
]
TITLES = [
    "VP Marketing",
    "Marketing Manager",
    "Head of Growth",
    "Data Analyst",
    "Student",
    "Intern",
    "CTO",
    "Sales Director",
    "Software Engineer",
    "Operations Lead",
]
DOMAINS = ["infosys.com", "wipro.com", "acmeanalytics.io", "globex.de", "initech.com", "gmail.com"]

CAMPAIGNS = [
    ("Google Ads – Q4 search", Channel.PAID_SEARCH, 12000, "google", "cpc", "q4-search"),
    ("Organic / SEO", Channel.ORGANIC_SEARCH, 3000, "google", "organic", ""),
    ("Facebook lead ads", Channel.PAID_SOCIAL, 4500, "facebook", "paid_social", "fb-leads"),
    ("Partner referrals", Channel.REFERRAL, 1500, "", "", "partners"),
    ("Data Summit 2026", Channel.EVENT, 8000, "event", "booth", "data-summit"),
]
SOURCE_TO_CAMPAIGN = {
    "Google": 0,
    "Organic Search": 1,
    "Direct Traffic": 1,
    "Facebook": 2,
    "Reference": 3,
    "Referral Sites": 3,
    "Welingak Website": 4,
    "Olark Chat": 1,
}
LAST_ACTIVITY_KIND = {
    "Email Opened": ActivityKind.EMAIL_OPEN,
    "Email Link Clicked": ActivityKind.EMAIL_CLICK,
    "Page Visited on Website": ActivityKind.PAGE_VIEW,
    "Form Submitted on Website": ActivityKind.FORM_SUBMIT,
    "Converted to Lead": ActivityKind.FORM_SUBMIT,
}


def dataset_path() -> Path:
    configured = getattr(settings, "DEMO_DATASET", "")
    if configured:
        return Path(configured)
    return settings.BASE_DIR.parent / "shared" / "data" / "x-education-leads.csv"


def _dataset_rows() -> list[dict]:
    path = dataset_path()
    if not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [row for _, row in zip(range(DEMO_LEADS), csv.DictReader(fh), strict=False)]


def _synthetic_row(i: int, rng: random.Random) -> dict:
    return {
        "Prospect ID": f"demo-{i}",
        "Lead Source": rng.choice(list(SOURCE_TO_CAMPAIGN)),
        "Country": rng.choice(["India", "United States", "Germany", ""]),
        "City": "",
        "TotalVisits": str(rng.randint(0, 12)),
        "Last Activity": rng.choice(list(LAST_ACTIVITY_KIND)),
        "Converted": str(rng.randint(0, 1)),
        "Do Not Email": "No",
    }


def _campaigns(org) -> list[Campaign]:
    today = timezone.localdate()
    campaigns = []
    for name, channel, cost, utm_source, utm_medium, utm_campaign in CAMPAIGNS:
        campaign, _ = Campaign.objects.get_or_create(
            organization=org,
            name=name,
            defaults={
                "channel": channel,
                "cost": cost,
                "starts_on": today - timedelta(days=90),
                "utm_source": utm_source,
                "utm_medium": utm_medium,
                "utm_campaign": utm_campaign,
            },
        )
        campaigns.append(campaign)
    return campaigns


FORMS = [
    (
        "Request a demo",
        ActivityKind.DEMO_REQUEST,
        0,
        [
            ("email", "Work email", FieldType.EMAIL, True, "email"),
            ("first_name", "First name", FieldType.TEXT, True, "first_name"),
            ("last_name", "Last name", FieldType.TEXT, True, "last_name"),
            ("company", "Company", FieldType.TEXT, True, "company_name"),
            ("title", "Job title", FieldType.TEXT, False, "title"),
            ("country", "Country", FieldType.COUNTRY, False, "country"),
            ("team_size", "Team size", FieldType.SELECT, False, "custom"),
        ],
    ),
    (
        "Download: State of Lead Scoring 2026",
        ActivityKind.CONTENT_DOWNLOAD,
        1,
        [
            ("email", "Email", FieldType.EMAIL, True, "email"),
            ("first_name", "First name", FieldType.TEXT, False, "first_name"),
            ("company", "Company", FieldType.TEXT, False, "company_name"),
        ],
    ),
]


def _forms(org, campaigns: list[Campaign]) -> None:
    for name, kind, campaign_index, fields in FORMS:
        form, created = CaptureForm.objects.get_or_create(
            organization=org,
            name=name,
            defaults={
                "activity_kind": kind,
                "default_campaign": campaigns[campaign_index],
                "consent_text": "Yes, send me product news. Unsubscribe at any time.",
            },
        )
        if not created:
            continue
        for position, (key, label, field_type, required, maps_to) in enumerate(fields):
            CaptureFormField.objects.create(
                organization=org,
                form=form,
                position=position,
                key=key,
                label=label,
                field_type=field_type,
                required=required,
                maps_to=maps_to,
                options=["1-10", "11-50", "51-200", "201-1000", "1000+"]
                if key == "team_size"
                else [],
            )


def _lead_rows(source_rows: list[dict], rng: random.Random) -> list[dict]:
    now = timezone.now()
    rows = []
    for i, src in enumerate(source_rows):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(DOMAINS)
        visits = src.get("TotalVisits") or "0"
        rows.append(
            {
                "external_id": src["Prospect ID"],
                "email": f"{first}.{last}.{i}@{domain}".lower(),
                "first_name": first,
                "last_name": last,
                "title": rng.choice(TITLES),
                "company_size": rng.choice([None, 40, 250, 1200]),
                "company_name": domain.split(".")[0].title() if domain != "gmail.com" else "",
                "country": src.get("Country") or "",
                "city": "" if src.get("City") in ("", "Select") else src.get("City", ""),
                "do_not_email": src.get("Do Not Email") == "Yes",
                "email_opt_in": src.get("Do Not Email") != "Yes",
                "occurred_at": now
                - timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 1440)),
                "custom": {
                    "total_visits": int(float(visits)) if visits.replace(".", "").isdigit() else 0,
                    "converted": int(src.get("Converted") or 0),
                    "lead_source": src.get("Lead Source", ""),
                    "last_activity": src.get("Last Activity", ""),
                },
            }
        )
    return rows


def seed(org, stdout) -> None:
    rng = random.Random(42)  # same demo every time
    campaigns = _campaigns(org)
    _forms(org, campaigns)
    if Lead.objects.exists():
        stdout.write("  leads: already seeded")
        return
    source_rows = _dataset_rows() or [_synthetic_row(i, rng) for i in range(DEMO_LEADS)]
    rows = _lead_rows(source_rows, rng)
    by_campaign: dict[int, list[dict]] = {}
    for src, row in zip(source_rows, rows, strict=True):
        by_campaign.setdefault(SOURCE_TO_CAMPAIGN.get(src.get("Lead Source"), 1), []).append(row)
    created = 0
    for index, batch in by_campaign.items():
        campaign = campaigns[index]
        touch = Touch(
            source=campaign.channel,
            campaign=campaign,
            activity_kind=ActivityKind.FORM_SUBMIT,
            activity_properties={"form": "Website sign-up"},
            consent_origin="demo import",
        )
        results = lead_ingest_batch(organization_id=org.pk, rows=batch, touch=touch)
        created += sum(r.outcome == "created" for r in results)
        _engagement(org, batch, results, rng)
    stdout.write(f"  leads: {created} new ({len(rows)} in the demo set), 5 campaigns, 2 forms")


SENIOR_TITLES = {"VP Marketing", "Head of Growth", "CTO", "Sales Director"}


def _buying_signals(org, lead_id: int, rng: random.Random) -> list:
    """Recent high-intent touches: a demo request, pricing visits, a download."""
    from leads.models import Activity

    now = timezone.now()
    touches = [
        (ActivityKind.DEMO_REQUEST, {"form": "Request a demo"}),
        (ActivityKind.PAGE_VIEW, {"url": "https://acmeanalytics.io/pricing"}),
        (ActivityKind.PAGE_VIEW, {"url": "https://acmeanalytics.io/pricing"}),
        (ActivityKind.CONTENT_DOWNLOAD, {"form": "Download: State of Lead Scoring 2026"}),
        (ActivityKind.WEBINAR, {"webinar": "Scoring that sales trusts"}),
    ]
    return [
        Activity(
            organization=org,
            lead_id=lead_id,
            kind=kind,
            occurred_at=now - timedelta(hours=rng.randint(1, 72)),
            properties=props,
        )
        for kind, props in touches
    ]


def _engagement(org, rows, results, rng: random.Random) -> None:
    """Later touches: page views (pricing for some) and the dataset's last activity."""
    from leads.models import Activity

    activities = []
    for row, result in zip(rows, results, strict=True):
        if result.outcome != "created" or not result.lead_id:
            continue
        start = row["occurred_at"]
        for n in range(min(row["custom"]["total_visits"], 8)):
            page = (
                "/pricing"
                if n == 0 and rng.random() < 0.3
                else rng.choice(["/", "/blog", "/features"])
            )
            activities.append(
                Activity(
                    organization=org,
                    lead_id=result.lead_id,
                    kind=ActivityKind.PAGE_VIEW,
                    occurred_at=start + timedelta(hours=n + 1),
                    properties={"url": f"https://acmeanalytics.io{page}"},
                )
            )
        if row["title"] in SENIOR_TITLES and rng.random() < 0.3:
            activities.extend(_buying_signals(org, result.lead_id, rng))
        kind = LAST_ACTIVITY_KIND.get(row["custom"]["last_activity"])
        if kind:
            activities.append(
                Activity(
                    organization=org,
                    lead_id=result.lead_id,
                    kind=kind,
                    occurred_at=start + timedelta(days=1),
                    properties={"source": "dataset last activity"},
                )
            )
    Activity.objects.bulk_create(activities, batch_size=500)
