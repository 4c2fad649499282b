"""Every page fits a phone (390 px) and a laptop (1366 px) without sideways scroll.

One walk over every GET page of tests/urlwalk.py that renders a full page, as an
admin whose name, organization and leads are deliberately long (the worst case
for the top bar and the tables), plus the sales rep's queue as the rep. At phone
width the navigation must still open and show the main sections.
"""

import pytest
from django.apps import apps
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Role
from leadflow.core.tenancy import TenantModel
from tests import factories as f
from tests.browser.playwright import login
from tests.urlwalk import our_routes, sample_values

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

LONG_ORG = "Internationale Landmaschinen-Handelsgesellschaft Süd-West GmbH & Co. KG"
LONG_USER = "Maximiliana Alexandrina Featherstonehaugh-Wolfeschlegelsteinhausen"
# Unbreakable strings are the ones that push a page wider than the screen.
LONG_EMAIL = "maximiliana.featherstonehaugh.procurement@landmaschinen-handelsgesellschaft.example"
LONG_COMPANY = "Wolfeschlegelsteinhausenbergerdorff Agrartechnik Vertriebsgesellschaft"

# The page's widest overflowing elements, to say what to fix when the check fails.
OVERFLOW = """() => {
  const limit = window.innerWidth + 1;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    // Its box sticks out, or its text does (a long word in a box of the right width).
    const clips = getComputedStyle(el).overflowX !== "visible";
    const right = box.left + (clips ? box.width : Math.max(box.width, el.scrollWidth));
    const scroller = el.closest(".table-responsive, .offcanvas-md, .nav-scroll");
    if (box.width && right > limit && !scroller) {
      const name = [el.tagName.toLowerCase(), ...el.classList].join(".");
      wide.push(`${name} right=${Math.round(right)}`);
    }
  }
  // A table scrolls inside its own container, whatever its data (this data may be short);
  // one laid out as cards (display: block) wraps instead.
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const tables = [...document.querySelectorAll("main table")];
  const bare = tables.filter((t) => getComputedStyle(t).display === "table").filter((table) => {
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      if (scrolls(el)) return false;
    }
    return true;
  }).map((table) => [...table.classList].join(".") || "table");
  const scroll = document.documentElement.scrollWidth;
  return {scroll, inner: window.innerWidth, bare, wide: wide.slice(0, 4).concat(wide.slice(-3))};
}"""


def _long_lead(org, n, **kwargs):
    company = f.CompanyFactory(organization=org, name=f"{LONG_COMPANY} {n}", domain=f"c{n}.example")
    return f.LeadFactory(
        organization=org,
        email=f"{n}.{LONG_EMAIL}",
        first_name="Bartholomäus-Konstantin",
        last_name=f"von Hohenzollern-Sigmaringen-Wittelsbach {n}",
        title="Senior Vice President of Agricultural Procurement and Supply Chain Logistics",
        company=company,
        company_name=company.name,
        city="Villingen-Schwenningen",
        **kwargs,
    )


def _lengthen_names(org):
    """Give every named row of the organization (the walk's samples) a long, unbreakable name."""
    for model in apps.get_models():
        if not issubclass(model, TenantModel):
            continue
        for field in model._meta.concrete_fields:
            if field.name in ("name", "title") and (field.max_length or 0) >= 100:
                longer = Concat(F(field.name), Value(f" {LONG_COMPANY}"))
                rows = model.objects.filter(organization=org)
                rows.update(**{field.name: Substr(longer, 1, field.max_length)})


def _full_pages(client, org, lead, form):
    """Paths of the GET views that answer the admin with a whole HTML page."""
    paths = []
    for route in our_routes():
        with scopes_disabled():
            # The hosted form is the one public page whose key the walk has no sample for.
            if route.params == ["form_key"]:
                values = {"form_key": form.key}
            else:
                values = sample_values(route, org)
        if "lead_id" in values:
            values["lead_id"] = lead.pk
        path = route.path(org.slug, values)
        response = client.get(path)
        if (
            response.status_code == 200
            and response["Content-Type"].startswith("text/html")
            and b"<html" in response.content
        ):
            paths.append(path)
    return paths


def _overflows(page, paths):
    """(width, path, measure) of every page wider than the window, phone then laptop.

    One load per page: phone first, then the same page widened (a layout that fits
    390 px and grows fits 1366 px unless something is sized in absolute terms)."""
    failures = []
    for path in paths:
        page.set_viewport_size(PHONE)
        page.goto(path, wait_until="load")
        for viewport in (PHONE, LAPTOP):
            page.set_viewport_size(viewport)
            measure = page.evaluate(OVERFLOW)
            if measure["scroll"] > measure["inner"] + 1 or measure["bare"]:
                failures.append((viewport["width"], path, measure))
    return failures


def _sign_in(page, email):
    page.set_viewport_size(PHONE)
    login(page, email, f.PASSWORD)
    page.wait_for_url(lambda url: "/login/" not in url)


