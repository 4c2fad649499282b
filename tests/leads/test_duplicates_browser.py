"""The duplicates journey in a real browser: from the stored pairs to a merge
with a field choice, its confirmation, then undo; and the page at ~9k leads."""

import time

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, LeadMerge
from leads.services import duplicates as dup
from tests.browser.playwright import login
from tests.factories import PASSWORD, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_merge_with_a_field_choice_then_undo(page, shot, org, other_org, admin):
    with tenant_scope(org):
        a = LeadFactory(
            organization=org, email="zoe@a.example", first_name="Zoe", last_name="Park",
            phone="+4930123456", city="Berlin", title="",
        )  # fmt: skip
        b = LeadFactory(
            organization=org, email="zoe@b.example", first_name="Zoe", last_name="Park",
            phone="030 123456", country="DE", city="Munich", title="VP Sales",
        )  # fmt: skip
        dup.duplicates_refresh(organization_id=org.pk, lead_ids=[a.pk, b.pk])
    with tenant_scope(other_org):
        LeadFactory(organization=other_org, email="zoe@a.example", phone="+4930123456")

    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/leads/duplicates/")
    table = page.locator("[data-testid=duplicate-table]")
    assert "Same phone" in table.inner_text() and "zoe@b.example" in table.inner_text()
    shot(page, "duplicates-list")
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "duplicates-list-390")
    page.set_viewport_size({"width": 1360, "height": 900})

    page.click("text=Compare & merge")
    page.locator("[data-testid=merge-table]").wait_for()
    page.check("[data-testid=pick-email-b]")  # the corrected address wins
    page.check("[data-testid=pick-title-b]")
    shot(page, "merge-choose")
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "merge-choose-390")
    page.set_viewport_size({"width": 1360, "height": 900})
    page.click("text=Review the merge")
    confirm = page.locator("[data-testid=merge-confirm]")
    confirm.wait_for()
    text = confirm.inner_text()
    assert "Zoe Park <zoe@b.example> will be merged into Zoe Park <zoe@a.example>" in text
    assert "email will be zoe@b.example" in text and "undo" in text
    shot(page, "merge-confirm")
    page.click("[data-testid=merge-confirm-button]")
    page.wait_for_selector("text=Merged Zoe Park <zoe@b.example> into Zoe Park <zoe@a.example>")
    with tenant_scope(org):
        a.refresh_from_db()
        b.refresh_from_db()
    assert (a.email, a.title, a.city, b.merged_into_id) == (
        "zoe@b.example",
        "VP Sales",
        "Berlin",
        a.pk,
    )

    page.goto(f"/o/{org.slug}/leads/merges/")
    shot(page, "merge-log")
    page.click("[data-testid=undo-merge]")
    page.wait_for_selector("text=Merge undone: Zoe Park <zoe@b.example> is its own lead again.")
    with tenant_scope(org):
        a.refresh_from_db()
        b.refresh_from_db()
        assert LeadMerge.objects.get().undone_at is not None
    assert (a.email, a.title, b.email, b.merged_into_id) == (
        "zoe@a.example",
        "",
        "zoe@b.example",
        None,
    )
    page.goto(f"/o/{org.slug}/leads/duplicates/")
    assert "zoe@b.example" in page.locator("[data-testid=duplicate-table]").inner_text()


def test_the_duplicates_page_at_9k_leads_loads(page, shot, org, other_org, admin):
    n = 9_000
    with tenant_scope(org):
        Lead.objects.bulk_create(
            [
                Lead(
                    organization=org,
                    email=f"lead{i}@firm{i % 300}.example",
                    first_name=("Ada", "Zoë", "Ravi", "Ken")[i % 4],
                    last_name=f"Surname{i % 4000}",
                    company_name=f"Firm {i % 900}" if i % 3 else "",
                    phone=f"+4930{i // 2:07d}" if i % 50 in (0, 1) else "",
                )
                for i in range(n)
            ],
            batch_size=1000,
        )
        started = time.perf_counter()
        dup.duplicates_rebuild(organization_id=org.pk)
        print(f"rebuild at {n:,} leads: {time.perf_counter() - started:.1f} s")
    login(page, admin.user.email, PASSWORD)
    started = time.perf_counter()
    page.goto(f"/o/{org.slug}/leads/duplicates/")
    rows = page.locator("[data-testid=duplicate-table] tbody tr")
    rows.first.wait_for()
    print(f"duplicates page at {n:,} leads: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert rows.count() == 50
    assert page.locator("text=Next pairs").count() == 1
    shot(page, "duplicates-9k")
