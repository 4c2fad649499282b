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