def test_every_page_fits_phone_and_laptop_width(browser, live_server, client_for, shot):
    with scopes_disabled():
        org = f.OrganizationFactory(name=LONG_ORG, slug="landmaschinen")
        other = f.OrganizationFactory(name=f"{LONG_ORG} Nord", slug="landmaschinen-nord")
        user = f.UserFactory(full_name=LONG_USER, email=LONG_EMAIL)
        admin = f.MembershipFactory(organization=org, role=Role.ADMIN, user=user)
        f.MembershipFactory(organization=other, role=Role.ADMIN, user=admin.user)
        rep = f.MembershipFactory(
            organization=org, role=Role.SALES_REP, user=f.UserFactory(full_name=LONG_USER)
        )
        leads = [
            f.AssignmentFactory(lead=_long_lead(org, n, stage="mql"), membership=rep).lead
            for n in range(3)
        ]
        lead = leads[0]
        f.ActivityFactory(lead=lead, properties={"url": f"https://{LONG_EMAIL}/{'x' * 120}"})
        name = f"Welcome series for {LONG_COMPANY}"
        template = f.EmailTemplateFactory(organization=org, name=name)
        form = f.CaptureFormFactory(organization=org, name=f"Request a quote from {LONG_COMPANY}")
        paths = _full_pages(client_for(admin), org, lead, form)
        _lengthen_names(org)
    # The walk really reaches the product's pages, the long lead's and the hosted form's.
    assert len(paths) >= 40, paths
    assert f"/leads/{lead.pk}/" in " ".join(paths) and f"/f/{form.key}/" in paths, paths
    queue = reverse("pipeline:queue", kwargs={"org_slug": org.slug})

    # Before signing in, the rep sees the pages everyone sees (allauth's are not in the walk).
    rep_context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    try:
        rep_page, page = rep_context.new_page(), context.new_page()
        public = ["/", reverse("account_login"), reverse("account_signup")]
        failures = _overflows(rep_page, public)
        _sign_in(rep_page, rep.user.email)
        _sign_in(page, LONG_EMAIL)
        failures += _overflows(page, paths) + _overflows(rep_page, [queue])
        assert failures == [], "\n".join(map(str, failures))

        # At phone width the navigation is one tap away and lists the main sections.
        page.set_viewport_size(PHONE)
        page.goto(reverse("leads:lead_list", kwargs={"org_slug": org.slug}))
        # The top bar's menus, opened, stay on the screen too.
        for toggle in ("[data-testid=org-switcher]", ".topbar .dropdown-toggle[title]"):
            page.click(toggle)
            menu = page.locator(".topbar .dropdown-menu.show")
            box = menu.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (toggle, box)
            assert page.evaluate(OVERFLOW)["scroll"] <= PHONE["width"] + 1, toggle
            page.keyboard.press("Escape")
        sidebar = page.locator(".sidebar")
        reports = sidebar.get_by_role("link", name="Reports", exact=True)
        assert not reports.is_visible()
        page.get_by_role("button", name="Menu").click()
        for section in ("Overview", "Leads", "Opportunities", "Nurture", "Settings"):
            sidebar.get_by_role("link", name=section, exact=True).wait_for(state="visible")
        reports.click()
        page.wait_for_url(lambda url: "/reports/" in url)

        rep_page.set_viewport_size(PHONE)
        rep_page.goto(queue)
        assert LONG_COMPANY in rep_page.content()
        shot(rep_page, "phone-rep-queue")
        for name, path in (
            ("lead-list", f"/o/{org.slug}/leads/"),
            ("lead-detail", f"/o/{org.slug}/leads/{lead.pk}/"),
            ("dashboard", f"/o/{org.slug}/reports/"),
            ("template-editor", f"/o/{org.slug}/nurture/templates/{template.pk}/"),
        ):
            page.goto(path)
            shot(page, f"phone-{name}")
    finally:
        rep_context.close()
        context.close()


# The rep's pages at both widths, as the rep and as an admin who also works leads.
REP_PAGES = ("queue", "lead", "board")

# Each queue row's height in lines of its body text, and where its Accept button is.
QUEUE_ROWS = """() => {
  const line = parseFloat(getComputedStyle(document.body).lineHeight);
  return [...document.querySelectorAll("tbody.queue-lead > tr:first-child")].map((tr) => {
    const cells = [...tr.children].map((td) => {
      const style = getComputedStyle(td);
      const inner = td.getBoundingClientRect().height
        - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
      return inner / line;
    });
    const accept = tr.querySelector("[data-action=accept]");
    return {lines: Math.max(...cells), accept: accept && accept.getBoundingClientRect().toJSON()};
  });
}"""

# Each queue card (phone): its box, and the boxes of its action buttons.
QUEUE_CARDS = """() => [...document.querySelectorAll("tbody.queue-lead")].map((card) => {
  const buttons = [...card.querySelectorAll(".queue-buttons > .btn, .queue-buttons > .btn-group")];
  return {card: card.getBoundingClientRect().toJSON(),
          buttons: buttons.map((b) => b.getBoundingClientRect().toJSON())};
})"""


