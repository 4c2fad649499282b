"""The layout's once-per-process tags give what `{% static %}` and `{% url %}`
give, under any script prefix, and follow a settings change."""

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix

from accounts.layout import org_id_url, org_url
from leadflow.core.rowhtml import IdUrl

TAGS = (
    "{% load layout %}{% asset 'css/app.css' %}|{% fixed_url 'accounts:home' %}"
    "|{% org_url 'notifications:list' slug %}"
)
STOCK = (
    "{% load static %}{% static 'css/app.css' %}|{% url 'accounts:home' %}"
    "|{% url 'notifications:list' org_slug=slug %}"
)


def both(slug: str) -> tuple[str, str]:
    context = {"slug": slug}
    return Template(TAGS).render(Context(context)), Template(STOCK).render(Context(context))


@pytest.mark.parametrize("slug", ["acme", "globex-2", "a_b"])
def test_the_tags_give_what_static_and_url_give(slug):
    ours, stock = both(slug)
    assert ours == stock and slug in ours


def test_a_script_prefix_is_kept_apart():
    plain = both("acme")[0]
    set_script_prefix("/crm/")
    try:
        ours, stock = both("acme")
    finally:
        clear_script_prefix()
    assert ours == stock and "/crm/o/acme/" in ours and ours != plain
    assert both("acme")[0] == plain


def test_a_settings_change_is_followed():
    both("acme")  # remembered
    with override_settings(STATIC_URL="/assets/"):
        ours, stock = both("acme")
        assert ours == stock and ours.startswith("/assets/css/app.css")
    assert both("acme")[0].startswith("/static/css/app.css")


def test_a_slug_the_pattern_would_not_take_is_reversed_as_given():
    # Only slugs reach these pages; anything else gets reverse()'s own quoting
    # (and error), never a string pasted into the URL.
    assert org_url("notifications:list", "acme") == "/o/acme/notifications/"
    with pytest.raises(Exception, match="Reverse"):
        org_url("notifications:list", 'x"><script>')
    assert reverse("notifications:list", kwargs={"org_slug": "acme"}) == "/o/acme/notifications/"


@pytest.mark.parametrize("slug", ["acme", "globex-2"])
def test_row_links_reversed_once_equal_a_fresh_reverse(slug):
    for name in ("leads:lead_detail", "pipeline:lead_accept", "pipeline:lead_touch"):
        ours, fresh = org_id_url(name, "lead_id", slug), IdUrl(name, "lead_id", org_slug=slug)
        for pk in (1, 42, 9081726354):
            assert ours(pk) == fresh(pk) == reverse(name, kwargs={"org_slug": slug, "lead_id": pk})
    assert org_id_url("leads:lead_detail", "lead_id", slug).parts is not None


def test_no_organization_fails_as_url_fails():
    # {% url %} with a missing slug raises NoReverseMatch; so does the tag.
    with pytest.raises(Exception, match="Reverse"):
        Template("{% load layout %}{% org_url 'notifications:list' current_org.slug %}").render(
            Context({"current_org": None})
        )
