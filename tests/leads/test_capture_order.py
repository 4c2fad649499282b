"""Capture order: every activity of a hosted-form submission (the form submit,
the page view, the UTM touch) is written before the lead is scored and routed,
in one transaction — so a page-view rule counts at capture, not only after
"Rescore now"."""

from unittest import mock

import pytest

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, FormSubmission, Lead
from scoring import engine
from scoring.models import RuleKind, ScoreHistory, ScoringRule, ScoringSettings
from tests.factories import (
    CaptureFormFactory,
    CaptureFormFieldFactory,
    RoutingRuleFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db


def _rules(org, form_points: int, view_points: int) -> None:
    with tenant_scope(org):
        ScoringSettings.objects.update_or_create(
            organization=org, defaults={"half_life_days": None, "mql_threshold": 100}
        )
        ScoringRule.objects.all().delete()
        ScoringRule.objects.create(
            organization=org, name="Demo form", kind=RuleKind.ENGAGEMENT, points=form_points,
            activity_kinds=[ActivityKind.DEMO_REQUEST],
        )  # fmt: skip
        ScoringRule.objects.create(
            organization=org, name="Page view", kind=RuleKind.ENGAGEMENT, points=view_points,
            activity_kinds=[ActivityKind.PAGE_VIEW],
        )  # fmt: skip


@pytest.fixture
def form(org, other_org):
    _rules(org, 90, 21)
    _rules(other_org, 1, 1)  # org B's rules must not score org A's lead
    form = CaptureFormFactory(organization=org, activity_kind=ActivityKind.DEMO_REQUEST)
    CaptureFormFieldFactory(form=form, key="email", label="Email", maps_to="email")
    # Every MQL is routed to one team (an always-true condition).
    member = TeamMemberFactory(team__organization=org)
    RoutingRuleFactory(
        organization=org,
        target_team=member.team,
        conditions=[{"field": "email", "operator": "not_empty", "value": ""}],
    )
    return form


def _submit(client, form, callbacks, **data):
    with callbacks(execute=True):
        response = client.post(
            f"/f/{form.key}/?utm_source=google&utm_medium=cpc",
            {"email": "zoe@initech.com", **data},
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "data",
    [{"page_url": "https://initech.com/pricing"}, {}],  # the UTM touch alone is a visit too
    ids=["page-url", "utm-only"],
)
def test_page_view_rule_counts_at_capture_and_routes(
    client, org, form, django_capture_on_commit_callbacks, data
):
    _submit(client, form, django_capture_on_commit_callbacks, **data)
    with tenant_scope(org):
        lead = Lead.objects.get()
        kinds = sorted(Activity.objects.filter(lead=lead).values_list("kind", flat=True))
        history = list(ScoreHistory.objects.filter(lead=lead).values_list("score", flat=True))
        assert kinds == [ActivityKind.DEMO_REQUEST, ActivityKind.PAGE_VIEW]
        # Scored once, with the page view: 90 + 21 crosses the threshold of 100.
        assert lead.score == 111 and history == [111]
        assert lead.stage == "mql" and lead.owner_id is not None
        # "Rescore now" finds nothing to add.
        engine.rescore(organization_id=org.pk)
        assert Lead.objects.get(pk=lead.pk).score == 111


def test_capture_is_one_transaction(client, org, form, django_capture_on_commit_callbacks):
    """A hook that fails after scoring leaves no lead and no activity behind:
    the submission stays unprocessed for the sweep to retry."""
    boom = RuntimeError("routing failed")
    with (
        mock.patch.object(hooks.post_ingest, "call", side_effect=boom),
        pytest.raises(RuntimeError),
    ):
        _submit(client, form, django_capture_on_commit_callbacks)
    with tenant_scope(org):
        assert not Lead.objects.exists() and not Activity.objects.exists()
        assert FormSubmission.objects.get().processed_at is None
