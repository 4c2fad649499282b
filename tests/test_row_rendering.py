"""List pages with many rows render each row cheaply and the same way.

- Every list page with many rows reverses its URLs and renders its templates a
  constant number of times, whatever its row count: no `{% url %}` and no
  `{% include %}` per row (an IdUrl reversed once, rows built in one pass).
- The rep queue's one-click actions share one form (one CSRF token per page)
  and still work without JavaScript.
- `IdUrl` gives exactly what `reverse` gives, and the Python-built rows escape
  hostile lead data in every field they show.
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.urls.resolvers import URLResolver
from django.utils import timezone

from leadflow.core.rowhtml import _SENTINEL, IdUrl
from leadflow.core.tenancy import tenant_scope
from leads import selectors as lead_selectors
from leads.models import Campaign, Lead
from leads.rows import LeadRowUrls, lead_row
from nurture.models import ListMembership
from pipeline import selectors
from pipeline.models import Assignment
from pipeline.rows import QueueUrls, _actions, _activity, _sla, queue_row_cells
from pipeline.views.queue import ROW_BUTTONS, decorate_rows, row_columns
from tests import factories as f
from tests.pipeline.support import pipeline_only
from tests.security.xss import POLYGLOT, find_xss, payload_for

__all__ = ["pipeline_only"]  # the autouse fixture: no nurture hooks on stage changes

pytestmark = pytest.mark.django_db

OPEN_STAGES = ("mql", "sal", "sql", "opportunity")


@contextmanager
def counting_reverses(monkeypatch):
    """Count every URL reversal ({% url %}, reverse()) while the block runs."""
    calls = []
    original = URLResolver._reverse_with_prefix

    def counted(self, lookup_view, _prefix, *args, **kwargs):
        calls.append(lookup_view)
        return original(self, lookup_view, _prefix, *args, **kwargs)

    monkeypatch.setattr(URLResolver, "_reverse_with_prefix", counted)
    yield calls
    monkeypatch.setattr(URLResolver, "_reverse_with_prefix", original)


def _queue_rows(org, n, *, rep, **_):
    for i in range(n):
        stage = OPEN_STAGES[i % len(OPEN_STAGES)]
        lead = f.LeadFactory(organization=org, stage=stage, title="VP", phone="+4930", score=i)
        f.AssignmentFactory(lead=lead, membership=rep, reason="Matched rule")
        if stage == "opportunity":
            f.OpportunityFactory(lead=lead, owner=rep)
        f.ActivityFactory(lead=lead)


def _lead_rows(org, n, *, rep, **_):
    # One campaign per tenant: the filter form lists campaigns (a template per option).
    campaign = Campaign.objects.first() or f.CampaignFactory(organization=org)
    for i in range(n):
        company = f.CompanyFactory(organization=org) if i % 2 else None
        f.LeadFactory(
            organization=org, company=company, owner=rep, first_campaign=campaign, scored_at=None
        )


def _company_rows(org, n, **_):
    for _ in range(n):
        f.CompanyFactory(organization=org)


def _import_rows(org, n, **_):
    for i in range(n):
        f.ImportJobFactory(organization=org, status=("uploaded", "done", "running")[i % 3])


def _member_rows(org, n, *, nurture_list, **_):
    for _ in range(n):
        ListMembership.objects.create(
            organization=org,
            list=nurture_list,
            lead=f.LeadFactory(organization=org),
            added_at=timezone.now(),
            source="manual",
        )


def _deal_rows(org, n, *, rep, **_):
    from pipeline.services import deal_stages_install

    deal_stages_install(organization_id=org.pk)  # as organization_create's hook made them
    for i in range(n):
        f.OpportunityFactory(
            lead=f.LeadFactory(organization=org, stage="opportunity", owner=rep),
            owner=rep,
            status=("open", "won", "lost")[i % 3],
        )


# page: (who looks, URL name, extra URL kwargs, how to add n rows)
LIST_PAGES = {
    "rep queue": ("rep", "pipeline:queue", _queue_rows),
    "lead list": ("admin", "leads:lead_list", _lead_rows),
    "lead list (rep)": ("rep", "leads:lead_list", _lead_rows),
    "companies": ("admin", "leads:company_list", _company_rows),
    "imports": ("admin", "leads:import_list", _import_rows),
    "nurture list members": ("admin", "nurture:list_detail", _member_rows),
    "opportunity board": ("admin", "pipeline:board", _deal_rows),
    "opportunity board (rep)": ("rep", "pipeline:board", _deal_rows),
}


@pytest.mark.parametrize("name", LIST_PAGES)
def test_list_pages_do_no_url_or_template_work_per_row(
    name, org, other_org, admin, sales_rep, client_for, monkeypatch
):
    who, url_name, add_rows = LIST_PAGES[name]
    membership = {"admin": admin, "rep": sales_rep}[who]
    client = client_for(membership)
    with tenant_scope(org):
        nurture_list = f.NurtureListFactory(organization=org)
    kwargs = {"org_slug": org.slug}
    if url_name == "nurture:list_detail":
        kwargs["list_id"] = nurture_list.pk
    path = reverse(url_name, kwargs=kwargs)
    with tenant_scope(other_org):  # another tenant's rows change nothing
        other_rep = f.MembershipFactory(organization=other_org, role="sales_rep")
        other_list = f.NurtureListFactory(organization=other_org)
        add_rows(other_org, 4, rep=other_rep, nurture_list=other_list)

    def render(rows: int) -> tuple[int, int, int, str]:
        with tenant_scope(org):
            add_rows(org, rows, rep=sales_rep, nurture_list=nurture_list)
        cache.clear()  # both sizes render their kept parts (leads.controls) afresh
        with counting_reverses(monkeypatch) as reverses, CaptureQueriesContext(connection) as sql:
            response = client.get(path)
        assert response.status_code == 200
        return len(reverses), len(response.templates), len(sql), response.content.decode()

    # Both sizes hold every kind of row (each queue stage, each import status…). The
    # first page fills the per-process memos (URL patterns reversed once: accounts.layout).
    render(4)
    few_reverses, few_templates, few_queries, few = render(4)
    many_reverses, many_templates, many_queries, many = render(8)
    assert len(many) > len(few)  # the rows are there
    assert many_reverses == few_reverses, f"{name}: a URL reversed per row"
    assert many_templates == few_templates, f"{name}: a template rendered per row"
    assert many_queries == few_queries, f"{name}: a query per row (a column the row lacks?)"


def _hx_accept(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<button[^>]*form="([^"]+)" formaction="([^"]+)"[^>]*accept', html)


def test_queue_one_click_actions_share_one_form_and_work_without_javascript(
    org, other_org, sales_rep
):
    with tenant_scope(org):
        leads = [f.LeadFactory(organization=org, stage="mql") for _ in range(3)]
        for lead in leads:
            f.AssignmentFactory(lead=lead, membership=sales_rep)
    with tenant_scope(other_org):
        f.AssignmentFactory(lead=f.LeadFactory(organization=other_org, stage="mql"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_rep.user)
    html = client.get(reverse("pipeline:queue", kwargs={"org_slug": org.slug})).content.decode()
    table = html[html.index('data-testid="queue-table"') : html.index("</table>")]
    assert "<form" not in table and "csrfmiddlewaretoken" not in table, "a form per row"
    shared = re.search(r'<form id="queue-actions" method="post"[^>]*>\s*<input([^>]+)>', html)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shared.group(1)).group(1)
    buttons = _hx_accept(html)
    assert {form for form, _ in buttons} == {"queue-actions"} and len(buttons) == 3
    # Without JavaScript the button submits the shared form to its formaction.
    action = buttons[0][1]
    assert action in {
        reverse("pipeline:lead_accept", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
        for lead in leads
    }
    response = client.post(action, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    lead_id = int(re.search(r"/leads/(\d+)/accept/", action).group(1))
    with tenant_scope(org):
        assert Assignment.objects.get(lead_id=lead_id, is_current=True).accepted_at is not None
    # Without the shared form's token the same post is refused.
    assert client.post(action).status_code == 403


@pytest.mark.parametrize("slug", ["acme", f"x{_SENTINEL}y", f"{_SENTINEL}"])
def test_id_url_is_reverse(db, slug):
    for name, kwarg in (("leads:lead_detail", "lead_id"), ("pipeline:lead_accept", "lead_id")):
        url = IdUrl(name, kwarg, org_slug=slug)
        for pk in (1, 7, 90817263, int(_SENTINEL)):
            assert url(pk) == reverse(name, kwargs={"org_slug": slug, kwarg: pk})


def _hostile_lead(org, rep):
    """Every text a row shows holds markup that would run if it were not escaped."""
    company = f.CompanyFactory(organization=org, name=POLYGLOT)
    names = ("first_name", "last_name", "title", "company_name", "phone", "country")
    text = {  # the longest markup each column holds
        name: payload_for(Lead._meta.get_field(name).max_length, n) for n, name in enumerate(names)
    }
    lead = f.LeadFactory(
        organization=org,
        stage="opportunity",
        email="x@y.example",
        company=company,
        first_campaign=f.CampaignFactory(organization=org, name=POLYGLOT),
        owner=rep,
        scored_at=timezone.now(),
        grade="A",
        band="hot",
        **text,
    )
    f.AssignmentFactory(lead=lead, membership=rep, reason=POLYGLOT)
    f.OpportunityFactory(lead=lead, currency="EUR", owner=rep)
    rep.user.full_name = POLYGLOT
    rep.user.save()
    return lead


def test_python_built_rows_escape_hostile_lead_data(org, other_org, sales_rep):
    with tenant_scope(org):
        lead = _hostile_lead(org, sales_rep)
        urls = QueueUrls(org.slug)
        queue = row_columns(selectors.rep_queue(membership=sales_rep))
        (row,) = decorate_rows(queue, timezone.now(), urls)
        cells = str(queue_row_cells(row, urls=urls))
        admin = f.MembershipFactory(organization=org)
        listed = lead_row(
            lead_selectors.lead_list_rows(membership=admin).get(pk=lead.pk),
            urls=LeadRowUrls(org.slug, lead_selectors.list_labels(organization_id=org.pk)),
            can_edit=True,
        )
    for html in (cells, str(listed)):
        assert html.count("lfxss(") >= 3  # the hostile texts are shown…
        assert find_xss(f"<table>{html}</table>", where="row") == []  # …and inert


@pytest.mark.parametrize(
    "ago",
    [
        dt.timedelta(seconds=20),
        dt.timedelta(minutes=1),
        dt.timedelta(hours=2, minutes=5),
        dt.timedelta(days=3, hours=1),
        dt.timedelta(days=40),
        dt.timedelta(days=400),
    ],
)
def test_queue_row_times_read_as_the_template_filters_wrote_them(ago):
    """The activity's "… ago" (plural strings kept per page) and the SLA's data-due."""
    at = timezone.now() - ago
    row = SimpleNamespace(
        last_activity_at=at,
        last_activity_kind="email_open",
        sla={"css": "text-bg-light border", "text": "due in 5m", "overdue": False},
        sla_due_at=at,
    )
    urls = QueueUrls("acme")
    template = Template('{{ at|timesince }} ago|{{ at }}|{{ at|date:"c" }}')
    context = Context({"at": at})
    since, title, iso = template.render(context).split("|")
    kind = "Email opened"  # the kind's display name, never "Emailopen"
    since = since.removesuffix(" ago")
    for _ in range(2):  # the second time from the page's kept strings
        assert str(_activity(row, urls)) == (
            f'{kind}\n          <div class="text-secondary" title="{title}">{since} ago</div>'
        )
    assert f'data-due="{iso}"' in str(_sla(row))


@pytest.mark.parametrize("slug", ["acme", f"x{_SENTINEL}y"])  # the second: built per row
@pytest.mark.parametrize("open_action", ["", "touch"])
def test_queue_buttons_built_once_per_stage_carry_each_rows_own_id(slug, open_action):
    """A stage's buttons are built once per page with a stand-in for the row id: every
    row gets its own id in each URL and swap target, and the open form's button."""
    urls = QueueUrls(slug)
    rows = [
        SimpleNamespace(pk=pk, actions=ROW_BUTTONS[stage])
        for pk in (7, 1234)
        for stage in OPEN_STAGES
    ]
    for row in rows:
        markup = str(_actions(row, urls, open_action))
        expected = []
        for action in row.actions:
            url = reverse(
                f"pipeline:lead_{action.name}", kwargs={"org_slug": slug, "lead_id": row.pk}
            )
            expected += [url] * 2 + [f"#lead-row-{row.pk}"]
        found = re.findall(
            r'(?:href|hx-get|hx-post|formaction)="([^"]+)"|hx-target="([^"]+)"', markup
        )
        assert sorted(a or b for a, b in found) == sorted(expected)
        assert "\x00" not in markup
        opened = re.findall(r'class="btn btn-sm btn-primary"[^>]*data-action="(\w+)"', markup)
        shown = [a.name for a in row.actions[:2] if a.has_form]
        assert opened == ([open_action] if open_action in shown else [])


