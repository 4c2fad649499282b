"""seed_demo step: a community list, two templates, an active three-step
sequence with demo enrollments, and a few emails sent through the real send
path (in the quick start they land in var/mail, and in the outbox page).

Idempotent: objects are keyed by name; leads already enrolled are not again."""

from __future__ import annotations

from django.utils import timezone

from nurture.models import EmailMessage, EmailTemplate, MessageStatus, NurtureSettings, Sequence
from nurture.services import (
    community_list,
    dispatch_due,
    enrollment_start,
    list_add_leads,
    message_send,
    sendable_leads,
    sequence_save,
    step_save,
    template_save,
)
from nurture.services.sender import dkim_key_ensure

DEMO_ENROLLMENTS = 12
DEMO_SENDS = 4
TEMPLATES = [
    (
        "Welcome to the community",
        '{{ first_name|default:"Hello" }}, welcome to the {{ org_name }} community',
        '<p>Hi {{ first_name|default:"there" }},</p>'
        "<p>Thanks for your interest in {{ org_name }}. Each month we share what teams like "
        '{{ company|default:"yours" }} learn about analytics.</p>'
        '<p><a href="https://example.com/guides/getting-started">Read the getting-started '
        'guide</a></p><p>{{ owner_name|default:"The team" }}</p>',
    ),
    (
        "Case study follow-up",
        'How a team like {{ company|default:"yours" }} cut reporting time in half',
        '<p>Hi {{ first_name|default:"there" }},</p>'
        "<p>Here is how a customer of {{ org_name }} automated their weekly reports.</p>"
        '<p><a href="https://example.com/customers/case-study">Read the case study</a> or '
        '<a href="https://example.com/demo">book a 20-minute demo</a>.</p>',
    ),
]


def seed(org, stdout) -> None:
    NurtureSettings.objects.get_or_create(
        organization=org,
        defaults={
            "from_name": "Acme Analytics",
            "from_email": "news@acme.example",
            "reply_to": "hello@acme.example",
            # The demo's address is taken as confirmed (its mail goes to var/mail/).
            "from_email_verified_at": timezone.now(),
            "physical_address": "Acme Analytics GmbH, Friedrichstraße 1, 10117 Berlin",
        },
    )
    dkim_key_ensure(organization_id=org.pk)
    community = community_list(organization_id=org.pk)
    templates = []
    for name, subject, body in TEMPLATES:
        existing = EmailTemplate.objects.filter(name=name).first()
        templates.append(
            existing
            or template_save(
                data={"name": name, "subject": subject, "body_html": body},
                organization_id=org.pk,
            )
        )
    sequence = Sequence.objects.filter(name="Community nurture").first()
    if sequence is None:
        sequence = sequence_save(
            data={
                "name": "Community nurture",
                "is_active": True,
                "entry_triggers": [
                    {"type": "joins_list", "list_id": community.pk},
                    {"type": "recycled"},
                ],
                "exit_on": ["mql", "sql", "unsubscribed", "bounced"],
            },
            organization_id=org.pk,
        )
        for template, days in ((templates[0], 0), (templates[1], 3), (templates[0], 10)):
            step_save(sequence=sequence, template=template, delay_days=days)
    lead_ids = list(
        sendable_leads()
        .filter(mql_eligible=False)
        .order_by("pk")
        .values_list("pk", flat=True)[:DEMO_ENROLLMENTS]
    )
    # Joining the community list enrolls them (the sequence's trigger).
    list_add_leads(nurture_list=community, lead_ids=lead_ids, source="action")
    enrollment_start(sequence=sequence, lead_ids=lead_ids, source="demo")
    dispatch_due(organization_id=org.pk, limit=DEMO_SENDS, requeue=False)
    queued = EmailMessage.objects.filter(status=MessageStatus.QUEUED).values_list("pk", flat=True)
    sent = sum(message_send(message_id=pk) == "sent" for pk in list(queued[:DEMO_SENDS]))
    stdout.write(
        f"  nurture: community list ({community.member_count} members), "
        f"{len(templates)} templates, sequence '{sequence.name}', {sent} emails sent"
    )