def _rep_world():
    org = f.OrganizationFactory(name=LONG_ORG, slug="landmaschinen-rep")
    f.OrganizationFactory(name=f"{LONG_ORG} Nord", slug="landmaschinen-rep-nord")
    admin = f.MembershipFactory(
        organization=org, role=Role.ADMIN, user=f.UserFactory(full_name=LONG_USER)
    )
    rep = f.MembershipFactory(
        organization=org, role=Role.SALES_REP, user=f.UserFactory(full_name=LONG_USER)
    )
    reason = (
        f"Territory rule “DACH enterprise” matched country DE and company size 1000+;"
        f" round robin among {LONG_COMPANY} specialists"
    )
    rule = f.RoutingRuleFactory(organization=org, name="Territory DACH")
    leads = {}
    for member in (rep, admin):
        for n, stage in enumerate(("mql", "mql", "sal", "sql")):
            lead = _long_lead(org, f"{member.pk}{n}", stage=stage, phone="+49 30 1234567")
            f.AssignmentFactory(
                lead=lead, membership=member, method="rule", rule=rule, reason=reason
            )
            f.ActivityFactory(lead=lead)
            leads.setdefault(member.pk, lead)
        for n, status in enumerate(("open", "open", "won", "lost")):
            closed = {} if status == "open" else {"closed_at": timezone.now()}
            stage = status if status != "open" else "opportunity"
            lead = _long_lead(org, f"d{member.pk}{n}", stage=stage, owner=member)
            f.OpportunityFactory(
                lead=lead, owner=member, status=status, name=f"{LONG_COMPANY} deal {n}", **closed
            )
    return org, admin, rep, leads


def test_the_reps_pages_fit_both_widths_with_actions_in_reach(browser, live_server, shot):
    """Queue, lead page and board at 390 and 1366 px as a rep and as an admin: no
    sideways scroll; at 1366 every queue row is at most two lines with its Accept button
    on the screen; at 390 the rows are cards whose buttons span the card at its bottom."""
    from pipeline.services import deal_stages_install

    with scopes_disabled():
        org, admin, rep, leads = _rep_world()
        deal_stages_install(organization_id=org.pk)
    failures = []
    for member in (rep, admin):
        context = browser.new_context(base_url=live_server.url, viewport=PHONE)
        try:
            page = context.new_page()
            _sign_in(page, member.user.email)
            who = "rep" if member is rep else "admin"
            paths = {
                "queue": reverse("pipeline:queue", kwargs={"org_slug": org.slug}),
                "lead": reverse(
                    "leads:lead_detail",
                    kwargs={"org_slug": org.slug, "lead_id": leads[member.pk].pk},
                ),
                "board": reverse("pipeline:board", kwargs={"org_slug": org.slug}),
            }
            failures += _overflows(page, [paths[name] for name in REP_PAGES])
            for viewport in (LAPTOP, PHONE):
                page.set_viewport_size(viewport)
                for name in REP_PAGES:
                    page.goto(paths[name])
                    shot(page, f"{who}-{name}-{viewport['width']}")
                page.goto(paths["queue"])
                if viewport is LAPTOP:
                    rows = page.evaluate(QUEUE_ROWS)
                    assert len(rows) == 4 + 2, rows  # four leads, two open deals' leads
                    assert max(r["lines"] for r in rows) <= 2.2, rows
                    accepts = [r["accept"] for r in rows if r["accept"]]
                    assert len(accepts) == 2
                    for box in accepts:
                        assert box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"], box
                        assert box["width"] > 40, box
                    badge = page.locator("[data-testid=why-routed]").first
                    assert badge.inner_text() == "Territory DACH"
                    assert "DACH enterprise" in badge.get_attribute("title")
                    badge.click()  # expands to the full reason
                    page.locator(".why-details[open] .why-text").first.wait_for()
                    assert page.evaluate(OVERFLOW)["scroll"] <= LAPTOP["width"] + 1
                else:
                    page.goto(paths["lead"])  # the lead page's actions: thumb-sized, on screen
                    buttons = page.locator("[data-testid=panel-actions] .btn")
                    assert buttons.count() >= 2
                    for box in (buttons.nth(i).bounding_box() for i in range(buttons.count())):
                        assert box["height"] >= 40 and box["x"] + box["width"] <= PHONE["width"]
                    page.goto(paths["queue"])
                    for card in page.evaluate(QUEUE_CARDS):
                        box, buttons = card["card"], card["buttons"]
                        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
                        # The buttons fill the card's last line, each big enough for a thumb.
                        bottom = box["y"] + box["height"]
                        assert all(bottom - (b["y"] + b["height"]) < 24 for b in buttons), card
                        assert sum(b["width"] for b in buttons) > 0.75 * box["width"], card
                        assert all(b["height"] >= 40 for b in buttons), card
        finally:
            context.close()
    assert failures == [], "\n".join(map(str, failures))
