"""The layout's constant pieces, computed once per process instead of on every page.

Every page renders templates/base.html with the top bar and the sidebar: a dozen
`{% static %}` and `{% url %}` tags whose results never change while the process
runs (the same path, the same URL pattern, the same organization). Here:

- `{% asset "css/app.css" %}` is `{% static "css/app.css" %}`;
- `{% fixed_url "accounts:home" %}` is `{% url "accounts:home" %}` (no arguments);
- `{% org_url "notifications:list" current_org.slug %}` is
  `{% url "notifications:list" org_slug=current_org.slug %}`, the pattern
  reversed once and the slug put into it (accounts.layout.org_url).

Each is looked up once per process, script prefix and URLconf (and again after
a settings change: tests override STORAGES and ROOT_URLCONF) and escaped as the
tags it replaces escape their output.
"""

from __future__ import annotations

from django import template
from django.template.base import Node
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import conditional_escape

from accounts.layout import memo, org_url

register = template.Library()


def _constant(bits: list[str], tag: str) -> str:
    if len(bits) != 2 or bits[1][:1] not in "'\"" or bits[1][-1:] != bits[1][:1]:
        raise template.TemplateSyntaxError(f"{tag} takes one quoted string")
    return bits[1][1:-1]


class AssetNode(Node):
    def __init__(self, path: str) -> None:
        self.path = path

    def render(self, context) -> str:
        return memo(("static", self.path), lambda: conditional_escape(static(self.path)))


class FixedUrlNode(Node):
    def __init__(self, name: str) -> None:
        self.name = name

    def render(self, context) -> str:
        return memo(("url", self.name), lambda: conditional_escape(reverse(self.name)))


class OrgUrlNode(Node):
    def __init__(self, name: str, slug) -> None:
        self.name, self.slug = name, slug

    def render(self, context) -> str:
        return conditional_escape(org_url(self.name, self.slug.resolve(context)))


@register.tag
def asset(parser, token) -> AssetNode:
    return AssetNode(_constant(token.split_contents(), "asset"))


@register.tag
def fixed_url(parser, token) -> FixedUrlNode:
    return FixedUrlNode(_constant(token.split_contents(), "fixed_url"))


@register.tag(name="org_url")
def org_url_tag(parser, token) -> OrgUrlNode:
    bits = token.split_contents()
    if len(bits) != 3:
        raise template.TemplateSyntaxError("org_url takes a quoted URL name and a slug")
    return OrgUrlNode(_constant(bits[:2], "org_url"), parser.compile_filter(bits[2]))
