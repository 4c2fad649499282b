import datetime as dt
import functools

import factory

from accounts.models import Invitation, Membership, Organization, Role, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ADMIN


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.MARKETER


# --- leads ------------------------------------------------------------------
from leads.models import (  # noqa: E402
    Activity,
    ActivityKind,
    Campaign,
    CaptureForm,
    CaptureFormField,
    Channel,
    Company,
    FormSubmission,
    ImportJob,
    Lead,
)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = Channel.PAID_SEARCH
    cost = 1000


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    domain = factory.Sequence(lambda n: f"company{n}.example")


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"lead{n}@prospect.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "DE"


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    organization = factory.SelfAttribute("lead.organization")
    lead = factory.SubFactory(LeadFactory)
    kind = ActivityKind.PAGE_VIEW
    occurred_at = factory.Faker("date_time_this_year", tzinfo=__import__("datetime").UTC)


class CaptureFormFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaptureForm

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Form {n}")
    min_fill_seconds = 0


class CaptureFormFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaptureFormField

    organization = factory.SelfAttribute("form.organization")
    form = factory.SubFactory(CaptureFormFactory)
    key = factory.Sequence(lambda n: f"field_{n}")
    label = factory.Sequence(lambda n: f"Field {n}")


class FormSubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormSubmission

    organization = factory.SelfAttribute("form.organization")
    form = factory.SubFactory(CaptureFormFactory)
    payload = factory.LazyFunction(lambda: {"email": "someone@prospect.example"})


class ImportJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportJob

    organization = factory.SubFactory(OrganizationFactory)
    original_name = "leads.csv"
    file = factory.django.FileField(filename="leads.csv", data=b"email\na@b.example\n")


# --- API keys -----------------------------------------------------------------


def api_key_for(organization, name: str = "Test integration", created_by=None) -> str:
    """A new API key of the organization; returns the full key (shown once in the UI)."""
    from accounts.apikeys import apikey_create

    return apikey_create(organization=organization, name=name, created_by=created_by)[1]


# --- scoring --------------------------------------------------------------------
from scoring.models import (  # noqa: E402
    GatingRule,
    RescoreJob,
    RuleKind,
    ScoreGroup,
    ScoringRule,
)


class ScoreGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScoreGroup

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class ScoringRuleFactory(factory.django.DjangoModelFactory):
    """A fit rule by default (title contains "vp"); pass kind/activity_kinds for engagement."""

    class Meta:
        model = ScoringRule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = RuleKind.FIT
    points = 10
    field = "title"
    operator = "contains"
    value = "vp"


class GatingRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GatingRule

    organization = factory.SubFactory(OrganizationFactory)
    reason = factory.Sequence(lambda n: f"Competitor {n}")
    field = "email_domain"
    operator = "eq"
    value = "competitor.example"


class RescoreJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RescoreJob

    organization = factory.SubFactory(OrganizationFactory)
    reason = "Rule updated"


# --- nurture --------------------------------------------------------------------
from django.utils import timezone as _tz  # noqa: E402

from nurture.models import (  # noqa: E402
    EmailMessage,
    EmailTemplate,
    Enrollment,
    NurtureList,
    Sequence,
    SequenceStep,
)


class NurtureListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NurtureList

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"List {n}")


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailTemplate

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "Hello {{ first_name }}"
    body_html = (
        '<p>Hi {{ first_name }}, read <a href="https://example.com/guide">our guide</a>.</p>'
    )
    body_text = "Hi {{ first_name }}, read our guide: https://example.com/guide"


class SequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sequence

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Sequence {n}")
    is_active = True


class SequenceStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SequenceStep

    organization = factory.SelfAttribute("sequence.organization")
    sequence = factory.SubFactory(SequenceFactory)
    position = factory.Sequence(lambda n: n + 1)
    template = factory.SubFactory(
        EmailTemplateFactory, organization=factory.SelfAttribute("..sequence.organization")
    )


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    organization = factory.SelfAttribute("sequence.organization")
    sequence = factory.SubFactory(SequenceFactory)
    lead = factory.SubFactory(
        LeadFactory,
        organization=factory.SelfAttribute("..sequence.organization"),
        email_opt_in=True,
    )
    enrolled_at = factory.LazyFunction(_tz.now)
    next_send_at = factory.LazyFunction(_tz.now)


class EmailMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailMessage

    organization = factory.SelfAttribute("enrollment.organization")
    enrollment = factory.SubFactory(EnrollmentFactory)
    lead = factory.SelfAttribute("enrollment.lead")
    to_email = factory.SelfAttribute("lead.email")
    from_email = "Acme <news@acme.example>"
    subject = "Hello"
    html = "<p>Hello</p>"
    text = "Hello"
    message_id = factory.Sequence(lambda n: f"<factory.{n}@leadflow.test>")
    queued_at = factory.LazyFunction(_tz.now)


