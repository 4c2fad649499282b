"""Walk the URL conf: every view of ours, its route, and sample arguments.

Later apps register how to make a sample object for each URL parameter they
introduce in SAMPLE_OBJECTS (parameter name -> factory(org) -> pk).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Role
from tests import factories as f
from tests.factories import InvitationFactory, MembershipFactory

# Views we don't own: they guard themselves (Django admin: staff; allauth: its
# own rules; the JSON API: API keys, tested in the API tests).
EXEMPT_MODULE_PREFIXES = ("allauth.", "django.views.static")
EXEMPT_ROUTE_PREFIXES = ("admin/", "api/v1/")

ORG_PREFIX = "o/<slug:org_slug>/"
_numbers = itertools.count(1)


def _sample_membership(org) -> int:
    return MembershipFactory(organization=org, role=Role.MARKETER).pk


def _sample_deal_stage(org) -> int:
    from pipeline.models import DealStage

    return DealStage.objects.create(organization=org, name=f"Stage {next(_numbers)}").pk


def _sample_invitation(org) -> int:
    return InvitationFactory(organization=org).pk


def _scoring_sample(org, model: str, **fields) -> int:
    from django.apps import apps
    from django.db.models import Max
    from django_scopes import scopes_disabled

    model_class = apps.get_model("scoring", model)
    with scopes_disabled():
        if model == "RuleSetVersion":  # numbered per organization
            top = model_class.objects.filter(organization=org).aggregate(n=Max("number"))["n"]
            fields["number"] = (top or 0) + 1
        return model_class.objects.create(organization=org, **fields).pk


def _unmatched_reply(org) -> int:
    from django.utils import timezone
    from django_scopes import scopes_disabled

    from nurture.models import InboundMail, InboundStatus

    with scopes_disabled():
        count = InboundMail.objects.filter(organization=org).count()
        return InboundMail.objects.create(
            organization=org, message_id=f"<sample{count}@x.example>", from_email="a@x.example",
            received_at=timezone.now(), status=InboundStatus.UNMATCHED,
        ).pk  # fmt: skip


def _sample_notification(org) -> int:
    from pipeline.models import Notification

    recipient = MembershipFactory(organization=org, role=Role.SALES_REP)
    return Notification.objects.create(
        organization=org, recipient=recipient, kind="assigned", message="Sample"
    ).pk


def _sample_leads_pair(org, model: str, **fields) -> int:
    """A duplicate candidate or a merge: a row about two leads (lower id first)."""
    a, b = f.LeadFactory.create_batch(2, organization=org)
    one, other = ("lead_a", "lead_b") if model == "DuplicateCandidate" else ("kept", "dropped")
    return _leads_sample(org, model, **{one: a, other: b}, **fields)


def _leads_sample(org, model: str, **fields) -> int:
    from django.apps import apps
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return apps.get_model("leads", model).objects.create(organization=org, **fields).pk


SAMPLE_OBJECTS: dict[str, Callable] = {
    "membership_id": _sample_membership,
    "invitation_id": _sample_invitation,
    "lead_id": lambda org: f.LeadFactory(organization=org).pk,
    "other_lead_id": lambda org: f.LeadFactory(organization=org).pk,
    "company_id": lambda org: f.CompanyFactory(organization=org).pk,
    "campaign_id": lambda org: f.CampaignFactory(organization=org).pk,
    "form_id": lambda org: f.CaptureFormFactory(organization=org).pk,
    "field_id": lambda org: f.CaptureFormFieldFactory(form__organization=org).pk,
    "submission_id": lambda org: f.FormSubmissionFactory(form__organization=org).pk,
    "job_id": lambda org: f.ImportJobFactory(organization=org).pk,
    "export_id": lambda org: _leads_sample(org, "ExportJob", columns=["email"]),
    "apikey_id": lambda org: (
        __import__("accounts.models")
        .models.ApiKey.objects.create(
            organization=org, name="sample", prefix=f"s{org.pk}{id(org) % 10**6}", key_hash="x"
        )
        .pk
    ),
    "rule_id": lambda org: f.ScoringRuleFactory(organization=org).pk,
    "group_id": lambda org: f.ScoreGroupFactory(organization=org).pk,
    "gate_id": lambda org: f.GatingRuleFactory(organization=org).pk,
    "rescore_job_id": lambda org: f.RescoreJobFactory(organization=org).pk,
    "post_qual_id": lambda org: _scoring_sample(org, "PostQualificationField", field="custom.tags"),
    "version_id": lambda org: _scoring_sample(org, "RuleSetVersion", title="Sample"),
    "learning_job_id": lambda org: _scoring_sample(org, "LearningJob"),
    "list_id": lambda org: f.NurtureListFactory(organization=org).pk,
    "template_id": lambda org: f.EmailTemplateFactory(organization=org).pk,
    "sequence_id": lambda org: f.SequenceFactory(organization=org).pk,
    "step_id": lambda org: f.SequenceStepFactory(sequence__organization=org).pk,
    "enrollment_id": lambda org: f.EnrollmentFactory(sequence__organization=org).pk,
    "message_id": lambda org: f.EmailMessageFactory(enrollment__sequence__organization=org).pk,
    "team_id": lambda org: f.TeamFactory(organization=org).pk,
    "team_member_id": lambda org: f.TeamMemberFactory(team__organization=org).pk,
    "routing_rule_id": lambda org: f.RoutingRuleFactory(organization=org).pk,
    "opportunity_id": lambda org: f.OpportunityFactory(lead__organization=org).pk,
    "deal_stage_id": lambda org: _sample_deal_stage(org),
    "webhook_id": lambda org: f.WebhookEndpointFactory(organization=org).pk,
    "delivery_id": lambda org: f.WebhookDeliveryFactory(endpoint__organization=org).pk,
    "inbound_id": _unmatched_reply,
    "follow_up_id": lambda org: f.FollowUpFactory(lead__organization=org).pk,
    "notification_id": _sample_notification,
    "candidate_id": lambda org: _sample_leads_pair(org, "DuplicateCandidate", score=90),
    "merge_id": lambda org: _sample_leads_pair(org, "LeadMerge", kept_snapshot={"city": ""}),
}


SAMPLE_STRINGS: dict[str, str] = {"token": "bogus-token", "key": "bogus-inbound-key"}

# Parameters naming a member's own object (their notification): the walk's sample
# belongs to someone else, so it is a 404 for every role, like another tenant's
# (the recipient's 200 is proven in tests/pipeline/test_notification_pages.py).
PERSONAL_PARAMS = frozenset({"notification_id"})


@dataclass
class Route:
    route: str
    name: str
    callback: Callable

    @property
    def is_org(self) -> bool:
        return self.route.startswith(ORG_PREFIX)

    @property
    def params(self) -> list[str]:
        return [p for p in re.findall(r"<(?:\w+:)?(\w+)>", self.route) if p != "org_slug"]

    def path(self, org_slug: str | None, values: dict) -> str:
        def sub(match):
            name = match.group(1)
            return org_slug if name == "org_slug" else str(values[name])

        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", sub, self.route)


def _walk(patterns, prefix: str, namespace: str | None) -> Iterator[Route]:
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = p.namespace or namespace
            yield from _walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            module = getattr(p.callback, "__module__", "")
            if module.startswith(EXEMPT_MODULE_PREFIXES) or route.startswith(EXEMPT_ROUTE_PREFIXES):
                continue
            name = f"{namespace}:{p.name}" if namespace else (p.name or "")
            yield Route(route=route.lstrip("^"), name=name, callback=p.callback)


def our_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", None))


def org_routes() -> list[Route]:
    return [r for r in our_routes() if r.is_org]


def sample_values(route: Route, org) -> dict:
    values = {}
    for param in route.params:
        if param in SAMPLE_OBJECTS:
            values[param] = SAMPLE_OBJECTS[param](org)
        elif param in SAMPLE_STRINGS:
            values[param] = SAMPLE_STRINGS[param]
        else:
            raise AssertionError(f"No sample for URL parameter {param!r} of {route.route}")
    return values


def request(client, route: Route, path: str):
    """GET when the view allows it, else POST with an empty body."""
    response = client.get(path)
    if response.status_code == 405:
        response = client.post(path)
    return response
