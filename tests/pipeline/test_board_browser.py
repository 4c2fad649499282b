"""Drag and drop on the opportunity board in a real browser: a card dropped in another
column moves the deal (totals follow); lost asks for a reason; a refused move snaps
back with the reason."""

import pytest

from leadflow.core.tenancy import tenant_scope
from pipeline import services
from pipeline.models import Opportunity
from tests.browser.playwright import login
from tests.factories import PASSWORD, OpportunityFactory, OrganizationFactory
from tests.pipeline.support import pipeline_only, rep

__all__ = ["pipeline_only"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _column(page, name: str):
    return page.locator("[data-testid=board-column]", has=page.locator(f"h2:text-is('{name}')"))


def _card(page, deal):
    return page.locator(f"[data-testid=deal-card][data-deal='{deal.pk}']")


def _drag(page, deal, to: str):
    _card(page, deal).drag_to(_column(page, to).locator("[data-testid=board-cards]"))


def _stage_of(org, deal) -> tuple[str, str]:
    with tenant_scope(org):
        fresh = Opportunity.objects.select_related("stage").get(pk=deal.pk)
        return fresh.status, fresh.stage.name


def test_rep_drags_deals_between_stages(page, shot, org, sales_rep):
    other = OrganizationFactory(name="Globex", slug="globex-board")
    with tenant_scope(org):
        stages = {s.name: s for s in services.deal_stages_install(organization_id=org.pk)}
        first, second = (
            OpportunityFactory(
                lead__organization=org, lead__owner=sales_rep, owner=sales_rep, name=name,
                amount=amount, stage=stages["Qualification"], probability=10,
            )
            for name, amount in (("Northwind rollout", 40000), ("Contoso pilot", 8000))
        )  # fmt: skip
        theirs = OpportunityFactory(lead__organization=org, owner=rep(org), name="Not mine")
    with tenant_scope(other):
        OpportunityFactory(lead__organization=other, name="Foreign deal")

    # The drag library keeps to the Content-Security-Policy (no inline style or script).
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    login(page, sales_rep.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/pipeline/board/")
    _card(page, first).wait_for()
    text = page.inner_text("[data-testid=board]")
    assert "Foreign deal" not in text and theirs.name not in text

    # Qualification → Negotiation: the card and the totals move, and the deal's probability.
    _drag(page, first, "Negotiation")
    page.wait_for_selector("[data-testid=board-notice]:has-text('moved to Negotiation')")
    negotiation = _column(page, "Negotiation")
    assert "Northwind rollout" in negotiation.inner_text()
    assert "40,000" in negotiation.locator("[data-testid=board-total]").inner_text()
    assert "28,000" in negotiation.locator("[data-testid=board-weighted]").inner_text()
    assert _stage_of(org, first) == ("open", "Negotiation")

    # Into Lost: the board asks why; the deal closes as lost with that reason.
    page.once("dialog", lambda dialog: dialog.accept("Went with a competitor"))
    _drag(page, second, "Lost")
    page.wait_for_selector("[data-testid=board-notice]:has-text('moved to Lost')")
    assert "Went with a competitor" in _column(page, "Lost").inner_text()
    assert _stage_of(org, second) == ("lost", "Lost")

    # Into Won, then back to an open stage: refused, the card snaps back with the reason.
    _drag(page, first, "Won")
    page.wait_for_selector("[data-testid=board-notice]:has-text('moved to Won')")
    _drag(page, first, "Proposal")
    error = page.locator("[data-testid=board-error]")
    error.wait_for()
    assert "cannot be reopened" in error.inner_text()
    assert _column(page, "Won").locator(f"[data-deal='{first.pk}']").count() == 1
    assert _column(page, "Proposal").locator("[data-testid=deal-card]").count() == 0
    assert _stage_of(org, first) == ("won", "Won")
    shot(page, "board-drag-and-drop")
    assert violations == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/o/{org.slug}/pipeline/board/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "board-drag-and-drop-390")