@functools.cache
def _test_dkim_key():
    from nurture.dkim import generate_key

    # 1024 bits (the least dkimpy verifies) keeps the tests fast; production uses 2048.
    return generate_key(selector="lftest", bits=1024)


def verified_sender(org, **fields):
    """The organization's sender identity, ready to send (verified address,
    postal address, DKIM key): what every org that emails leads needs."""
    from nurture.models import NurtureSettings

    key = _test_dkim_key()
    values = {
        "from_name": "Acme News",
        "from_email": "news@acme.example",
        "from_email_verified_at": _tz.now(),
        "physical_address": "Acme GmbH, Hauptstraße 1, 10115 Berlin",
        "dkim_selector": key.selector,
        "dkim_public_key": key.public_key,
        "dkim_private_key": key.private_key,
        **fields,
    }
    from leadflow.core.tenancy import tenant_scope

    with tenant_scope(org):
        cfg, _ = NurtureSettings.objects.update_or_create(organization=org, defaults=values)
    return cfg


# --- pipeline -------------------------------------------------------------------
from pipeline.models import (  # noqa: E402
    Assignment,
    AssignmentMethod,
    Opportunity,
    RoutingRule,
    Team,
    TeamMember,
)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class TeamMemberFactory(factory.django.DjangoModelFactory):
    """A sales rep's seat in a team (the rep is created in the team's organization)."""

    class Meta:
        model = TeamMember

    organization = factory.SelfAttribute("team.organization")
    team = factory.SubFactory(TeamFactory)
    membership = factory.SubFactory(
        MembershipFactory,
        organization=factory.SelfAttribute("..team.organization"),
        role=Role.SALES_REP,
    )
    capacity = 50


class RoutingRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoutingRule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Routing rule {n}")
    priority = factory.Sequence(lambda n: n)
    conditions = factory.LazyFunction(
        lambda: [{"field": "country", "operator": "eq", "value": "DE"}]
    )
    target_team = factory.SubFactory(
        TeamFactory, organization=factory.SelfAttribute("..organization")
    )


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    organization = factory.SelfAttribute("lead.organization")
    lead = factory.SubFactory(LeadFactory, stage="opportunity")
    name = factory.Sequence(lambda n: f"Deal {n}")
    amount = 12000
    currency = "USD"


class AssignmentFactory(factory.django.DjangoModelFactory):
    """The current assignment of an MQL to a sales rep (lead.owner kept in sync)."""

    class Meta:
        model = Assignment
        skip_postgeneration_save = True

    organization = factory.SelfAttribute("lead.organization")
    lead = factory.SubFactory(LeadFactory, stage="mql")
    membership = factory.SubFactory(
        MembershipFactory,
        organization=factory.SelfAttribute("..lead.organization"),
        role=Role.SALES_REP,
    )
    method = AssignmentMethod.MANUAL
    reason = "Assigned by hand"

    @factory.post_generation
    def _sync_owner(obj, create, extracted, **kwargs):
        if create and obj.is_current:
            # save() goes through the base manager: works with or without a scope.
            obj.lead.owner, obj.lead.assigned_at = obj.membership, obj.assigned_at
            obj.lead.save(update_fields=["owner", "assigned_at"])


# --- pipeline webhooks ------------------------------------------------------------
from pipeline.models import WebhookDelivery, WebhookEndpoint  # noqa: E402


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = factory.Sequence(lambda n: f"https://crm.example.com/hooks/{n}")
    secret = factory.Sequence(lambda n: f"whsec_test_secret_{n}")
    events = factory.LazyFunction(lambda: ["all"])


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    organization = factory.SelfAttribute("endpoint.organization")
    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event_id = factory.Faker("uuid4", cast_to=None)
    event_type = "webhook.test"
    payload = factory.LazyFunction(lambda: {"type": "webhook.test", "data": {}})


class FollowUpFactory(factory.django.DjangoModelFactory):
    """A rep's task due tomorrow, on a lead (pass opportunity=… and lead=None for a deal)."""

    class Meta:
        model = "pipeline.FollowUp"

    lead = factory.SubFactory(LeadFactory)
    opportunity = None
    organization = factory.LazyAttribute(lambda o: (o.lead or o.opportunity).organization)
    assignee = factory.SubFactory(
        MembershipFactory,
        organization=factory.SelfAttribute("..organization"),
        role=Role.SALES_REP,
    )
    kind = "call"
    title = factory.Sequence(lambda n: f"Follow up {n}")
    due_at = factory.LazyFunction(lambda: _tz.now() + dt.timedelta(days=1))
