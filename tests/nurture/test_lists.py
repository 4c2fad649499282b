"""Lists: static add/remove, dynamic set-based refresh, triggers and hooks."""

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, LeadStage
from nurture import services
from nurture.models import Enrollment, ListMembership, NurtureList
from nurture.services.hooks import after_mql_crossing, after_stage_change
from tests.factories import NurtureListFactory

pytestmark = pytest.mark.django_db


def test_static_list_add_remove_revive_and_counts(org, other_org, admin, make_leads, make_sequence):
    a, b, c = make_leads(org, 3)
    (foreign,) = make_leads(other_org, 1)
    with tenant_scope(org):
        nurture_list = services.list_save(data={"name": "Webinar"}, actor=admin)
        sequence = make_sequence(
            org, entry_triggers=[{"type": "joins_list", "list_id": nurture_list.pk}]
        )
        added = services.list_add_leads(
            nurture_list=nurture_list, lead_ids=[a.pk, b.pk, c.pk, foreign.pk]
        )
        assert added == 3 and nurture_list.member_count == 3  # the foreign lead is not found
        assert services.list_add_leads(nurture_list=nurture_list, lead_ids=[a.pk]) == 0
        assert services.list_remove_leads(nurture_list=nurture_list, lead_ids=[a.pk, b.pk]) == 2
        assert nurture_list.member_count == 1
        assert services.list_add_leads(nurture_list=nurture_list, lead_ids=[a.pk]) == 1  # revived
        assert ListMembership.objects.count() == 3  # rows kept, never duplicated
        # Joining enrolled them once: the trigger never enrolls a lead twice.
        assert Enrollment.objects.filter(sequence=sequence).count() == 3
        with pytest.raises(services.ListInvalid, match="already a list"):
            services.list_save(data={"name": "webinar"}, actor=admin)
    with tenant_scope(other_org):
        assert not ListMembership.objects.exists()


def test_dynamic_list_refreshes_in_sets(org, other_org, admin, make_leads):
    hot = make_leads(org, 2, country="FR")
    (cold,) = make_leads(org, 1, country="DE")
    make_leads(other_org, 2, country="FR")
    with tenant_scope(org):
        Lead.objects.filter(pk__in=[x.pk for x in hot]).update(score=80, band="hot")
        nurture_list = services.list_save(
            data={
                "name": "Hot France",
                "kind": "dynamic",
                "filter": {"country": "FR", "min_score": 50},
            },
            actor=admin,
        )
        assert nurture_list.member_count == 2
        Lead.objects.filter(pk=hot[0].pk).update(score=10)
        Lead.objects.filter(pk=cold.pk).update(country="FR", score=90)
        # Limited to changed leads: only those are re-evaluated.
        assert services.list_refresh(nurture_list=nurture_list, lead_ids=[cold.pk]) == 1
        nurture_list.refresh_from_db()
        assert nurture_list.member_count == 3
        services.list_refresh(nurture_list=nurture_list)
        live = set(
            ListMembership.objects.filter(removed_at__isnull=True).values_list("lead_id", flat=True)
        )
        assert live == {hot[1].pk, cold.pk}
        with pytest.raises(services.ListInvalid, match="min_score"):
            services.list_save(
                data={"name": "Bad", "kind": "dynamic", "filter": {"min_score": "lots"}},
                actor=admin,
            )
        with pytest.raises(services.ListInvalid, match="Unknown filter keys"):
            services.list_save(
                data={"name": "Bad", "kind": "dynamic", "filter": {"password": "x"}}, actor=admin
            )
        assert not NurtureList.objects.filter(name="Bad").exists()
    with tenant_scope(other_org):
        assert not NurtureList.objects.exists()


def test_stage_hooks_recycle_into_community_and_exit_on_conversion(
    org, other_org, make_leads, make_sequence
):
    recycled, converting = make_leads(org, 2)
    with tenant_scope(org):
        recycle_sequence = make_sequence(org, entry_triggers=[{"type": "recycled"}])
        mql_sequence = make_sequence(org, exit_on=["mql"])
        keeps_going = make_sequence(org, exit_on=[])
        for sequence in (mql_sequence, keeps_going):
            services.enrollment_start(sequence=sequence, lead_ids=[converting.pk])
        after_stage_change(org.pk, [recycled.pk], LeadStage.LOST, LeadStage.RECYCLED)
        community = NurtureList.objects.get(is_default_community=True)
        assert community.member_count == 1
        assert Enrollment.objects.get(sequence=recycle_sequence).lead_id == recycled.pk
        after_stage_change(org.pk, [converting.pk], LeadStage.MQL, LeadStage.SQL)
        statuses = dict(
            Enrollment.objects.filter(lead=converting).values_list("sequence_id", "status")
        )
        assert statuses == {mql_sequence.pk: "exited", keeps_going.pk: "active"}
        after_mql_crossing(org.pk, [converting.pk], [])  # idempotent
    with tenant_scope(other_org):
        assert not NurtureList.objects.exists()


def test_list_factory_belongs_to_its_org(org, other_org):
    with tenant_scope(org):
        NurtureListFactory(organization=org)
    with tenant_scope(other_org):
        assert not NurtureList.objects.exists()


def test_a_lead_created_by_a_form_enters_the_form_triggered_sequence(org, other_org, make_sequence):
    from leads.models import ActivityKind
    from leads.services.ingest import Touch, lead_ingest_batch
    from tests.factories import CaptureFormFactory

    with tenant_scope(org):
        form, other_form = CaptureFormFactory.create_batch(2, organization=org)
        sequence = make_sequence(org, entry_triggers=[{"type": "form", "form_id": form.pk}])
        rows = [{"email": "ada@initech.com", "email_opt_in": True}]
        for used in (other_form, form):
            touch = Touch(
                activity_kind=ActivityKind.FORM_SUBMIT, activity_properties={"form_id": used.pk}
            )
            lead_ingest_batch(organization_id=org.pk, rows=rows, touch=touch)
            if used is other_form:
                assert not Enrollment.objects.exists()
        (enrollment,) = Enrollment.objects.all()
        assert (enrollment.sequence_id, enrollment.source) == (sequence.pk, "form")
    with tenant_scope(other_org):
        assert not Enrollment.objects.exists()
