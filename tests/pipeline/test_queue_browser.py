"""The rep's journey in a real browser: a routed MQL is waiting in "My leads";
the rep accepts it, logs a call, fills in BANT, converts it to an opportunity
and marks it won — all without leaving the queue (htmx row swaps)."""

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import Opportunity
from tests.browser.playwright import login
from tests.factories import PASSWORD, LeadFactory, OrganizationFactory, TeamFactory
from tests.factories import TeamMemberFactory as SeatFactory
from tests.pipeline.support import pipeline_only

__all__ = ["pipeline_only"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rep_works_a_routed_lead_to_won(page, shot, org, sales_rep):
    other = OrganizationFactory(name="Globex", slug="globex-b")
    now = timezone.now()
    with tenant_scope(org):
        team = TeamFactory(organization=org, name="EMEA SMB", is_default=True)
        SeatFactory(team=team, membership=sales_rep, capacity=25)
        lead = LeadFactory(
            organization=org, first_name="Mara", last_name="Okafor", title="VP Revenue",
            company_name="Northwind GmbH", country="DE", score=86, grade="A", band="hot",
            scored_at=now,
        )  # fmt: skip
        LeadFactory(organization=org, first_name="Quiet", score=12, band="cold", scored_at=now)
        services.leads_mark_mql(organization_id=org.pk, lead_ids=[lead.pk], source="score")
    with tenant_scope(other):
        LeadFactory(organization=other, first_name="Foreign")

    login(page, sales_rep.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/pipeline/")
    row = page.locator(f"#lead-row-{lead.pk}")
    row.wait_for()
    assert "Mara Okafor" in row.inner_text() and "due in" in row.inner_text()
    assert page.locator("[data-testid=queue-row]").count() == 1  # not the cold or foreign lead
    shot(page, "pipeline-queue")

    row.locator("[data-action=accept]").click()
    page.wait_for_selector(f"#lead-row-{lead.pk} [data-action=qualify]")
    assert "Accepted" in page.inner_text(f"#lead-row-{lead.pk}")

    row.locator("[data-action=touch]").click()
    page.select_option(f"#lead-row-{lead.pk} #id_kind", "call")
    page.fill(f"#lead-row-{lead.pk} #id_note", "Discovery call: 40 reps, losing leads")
    page.click(f"#lead-row-{lead.pk} button[type=submit]")
    page.wait_for_selector(f"#lead-row-{lead.pk} >> text=Call logged.")

    row.locator("[data-action=qualify]").click()
    form = page.locator(f"#lead-row-{lead.pk} [data-testid=action-form]")
    form.wait_for()
    form.locator("#id_budget_amount").fill("30000")
    form.locator("#id_authority_role").fill("VP Revenue, signs off")
    form.locator("#id_decision_maker").select_option("true")
    shot(page, "pipeline-queue-bant")
    form.locator("button[value=qualify]").click()  # need and timing still missing
    page.wait_for_selector(f"#lead-row-{lead.pk} [data-testid=action-error]")
    assert "Need" in page.inner_text(f"#lead-row-{lead.pk} [data-testid=action-error]")
    form = page.locator(f"#lead-row-{lead.pk} [data-testid=action-form]")
    form.locator("#id_need").fill("Inbound leads wait days for a call")
    form.locator("#id_timing_window").select_option("1_3m")
    form.locator("button[value=qualify]").click()
    page.wait_for_selector(f"#lead-row-{lead.pk} [data-action=convert]")

    row.locator("[data-action=convert]").click()
    form = page.locator(f"#lead-row-{lead.pk} [data-testid=action-form]")
    form.locator("#id_amount").fill("42000")
    form.locator("#id_probability").fill("60")
    form.locator("#id_next_step").fill("Security review")
    form.locator("button[type=submit]").first.click()
    page.wait_for_selector(f"#lead-row-{lead.pk} [data-action=close]")
    shot(page, "pipeline-queue-opportunity")

    row.locator("[data-action=close]").click()
    form = page.locator(f"#lead-row-{lead.pk} [data-testid=action-form]")
    form.locator("input[value=won]").check()
    form.locator("#id_reason").fill("Fastest time to value")
    form.locator("button[type=submit]").first.click()
    page.wait_for_selector("[data-testid=queue-row-done] >> text=Marked won")
    assert page.inner_text("[data-testid=queue-total]") == "0"  # the counts swapped out of band

    with tenant_scope(org):
        assert Lead.objects.get(pk=lead.pk).stage == "won"
        deal = Opportunity.objects.get(lead=lead)
        assert (deal.status, int(deal.amount)) == ("won", 42000)

    page.goto(f"/o/{org.slug}/pipeline/board/")
    page.wait_for_selector("[data-testid=deal-card]")
    assert "42,000" in page.inner_text("[data-testid=board-column][data-kind=won]")
    shot(page, "pipeline-board")
