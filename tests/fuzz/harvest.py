"""What each page's forms send: rendered once as an admin, every form on every
org page is read (method, target, field names and the values it offers), keyed
by the URL name of the view it posts to. The page fuzzer posts hostile values
under those names."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

from django.urls import Resolver404, resolve

# A value each kind of input accepts, for inputs the page leaves empty.
ORDINARY = {
    "text": "hello",
    "textarea": "hello",
    "search": "hello",
    "email": "someone@acme-corp.com",
    "url": "https://example.com/",
    "number": "1",
    "date": "2025-01-31",
    "datetime-local": "2025-01-31T09:00",
    "time": "09:00",
    "checkbox": "on",
    "password": "correct horse battery staple",
    "tel": "+49 30 1234567",
    "color": "#336699",
}


@dataclass
class RouteForms:
    post: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    query: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    posted_to: bool = False  # a page has a form (or htmx control) that posts here
    get_status: int = 0  # what a GET of the route answered an admin
    choices: set[str] = field(default_factory=set)  # fields that offer fixed values


class _FormParser(HTMLParser):
    def __init__(self, page_path: str):
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[tuple[str, str, dict[str, set[str]]]] = []
        self.choices: set[str] = set()
        self._current: tuple[str, str, dict[str, set[str]]] | None = None
        self._select: str | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            # The form's own submit, and an htmx request it may also send (e.g. a preview).
            fields: dict[str, set[str]] = defaultdict(set)
            method = (a.get("method") or "get").lower()
            self.forms.append((method, a.get("action") or self.page_path, fields))
            for attr, verb in (("hx-post", "post"), ("hx-get", "get")):
                if a.get(attr):
                    self.forms.append((verb, a[attr], fields))
            self._current = (method, "", fields)
            return
        if a.get("hx-post"):  # an htmx control of its own
            control: dict[str, set[str]] = defaultdict(set)
            if a.get("name"):
                control[a["name"]].add(a.get("value") or "")
            self.forms.append(("post", a["hx-post"], control))
        if tag == "a" and a.get("href") and "?" in a["href"]:  # links with a query
            self.links.append(a["href"])
        if self._current is None:
            return
        fields = self._current[2]
        name = a.get("name")
        if tag in ("input", "button", "textarea") and name:
            kind = a.get("type") or ("textarea" if tag == "textarea" else "text")
            if kind in ("radio", "checkbox", "submit", "button") or tag == "button":
                self.choices.add(name)
            fields[name].add(a.get("value") or ORDINARY.get(kind, ""))
        elif tag == "select" and name:
            self._select = name
            self.choices.add(name)
            fields[name]
        elif tag == "option" and self._select:
            fields[self._select].add(a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def _query_fields(href: str) -> dict[str, set[str]]:
    fields: dict[str, set[str]] = defaultdict(set)
    for key, value in parse_qsl(urlsplit(href).query, keep_blank_values=True):
        fields[key].add(value)
    return fields


def read_forms(html: str, page_path: str, into: dict[str, RouteForms]) -> None:
    parser = _FormParser(page_path)
    parser.feed(html)
    links = [("get", href, _query_fields(href)) for href in parser.links]
    for method, target, fields in parser.forms + links:
        try:
            match = resolve(urlsplit(target).path or page_path)
        except Resolver404:
            continue
        name = f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
        spec = into.setdefault(name, RouteForms())
        spec.choices |= parser.choices & set(fields)
        bucket = spec.post if method == "post" else spec.query
        if method == "post":
            spec.posted_to = True
        for key, values in fields.items():
            if key != "csrfmiddlewaretoken":
                bucket[key] |= {v for v in values if v}
