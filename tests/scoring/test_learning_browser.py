"""A marketing-ops admin lets the outcomes suggest the points in a real
browser: learn, compare the suggestion with the rules in use, apply it, and go
back with one click."""

import pytest

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from scoring import engine, learning, services
from tests.browser.playwright import login
from tests.factories import PASSWORD
from tests.scoring.test_learning import make_leads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_learns_compares_applies_and_rolls_back(
    page, shot, org, other_org, make_member, monkeypatch
):
    monkeypatch.setattr(learning, "MIN_OUTCOMES", 60)
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        make_leads(org, 400, seed=21)
        engine.rescore(organization_id=org.pk)
    admin = make_member(org, Role.ADMIN, email="ops@acme.example")
    login(page, admin.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/scoring/learning/")
    assert "238" in page.inner_text("[data-testid=outcome-counts]")
    page.click("[data-testid=learn-button]")
    page.wait_for_selector("[data-testid=compare-link]")
    shot(page, "learning-ready")

    page.click("[data-testid=compare-link]")
    page.wait_for_selector("[data-testid=draft-auc]")
    draft_auc = float(page.inner_text("[data-testid=draft-auc]"))
    assert 0.6 < draft_auc <= 1
    assert page.locator("[data-testid=rule-changes] tbody tr").count() > 5
    shot(page, "learning-compare")
    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing of the page's own content is wider than the phone (tables scroll
    # inside their card, the tab row scrolls on its own).
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391"
        " && !e.closest('.table-responsive, .nav-scroll')).map(e => e.tagName + '.' + e.className)"
    )
    assert wide == []
    shot(page, "learning-compare-phone")
    page.set_viewport_size({"width": 1360, "height": 900})

    page.click("[data-testid=apply-button]")
    page.wait_for_selector("[data-testid=rollback-button]")
    assert "is now in use" in page.inner_text("body")
    shot(page, "learning-applied")

    page.click("[data-testid=rollback-button]")
    page.wait_for_selector("text=Back to version")
    assert "Rules in use before learning" in page.inner_text("[data-testid=version-in-use]")
    shot(page, "learning-rolled-back")


def test_admin_starts_from_a_starter_set_and_simulates_it(page, shot, org, other_org, make_member):
    """Below the minimum-data guard: take the education starter set as a draft,
    simulate it on the leads with an outcome, readable on a phone too."""
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        make_leads(org, 120, seed=22)
        engine.rescore(organization_id=org.pk)
    admin = make_member(org, Role.ADMIN, email="ops@acme.example")
    login(page, admin.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/scoring/learning/")
    page.select_option("#id_business_type", "education")
    shot(page, "starter-offer")
    page.click("[data-testid=starter-offer] button")
    page.click("[data-testid=simulate-version]")
    page.wait_for_selector("[data-testid=simulation-rules]")
    assert page.locator("[data-testid=simulation-rules] tbody tr").count() > 8
    assert page.inner_text("[data-testid=sim-draft-auc]") != "—"
    shot(page, "starter-simulated")
    page.set_viewport_size({"width": 390, "height": 844})
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391"
        " && !e.closest('.table-responsive, .nav-scroll')).map(e => e.tagName + '.' + e.className)"
    )
    assert wide == []
    shot(page, "starter-simulated-phone")
