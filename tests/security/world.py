"""A tenant whose every user-controlled text is an XSS payload.

`populate()` gives every model of the tenant apps at least one row; `poison()`
then writes a payload into every CharField / TextField / JSONField (string
leaves, plus an extra key in every object) of every row of the organization,
found by walking the models, so a field added later is poisoned without anyone
listing it. Values go in with QuerySet.update(), as if they had come through
any path (form, API, import, a future bug in a validator)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization, Role, User
from leadflow.core.tenancy import TenantModel
from tests import factories as f
from tests.security.xss import POLYGLOT, payload_for
from tests.urlwalk import SAMPLE_OBJECTS

TENANT_APPS = ("accounts", "leads", "scoring", "pipeline", "nurture", "reports", "privacy")

# Text fields a person can never put text into, each with the reason. Everything
# else (and every field added later) gets a payload.
NOT_USER_TEXT: dict[str, str] = {
    "accounts.User.password": "a password hash",
    "accounts.ApiKey.prefix": "generated with the key",
    "accounts.ApiKey.key_hash": "a hash",
    "accounts.Organization.timezone": "validated against the zone database",
    "nurture.Sequence.timezone": "validated against the zone database",
    "reports.RollupState.timezone": "copied from the organization",
    "leads.CaptureForm.key": "the generated public key of the form's URL",
    "leads.FormSubmission.ip_hash": "a hash",
    "leads.ConsentRecord.ip_hash": "a hash",
    "leads.ErasedPerson.email_hash": "a hash",
    "leads.ImportJob.encoding": "detected by the importer from a fixed list",
    "leads.ImportJob.delimiter": "detected by the importer from a fixed list",
    "leads.LeadMerge.moved": "ids of moved rows and what hooks changed, written by the service",
    "scoring.ScoringRule.field": "a lead field name from a fixed list",
    "scoring.GatingRule.field": "a lead field name from a fixed list",
    "scoring.ScoringRule.activity_kinds": "activity kinds (choices)",
    "scoring.ScoringSettings.grade_bands": "numbers",
    "scoring.ScoringSettings.temperature_bands": "numbers",
    "scoring.RuleChange.action": "a verb the service writes",
    "scoring.ScoreHistory.grade": "copied from Lead.grade (a choice)",
    "scoring.ScoreHistory.previous_grade": "copied from Lead.grade (a choice)",
    "scoring.ScoreHistory.band": "copied from Lead.band (a choice)",
    "scoring.ScoreHistory.previous_band": "copied from Lead.band (a choice)",
    "pipeline.StageTransition.rule": "the name of a transition rule in code",
    "pipeline.StageTransition.reason_code": "a code from a fixed list",
    "pipeline.PipelinePolicy.bant_required": "BANT letters (choices)",
    "pipeline.PipelinePolicy.sla_first_touch_minutes": "numbers per grade",
    "pipeline.PipelinePolicy.business_hours": "weekdays and times",
    "pipeline.PipelinePolicy.pql_rules": "structured rules validated on save",
    "pipeline.Notification.kind": "a kind the service writes",
    "pipeline.FollowUp.kind": "a task kind (choices, a check constraint)",
    "pipeline.WebhookEndpoint.secret": "generated",
    "pipeline.WebhookEndpoint.events": "event names (choices)",
    "pipeline.WebhookDelivery.event_type": "an event name the service writes",
    "nurture.EmailMessage.message_id": "generated",
    "nurture.EmailMessage.html": "composed by the sender: the walk checks composed emails",
    "nurture.EmailMessage.text": "composed by the sender: the walk checks composed emails",
    "nurture.EmailMessage.links": "composed by the sender: the walk checks composed emails",
    "nurture.Sequence.entry_triggers": "triggers (choices) validated on save",
    "nurture.Sequence.exit_on": "exit conditions (choices)",
    "nurture.Sequence.send_window": "weekdays and hours",
    "nurture.Enrollment.source": "a source the service writes",
    "nurture.Enrollment.exit_reason": "a reason code the service writes",
    "nurture.NurtureList.filter": "a structured filter validated on save",
    "nurture.DirectEmail.message_id": "generated",
    "nurture.DirectEmail.thread_token": "generated",
    "nurture.DirectEmail.html": "composed by the sender: the rep's text escaped whole",
    "nurture.InboundMailbox.key": "generated",
    "nurture.InboundMailbox.secret": "generated",
    "nurture.InboundMailbox.address_name": "generated",
    "reports.LeadCohortRollup.source": "copied from Lead.first_source (a choice)",
    "reports.MqlMonthRollup.source": "copied from Lead.mql_source (a choice)",
}


def label(model, name: str) -> str:
    return f"{model._meta.app_label}.{model.__name__}.{name}"


def tenant_models() -> list[type[models.Model]]:
    return [m for app in TENANT_APPS for m in apps.get_app_config(app).get_models()]


def hostile_fields(model) -> list[models.Field]:
    """The text fields of a model a person can fill in (see NOT_USER_TEXT)."""
    return [
        fld
        for fld in model._meta.concrete_fields
        if isinstance(fld, models.CharField | models.TextField | models.JSONField)
        and not fld.choices
        and not isinstance(fld, models.SlugField)  # URL parts, validated as slugs
        and label(model, fld.name) not in NOT_USER_TEXT
        and payload_for(getattr(fld, "max_length", None))
    ]


def _hostile_json(value, n: int):
    if isinstance(value, dict):
        out = {k: _hostile_json(v, n) for k, v in value.items()}
        out[payload_for(None)] = payload_for(None)  # free-form keys (custom attributes)
        return out
    if isinstance(value, list):
        return [_hostile_json(v, n) for v in value]
    if isinstance(value, str):
        return payload_for(None)
    return value


def hostile_value(fld: models.Field, current, pk: int, n: int):
    if isinstance(fld, models.JSONField):
        return _hostile_json(current, n)
    suffix = f" {pk}"  # unique constraints: one value per row
    length = getattr(fld, "max_length", None)
    text = payload_for(length - len(suffix) if length else None, n) + suffix
    if isinstance(fld, models.EmailField):
        return text.replace(" ", "") + "@x.example"
    return text


def _rows(model, org):
    if model is Organization:
        return model.objects.filter(pk=org.pk)
    if model is User:
        return model.objects.filter(memberships__organization=org).distinct()
    if issubclass(model, TenantModel) or any(
        fld.name == "organization" for fld in model._meta.concrete_fields
    ):
        return model._base_manager.filter(organization=org)
    raise AssertionError(f"{model.__name__}: no way to find the organization's rows")


@dataclass
class World:
    org: Organization
    members: dict[str, Membership]
    values: dict = field(default_factory=dict)  # URL parameter -> pk of a sample object
    tokens: dict = field(default_factory=dict)  # route name -> a valid token for it
    lead: object = None
    form: object = None
    message: object = None
    template: object = None
    poisoned: list[str] = field(default_factory=list)


def populate(org, members: dict[str, Membership]) -> World:
    """At least one row of every model of the tenant apps (call with scopes disabled)."""
    from leads.models import (
        Activity,
        ActivityKind,
        DuplicateCandidate,
        DuplicateKey,
        FieldType,
        LeadMerge,
    )
    from nurture.models import ListMembership, NurtureSettings, Suppression, Unsubscribe
    from pipeline.models import (
        FollowUp,
        Notification,
        NotificationPreference,
        PipelinePolicy,
        Qualification,
        StageTransition,
    )
    from reports.models import (
        DigestSend,
        DigestSubscription,
        LeadCohortRollup,
        MqlMonthRollup,
        RollupState,
    )
    from scoring.models import DriftNotice, RuleChange, ScoreHistory, ScoringSettings

    rep, now = members[Role.SALES_REP], timezone.now()
    world = World(org=org, members=members)
    world.values = {name: make(org) for name, make in SAMPLE_OBJECTS.items()}
    world.values["token"] = "bogus-token"
    company = f.CompanyFactory(organization=org, industry="Software")
    campaign = f.CampaignFactory(organization=org, utm_source="news", utm_medium="email")
    lead = f.LeadFactory(
        organization=org, company=company, first_campaign=campaign, latest_campaign=campaign,
        title="VP", company_name="Initech", city="Berlin", phone="+4930123456", stage="mql",
        custom={"team_size": "11-50", "notes": ["a", "b"]}, email_opt_in=True,
        corrections={"phone": {"from": "030 123456", "to": "+4930123456"}},
        quality_reasons=["free mail"], score_breakdown={"rules": [{"name": "VP", "points": 10}]},
    )  # fmt: skip
    world.lead = lead
    f.AssignmentFactory(lead=lead, membership=rep)
    for kind in (ActivityKind.NOTE, ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_CLICK):
        Activity.objects.create(
            organization=org, lead=lead, kind=kind, occurred_at=now, campaign=campaign,
            properties={"url": "https://example.com/p", "note": "Called", "title": "Pricing"},
        )  # fmt: skip
    form = f.CaptureFormFactory(
        organization=org, submit_label="Send", success_message="Thanks", consent_text="News?",
        redirect_url="https://example.com/thanks",
    )  # fmt: skip
    world.form = form
    for position, (key, kind, options) in enumerate(
        [("email", FieldType.EMAIL, []), ("size", FieldType.SELECT, ["1-10", "11+"]),
         ("message", FieldType.TEXTAREA, []), ("topic", FieldType.HIDDEN, []),
         ("agree", FieldType.CHECKBOX, [])]
    ):  # fmt: skip
        f.CaptureFormFieldFactory(
            form=form, key=key, field_type=kind, options=options, position=position,
            help_text="Help", default_value="", maps_to="email" if key == "email" else "custom",
        )  # fmt: skip
    f.FormSubmissionFactory(
        form=form, lead=lead, payload={"email": lead.email, "message": "Hi"},
        utm={"utm_source": "news"}, user_agent="Mozilla", referrer="https://example.com/",
        page_url="https://example.com/demo", outcome_reasons=["duplicate"],
    )  # fmt: skip
    f.ImportJobFactory(organization=org, header=["email", "name"], mapping={"email": "email"})
    dropped = f.LeadFactory(organization=org, merged_into=lead)
    LeadMerge.objects.create(
        organization=org, kept=lead, dropped=dropped, chosen={"title": "dropped"},
        dropped_snapshot={"email": dropped.email, "title": "CTO"},
        kept_snapshot={"email": lead.email, "title": "VP"},
    )  # fmt: skip
    twin = f.LeadFactory(organization=org, first_name="Twin", company_name="Initech")
    DuplicateKey.objects.create(organization=org, lead=lead, kind="phone", value=lead.phone)
    DuplicateCandidate.objects.create(
        organization=org, lead_a=lead, lead_b=twin, score=95, reasons=["Same phone"]
    )
    ScoringSettings.objects.get_or_create(organization=org)
    RuleChange.objects.create(organization=org, subject="VP rule", action="created",
                              changes={"points": [0, 10], "name": ["", "VP rule"]})  # fmt: skip
    DriftNotice.objects.create(organization=org, version_id=world.values["version_id"],
                               learned_auc=0.9, now_auc=0.7, leads=100)  # fmt: skip
    ScoreHistory.objects.create(
        organization=org, lead=lead, at=now, score=10, fit_score=10, engagement_score=0,
        grade="B", band="warm", mql_eligible=True,
    )  # fmt: skip
    StageTransition.objects.create(organization=org, lead=lead, to_stage="mql", occurred_at=now,
                                   reason="Crossed the threshold")  # fmt: skip
    Qualification.objects.create(organization=org, lead=lead, authority_role="CFO", need="CRM")
    PipelinePolicy.objects.get_or_create(organization=org)
    # The rep's own notice (its link poisoned too), so the walk as the rep opens it.
    world.values["notification_id"] = Notification.objects.create(
        organization=org, recipient=rep, lead=lead, kind="assigned", message="New lead for you",
        link=f"/o/{org.slug}/leads/{lead.pk}/",
    ).pk  # fmt: skip
    NotificationPreference.objects.create(organization=org, membership=rep,
                                          email={"assigned": "digest"})  # fmt: skip
    FollowUp.objects.create(organization=org, lead=lead, assignee=rep, title="Call back",
                            notes="Budget?", due_at=now - dt.timedelta(hours=1))  # fmt: skip
    enrollment = f.EnrollmentFactory(sequence__organization=org, lead=lead, source="manual")
    world.message = f.EmailMessageFactory(
        enrollment=enrollment, sent_at=now, links=["https://example.com/"]
    )
    world.tokens = _tokens(org, world.message, world.values["invitation_id"])
    _privacy_rows(org, world, lead, form, now)
    world.template = f.EmailTemplateFactory(organization=org)
    f.SequenceStepFactory(sequence=enrollment.sequence, template=world.template)
    ListMembership.objects.create(
        organization=org, list=f.NurtureListFactory(organization=org, description="Hot"),
        lead=lead, added_at=now, source="manual",
    )  # fmt: skip
    Suppression.objects.create(organization=org, email="bounce@x.example", reason="bounce",
                               detail="550 no such user")  # fmt: skip
    Unsubscribe.objects.create(organization=org, lead=lead, email=lead.email, occurred_at=now,
                               message=world.message, reason="Too many")  # fmt: skip
    NurtureSettings.objects.get_or_create(
        organization=org,
        defaults={"from_name": "Acme", "from_email": "news@acme.example",
                  "physical_address": "1 Main St"},
    )  # fmt: skip
    world.values["key"] = _one_to_one_mail(org, lead, rep, now)  # the inbound webhook's
    admin = members[Role.ADMIN]
    audit_record(organization=org, action="lead.merged", actor=admin, subject=lead,
                 data={"fields": {"title": "dropped"}})  # fmt: skip
    DigestSubscription.objects.create(organization=org, membership=admin, weekly=True)
    DigestSend.objects.create(organization=org, membership=admin, week_start=dt.date(2026, 1, 5))
    LeadCohortRollup.objects.create(organization=org, day=dt.date(2026, 1, 5), source="form")
    MqlMonthRollup.objects.create(organization=org, month=dt.date(2026, 1, 1), source="form")
    RollupState.objects.get_or_create(
        organization=org, defaults={"refreshed_at": now, "timezone": "UTC"}
    )
    # The sales rep works every lead, so the walk sees their pages as the rep too.
    world.values["lead_id"] = lead.pk
    world.values["form_key"] = form.key
    lead_model = type(lead)
    lead_model._base_manager.filter(organization=org).update(owner=rep)
    return world


def _privacy_rows(org, world: World, lead, form, now) -> None:
    from leads.models import ConsentConfirmation, ConsentRecord, ErasedPerson
    from leads.services.consent import confirmation_token, suppression_hash
    from privacy.models import PrivacySettings

    ConsentRecord.objects.create(
        organization=org, lead=lead, email=lead.email, action="given", text="News?",
        source="form", detail="form: Contact", ip_hash="0" * 64,
    )  # fmt: skip
    confirmation = ConsentConfirmation.objects.create(
        organization=org, lead=lead, email=lead.email, form=form, consent_text="News?",
        sent_at=now, send_error="",
    )  # fmt: skip
    world.tokens["leads:consent_confirm"] = confirmation_token(confirmation)
    ErasedPerson.objects.create(
        organization=org, email_hash=suppression_hash(organization_id=org.pk, email="x@y.io")
    )
    PrivacySettings.objects.create(organization=org, retention_days=365)


def _one_to_one_mail(org, lead, rep, now) -> str:
    """A rep's email, the lead's reply on the timeline, an unmatched reply and a refused call."""
    from leads.models import Activity, ActivityKind
    from nurture.models import DirectEmail, InboundMail, InboundRejection
    from nurture.services.direct import mailbox_get

    mailbox = mailbox_get(organization_id=org.pk)
    sent = DirectEmail.objects.create(
        organization=org, lead=lead, sender=rep, to_email=lead.email, from_name="Ann (Acme)",
        from_email="sales@x.example", reply_to="reply-x+t@x.example", subject_template="Hi",
        body_template="Hi", subject="Hi", text="Hi", html="<p>Hi</p>", message_id=f"<d{org.pk}@x>",
        thread_token=f"t{org.pk}", queued_at=now,
    )  # fmt: skip
    for kind in (ActivityKind.EMAIL_SENT, ActivityKind.EMAIL_REPLIED):
        Activity.objects.create(
            organization=org, lead=lead, kind=kind, occurred_at=now,
            properties={"thread": sent.thread_token, "subject": "Hi", "from": "Ann", "to": "g@x",
                        "excerpt": "Hello", "message_id": sent.message_id},
        )  # fmt: skip
    InboundMail.objects.create(
        organization=org, message_id=f"<r{org.pk}@x>", from_email="g@x.example", to="a@x.example",
        subject="Re: Hi", text="Yes", html="<p>Yes</p>", received_at=now, status="unmatched",
    )  # fmt: skip
    InboundRejection.objects.create(organization=org, reason="bad signature", received_at=now)
    return mailbox.key


def _tokens(org, message, invitation_id: int) -> dict[str, str]:
    from accounts.models import Invitation
    from accounts.services import invitation_token
    from nurture import tokens
    from nurture.models import NurtureSettings
    from nurture.services.sender import verification_token

    ids = {"organization_id": org.pk, "message_id": message.message_id}
    return {
        "accounts:invitation": invitation_token(Invitation.objects.get(pk=invitation_id)),
        "nurture_public:unsubscribe": tokens.make(tokens.UNSUBSCRIBE, **ids),
        "nurture_public:open": tokens.make(tokens.OPEN, **ids),
        "nurture_public:click": tokens.make(tokens.CLICK, **ids, link=0),
        "nurture_public:sender_verify": verification_token(
            NurtureSettings(organization_id=org.pk, from_email="news@acme.example")
        ),
    }


def contact_form(org):
    """A hosted form asking for an email and a first name (what a visitor types)."""
    from leads.models import FieldType

    form = f.CaptureFormFactory(organization=org, name="Contact us")
    for position, (key, kind) in enumerate([("email", FieldType.EMAIL), ("first_name", "text")]):
        f.CaptureFormFieldFactory(
            form=form, key=key, label=key, field_type=kind, maps_to=key, position=position
        )
    return form


def empty_models(org) -> list[str]:
    return [m.__name__ for m in tenant_models() if not _rows(m, org).exists()]


def poison(world: World) -> None:
    """A payload in every user-controlled text field of every row of the organization."""
    n = 0
    for model in tenant_models():
        fields = hostile_fields(model)
        if not fields:
            continue
        for row in _rows(model, world.org):
            changes = {}
            for fld in fields:
                changes[fld.attname] = hostile_value(fld, getattr(row, fld.attname), row.pk, n)
                n += 1
            model._base_manager.filter(pk=row.pk).update(**changes)
        world.poisoned += [label(model, fld.name) for fld in fields]
    for attr in ("lead", "form", "message", "template"):
        getattr(world, attr).refresh_from_db()
    assert POLYGLOT in world.lead.first_name
