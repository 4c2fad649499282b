"""A rep's tasks in a real browser, at 1366 and 390 px: log a call with a next
step from the queue row (htmx), see it in "My day", complete it there without
a reload; the stalled lead shows its badge; nothing scrolls sideways."""

import datetime as dt

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from pipeline.models import FollowUp
from tests.browser.playwright import login
from tests.factories import PASSWORD, FollowUpFactory, LeadFactory, OrganizationFactory
from tests.pipeline.support import mql_for, pipeline_only

__all__ = ["pipeline_only"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", [1366, 390])
def test_next_step_from_the_queue_then_done_in_my_day(page, shot, org, sales_rep, width):
    page.set_viewport_size({"width": width, "height": 900})
    other = OrganizationFactory(name="Globex", slug=f"globex-{width}")
    now = timezone.now()
    with tenant_scope(org):
        lead = mql_for(sales_rep, first_name="Mara", last_name="Okafor", phone="+4930123456")
        stalled = mql_for(sales_rep, first_name="Quinn", last_name="Stall")
        FollowUpFactory(
            lead=stalled,
            assignee=sales_rep,
            title="Send the contract",
            due_at=now - dt.timedelta(hours=3),
        )
    with tenant_scope(other):
        FollowUpFactory(lead=LeadFactory(organization=other), title="Foreign task")

    login(page, sales_rep.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/pipeline/")
    row = page.locator(f"#lead-row-{stalled.pk}")
    assert row.locator("[data-testid=stalled-badge]").count() == 1
    assert page.locator(f"#lead-row-{lead.pk} a[href='tel:+4930123456']").count() == 1

    page.locator(f"#lead-row-{lead.pk} [data-action=more]").click()  # MQL: under "More"
    page.locator(f"#lead-row-{lead.pk} [data-action=touch]").click()
    form = page.locator(f"#lead-row-{lead.pk} [data-testid=action-form]")
    form.wait_for()
    form.locator("#id_kind").select_option("call")
    form.locator("#id_outcome").select_option("no_answer")
    form.locator("#id_duration_minutes").fill("1")
    form.locator("#id_next_kind").select_option("call")
    form.locator("#id_next_title").fill("Call Mara again")
    due = timezone.localtime(now + dt.timedelta(hours=2), dt.UTC)
    form.locator("#id_next_due").fill(due.strftime("%Y-%m-%dT%H:%M"))
    shot(page, f"tasks-touch-form-{width}")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"#lead-row-{lead.pk} >> text=Next step added")

    page.goto(f"/o/{org.slug}/pipeline/my-day/")
    overdue = page.locator("[data-testid=my-day-overdue]")
    today_or_next = page.locator("[data-testid=my-day-today], [data-testid=my-day-upcoming]")
    assert "Send the contract" in overdue.inner_text()
    assert overdue.locator("[data-testid=stalled-badge]").count() == 1
    assert "Call Mara again" in today_or_next.all_inner_texts().__str__()
    assert "Foreign task" not in page.content()
    assert no_sideways_scroll(page), f"My day scrolls sideways at {width} px"
    shot(page, f"tasks-my-day-{width}")

    with tenant_scope(org):
        contract = FollowUp.objects.get(title="Send the contract")
    item = page.locator(f"#follow-up-{contract.pk}")
    item.locator("[data-action=complete-task]").click()
    page.wait_for_selector(f"#follow-up-{contract.pk} [data-action=reopen-task]")
    assert "Task done." in item.inner_text()
    shot(page, f"tasks-my-day-done-{width}")
    with tenant_scope(org):
        assert FollowUp.objects.get(pk=contract.pk).done_at is not None

    page.goto(f"/o/{org.slug}/leads/{lead.pk}/")
    panel = page.locator("[data-testid=tasks-panel]")
    assert "Call Mara again" in panel.inner_text()
    assert no_sideways_scroll(page), f"The lead page scrolls sideways at {width} px"
    shot(page, f"tasks-lead-page-{width}")
