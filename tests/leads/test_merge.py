"""Merging two leads: the chosen survivor and fields (email included), a
confirmation step, the most advanced stage, owner and queue assignment kept,
a rescore, undo from snapshots within the window, the audit log, tenancy."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_events
from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import (
    Activity,
    ActivityKind,
    CandidateStatus,
    Channel,
    DuplicateCandidate,
    FormSubmission,
    Lead,
    LeadMerge,
)
from leads.services import duplicates as dup
from leads.services import leads as lead_services
from leads.services.ingest import Touch, lead_ingest_batch
from pipeline.selectors import rep_queue
from tests.factories import (
    ActivityFactory,
    AssignmentFactory,
    FormSubmissionFactory,
    LeadFactory,
    ScoringRuleFactory,
)


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


def merge_url(org, a, b):
    return url("lead_merge", org, lead_id=a.pk, other_lead_id=b.pk)


def fresh(org, *objs):
    with tenant_scope(org):
        for obj in objs:
            obj.refresh_from_db()
    return objs


def in_queue(org, lead, rep):
    """The lead as an MQL routed to the rep."""
    with tenant_scope(org):
        Lead.objects.filter(pk=lead.pk).update(stage="mql", owner=rep)
    return AssignmentFactory(lead=lead, membership=rep)


@pytest.fixture
def zoes(org, other_org):
    LeadFactory(organization=other_org, email="zoe@a.example")  # same address, other tenant
    a = LeadFactory(
        organization=org,
        email="zoe@a.example",
        first_name="Zoe",
        last_name="Park",
        title="",
        city="Berlin",
        phone="+4930123456",
        custom={"a": 1},
    )
    b = LeadFactory(
        organization=org,
        email="zoe@b.example",
        first_name="Zoe",
        last_name="Park",
        title="VP Sales",
        city="Munich",
        phone="+4930123456",
        custom={"b": 2},
        do_not_call=True,
    )
    ActivityFactory.create_batch(2, lead=a)
    ActivityFactory.create_batch(3, lead=b)
    FormSubmissionFactory(form__organization=org, lead=b)
    with tenant_scope(org):
        dup.duplicates_refresh(organization_id=org.pk, lead_ids=[a.pk, b.pk])
    return a, b


@pytest.mark.django_db
def test_merge_asks_for_confirmation_first_and_says_what_will_happen(admin_client, org, zoes):
    a, b = zoes
    page = admin_client.get(merge_url(org, a, b))
    html = page.content.decode()
    assert "VP Sales" in html and "Munich" in html and "zoe@b.example" in html
    review = admin_client.post(merge_url(org, a, b), {"survivor": "a", "email": "b", "title": "b"})
    html = review.content.decode()
    assert review.status_code == 200 and "Confirm the merge" in html
    assert "Zoe Park &lt;zoe@b.example&gt;</strong> will be merged into" in html
    assert "email will be <strong>zoe@b.example</strong>" in html
    assert "3 activities and 1 submission move" in html
    with tenant_scope(org):
        assert not LeadMerge.objects.exists()  # nothing happened yet


@pytest.mark.django_db
def test_merge_with_chosen_survivor_fields_and_email(admin_client, admin, org, zoes):
    a, b = zoes
    response = admin_client.post(
        merge_url(org, a, b),
        {"survivor": "a", "email": "b", "title": "b", "city": "a", "confirm": "1"},
    )
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(
        "Merged Zoe Park <zoe@b.example> into Zoe Park <zoe@a.example>"
        " (its email is now zoe@b.example)."
    )
    keep, drop = fresh(org, a, b)
    assert (keep.email, keep.title, keep.city, keep.do_not_call) == (
        "zoe@b.example",
        "VP Sales",
        "Berlin",
        True,
    )
    assert keep.custom == {"a": 1, "b": 2}
    assert drop.merged_into == keep and drop.email == "zoe@a.example"
    with tenant_scope(org):
        assert Activity.objects.filter(lead=keep).count() == 5
        assert FormSubmission.objects.filter(lead=keep).count() == 1
        merge = LeadMerge.objects.get()
        candidate = DuplicateCandidate.objects.get()
        # New data for the old address reaches the surviving lead.
        [result] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "zoe@a.example"}],
            touch=Touch(source=Channel.EMAIL, activity_kind=ActivityKind.EMAIL_CLICK),
        )
        [event] = audit_events(organization=org)
    assert result.lead_id == keep.pk
    assert candidate.status == CandidateStatus.MERGED
    assert merge.merged_by == admin.user and merge.dropped_snapshot["title"] == "VP Sales"
    assert event.action == "lead.merged" and event.subject_id == keep.pk
    assert event.subject == "Zoe Park <zoe@b.example> into Zoe Park <zoe@a.example>"


@pytest.mark.django_db
def test_the_other_record_can_survive(admin_client, org, zoes):
    a, b = zoes
    admin_client.post(merge_url(org, a, b), {"survivor": "b", "confirm": "1"})
    a, b = fresh(org, a, b)
    assert a.merged_into == b and b.merged_into is None
    assert (b.email, b.title) == ("zoe@b.example", "VP Sales")


@pytest.mark.django_db
def test_merge_keeps_the_most_advanced_stage_the_owner_and_the_queue(
    admin_client, org, zoes, sales_rep
):
    a, b = zoes
    assignment = in_queue(org, b, sales_rep)
    with tenant_scope(org):
        assert list(rep_queue(membership=sales_rep)) == [b]
    admin_client.post(merge_url(org, a, b), {"survivor": "a", "confirm": "1"})
    keep, _ = fresh(org, a, b)
    assert keep.stage == "mql" and keep.owner == sales_rep
    with tenant_scope(org):
        assignment.refresh_from_db()
        assert assignment.lead == keep and assignment.is_current
        assert list(rep_queue(membership=sales_rep)) == [keep]
        assert keep.transitions.filter(reason_code="merged", to_stage="mql").exists()


@pytest.mark.django_db
def test_merge_rescores_the_surviving_lead(admin_client, org, zoes):
    a, b = zoes
    ScoringRuleFactory(organization=org, field="title", operator="contains", value="vp", points=10)
    admin_client.post(merge_url(org, a, b), {"survivor": "a", "title": "b", "confirm": "1"})
    (keep,) = fresh(org, a)
    assert keep.title == "VP Sales" and keep.score == 10 and keep.scored_at is not None


@pytest.mark.django_db
def test_undo_restores_both_leads_their_history_stage_and_queue(
    admin_client, admin, org, zoes, sales_rep
):
    a, b = zoes
    assignment = in_queue(org, b, sales_rep)
    before_a, before_b = (lead_services.lead_snapshot(x) for x in fresh(org, a, b))
    admin_client.post(
        merge_url(org, a, b), {"survivor": "a", "email": "b", "title": "b", "confirm": "1"}
    )
    with tenant_scope(org):
        merge = LeadMerge.objects.get()
    listing = admin_client.get(url("merge_list", org)).content.decode()
    assert 'data-testid="undo-merge"' in listing
    response = admin_client.post(url("lead_merge_undo", org, merge_id=merge.pk))
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == "Merge undone: Zoe Park <zoe@b.example> is its own lead again."
    a, b = fresh(org, a, b)
    skip = {"updated_at", "score", "scored_at", "score_breakdown", "grade", "band"}
    after_a, after_b = lead_services.lead_snapshot(a), lead_services.lead_snapshot(b)
    assert {k: v for k, v in after_a.items() if k not in skip} == {
        k: v for k, v in before_a.items() if k not in skip
    }
    assert {k: v for k, v in after_b.items() if k not in skip} == {
        k: v for k, v in before_b.items() if k not in skip
    }
    with tenant_scope(org):
        assert Activity.objects.filter(lead=a).count() == 2
        assert Activity.objects.filter(lead=b).count() == 3
        assert FormSubmission.objects.filter(lead=b).count() == 1
        assignment.refresh_from_db()
        assert assignment.lead_id == b.pk and assignment.is_current
        assert list(rep_queue(membership=sales_rep)) == [b]
        merge.refresh_from_db()
        actions = [e.action for e in audit_events(organization=org).order_by("pk")]
        candidate = DuplicateCandidate.objects.get()
    assert merge.undone_at and merge.undone_by == admin.user
    assert actions == ["lead.merged", "lead.merge_undone"]
    assert candidate.status == CandidateStatus.OPEN  # back on the duplicates page
    assert "Undone" in admin_client.get(url("merge_list", org)).content.decode()
    again = admin_client.post(url("lead_merge_undo", org, merge_id=merge.pk))
    assert [str(m) for m in get_messages(again.wsgi_request)] == ["This merge was already undone."]


@pytest.mark.django_db
def test_undo_after_the_window_is_refused_with_the_reason(admin_client, org, zoes, settings):
    settings.LEAD_MERGE_UNDO_HOURS = 24
    a, b = zoes
    admin_client.post(merge_url(org, a, b), {"survivor": "a", "confirm": "1"})
    with tenant_scope(org):
        LeadMerge.objects.update(merged_at=timezone.now() - timedelta(hours=25))
        merge = LeadMerge.objects.get()
    assert "Final" in admin_client.get(url("merge_list", org)).content.decode()
    response = admin_client.post(url("lead_merge_undo", org, merge_id=merge.pk))
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("This merge can no longer be undone: undo is possible for 24 hours")
    _, b = fresh(org, a, b)
    assert b.merged_into_id == a.pk


@pytest.mark.django_db
def test_merges_and_undos_of_another_tenant_are_404(
    admin_client, org, other_org, make_member, client_for
):
    mine = LeadFactory(organization=org)
    theirs = LeadFactory(organization=other_org)
    response = admin_client.post(merge_url(org, mine, theirs), {"survivor": "a", "confirm": "1"})
    assert response.status_code == 404
    other_admin = make_member(other_org, Role.ADMIN)
    x, y = LeadFactory.create_batch(2, organization=other_org)
    client_for(other_admin).post(merge_url(other_org, x, y), {"survivor": "a", "confirm": "1"})
    with tenant_scope(other_org):
        their_merge = LeadMerge.objects.get()
    response = admin_client.post(url("lead_merge_undo", org, merge_id=their_merge.pk))
    assert response.status_code == 404
    with tenant_scope(other_org):
        their_merge.refresh_from_db()
    assert their_merge.undone_at is None
    (theirs,) = fresh(other_org, theirs)
    assert theirs.merged_into is None


@pytest.mark.django_db
def test_the_service_refuses_leads_of_two_organizations(admin, org, other_org):
    mine = LeadFactory(organization=org)
    theirs = LeadFactory(organization=other_org)
    with pytest.raises(lead_services.LeadError):
        lead_services.lead_merge(keep=mine, drop=theirs, chosen={}, actor=admin)


@pytest.mark.django_db
def test_sales_reps_cannot_merge(client_for, org, sales_rep, zoes):
    a, b = zoes
    response = client_for(sales_rep).post(merge_url(org, a, b), {"survivor": "a", "confirm": "1"})
    assert response.status_code == 403
    (b,) = fresh(org, b)
    assert b.merged_into is None