def test_queue_row_slot_is_rendered_once_and_carries_each_rows_id(monkeypatch):
    """The per-row slot (pipeline/partials/queue_row_slot.html, where other parts add
    small row actions) is one template rendering per page, with each row's own id."""
    from pipeline import rows as queue_rows_module

    calls = []

    def render(name, context):
        calls.append(name)
        template = '<a href="/o/{org_slug}/tasks/new/?lead={lead_id}">+ task</a>'
        return template.format(**context)

    monkeypatch.setattr(queue_rows_module, "render_to_string", render)
    urls = QueueUrls("acme")
    assert str(urls.row_slot(7)) == '<a href="/o/acme/tasks/new/?lead=7">+ task</a>'
    assert str(urls.row_slot(1234)) == '<a href="/o/acme/tasks/new/?lead=1234">+ task</a>'
    assert calls == ["pipeline/partials/queue_row_slot.html"]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_compiled_date_formats_print_what_the_date_filter_prints(zone):
    """leadflow.core.rowhtml.DateFormat against Django's own formatting: every month,
    every hour (midnight, noon, a.m., p.m.), on and off the hour, in several zones;
    and a format it does not compile, which Django formats."""
    from django.template.base import render_value_in_context
    from django.template.defaultfilters import date as date_filter
    from django.utils.formats import get_format

    from leadflow.core.rowhtml import DateFormat

    values = [
        dt.datetime(2026, month, 1 + month * 2, hour, minute, 7, tzinfo=dt.UTC)
        for month in range(1, 13)
        for hour in range(24)
        for minute in (0, 5, 30)
    ]
    with timezone.override(zone):
        shown = DateFormat(get_format("DATETIME_FORMAT"))
        short = DateFormat("M j, Y")
        other = DateFormat("D, d M Y H:i")
        assert shown.plan is not None and short.plan is not None and other.plan is None
        for value in values:
            local = timezone.template_localtime(value)
            assert shown(local) == render_value_in_context(value, Context(autoescape=True))
            assert short(local) == date_filter(local, "M j, Y")
            assert other(local) == date_filter(local, "D, d M Y H:i")
