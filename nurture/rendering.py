"""Email templates: sanitizing, validating and rendering merge fields.

Templates are written by tenants, so they are untrusted:

- the HTML body is cleaned with nh3 on save (no script, iframe, event handlers,
  javascript: URLs);
- merge fields are checked against a whitelist *before* Django's template
  engine sees the text: only ``{{ field }}`` / ``{{ field|filter }}`` with the
  fields and filters below, and only ``{% if %}``/``{% else %}``/``{% endif %}``
  tags — no attribute access, no ``{% load %}``/``{% include %}``, so a template
  can read nothing but the merge fields it is given;
- rendering uses Django's engine (autoescaping the HTML part, not the subject or
  the text part);
- merged lead data is hostile: the rendered parts are plain ``str`` (never
  marked safe, so a page that shows them escapes them for its context), and a
  merge field or tag inside markup (``<a href="{{ first_name }}">``) is
  re-sanitized after merging, since nh3 ran on the template before any lead
  data was in it.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import nh3
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType

from leadflow.core.errors import LeadflowError

MERGE_FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "email": "Email address",
    "title": "Job title",
    "company": "Company name",
    "owner_name": "Owner's name",
    "owner_email": "Owner's email",
    "unsubscribe_url": "Unsubscribe link",
    "org_name": "Your organization's name",
}
ALLOWED_FILTERS = frozenset({"default", "upper", "lower", "title", "capfirst"})
ALLOWED_TAGS = frozenset({"if", "elif", "else", "endif"})
_VAR_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(.*)$", re.S)
# One filter: |name, or |name:"text" / |name:'text' / |name:merge_field.
_FILTER_RE = re.compile(
    r"\|\s*(?P<name>\w+)\s*(?::\s*(?P<arg>\"[^\"{}%]*\"|'[^'{}%]*'|[A-Za-z_]\w*))?\s*"
)
FILTERS_WITH_ARGUMENT = frozenset({"default"})
_FILTER_HELP = (
    'filters: |default:"text" (or |default:another_field), |upper, |lower, |title, |capfirst'
)
_IF_WORDS = frozenset({"not", "and", "or"})
MAX_IF_DEPTH = 20

SAFE_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "u", "s", "p", "br", "hr", "div", "span", "small",
        "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
        "table", "thead", "tbody", "tfoot", "tr", "td", "th", "img", "center", "sup", "sub",
    }
)  # fmt: skip
SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "width"},
    "table": {"width", "align", "cellpadding", "cellspacing", "border"},
    "*": {"style"},
}
SAFE_STYLES = frozenset(
    {
        "color", "background-color", "font-size", "font-weight", "font-style", "font-family",
        "text-align", "text-decoration", "line-height", "padding", "margin", "border",
        "width", "max-width", "height", "display",
    }
)  # fmt: skip


class TemplateInvalid(LeadflowError):
    """A template uses an unknown merge field, a forbidden tag, or broken syntax."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# What a browser ignores in a URL before reading its scheme: leading/trailing C0
# controls and spaces, and tabs/newlines anywhere (WHATWG URL parsing).
_URL_STRIP = "".join(map(chr, range(0x21)))
_URL_NEWLINES = str.maketrans("", "", "\t\n\r")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")


def url_scheme_allowed(url: str) -> bool:
    """True for a relative URL or an http(s)/mailto one, read the way a browser
    reads it (so " java\tscript:" counts as javascript:). ``url`` is the decoded
    attribute value."""
    match = _SCHEME_RE.match((url or "").strip(_URL_STRIP).translate(_URL_NEWLINES))
    return match is None or match.group(1).lower() in ALLOWED_URL_SCHEMES


def sanitize_html(body: str) -> str:
    """Strip everything unsafe (script, iframe, on* handlers, javascript: URLs)."""
    return nh3.clean(
        body or "",
        tags=set(SAFE_TAGS),
        attributes={k: set(v) for k, v in SAFE_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        filter_style_properties=set(SAFE_STYLES),
        link_rel=None,
        strip_comments=True,
    )


def _fields_help() -> str:
    return "merge fields: " + ", ".join(MERGE_FIELDS)


def _check_var(content: str, where: str) -> None:
    shown = f"{{{{ {content.strip()} }}}}"
    match = _VAR_RE.match(content)
    if not match or "." in match.group(1) or match.group(2).startswith("."):
        raise TemplateInvalid(
            f"{where}: {shown} is not a merge field. Write {{{{ field }}}} with one of the "
            f"{_fields_help()} (no dots or attributes)."
        )
    name, rest = match.group(1), match.group(2).rstrip()
    if name not in MERGE_FIELDS:
        raise TemplateInvalid(
            f"{where}: unknown merge field {{{{ {name} }}}}; use one of the {_fields_help()}."
        )
    position = 0
    while position < len(rest):
        item = _FILTER_RE.match(rest, position)
        if item is None or item.end() == position:
            raise TemplateInvalid(
                f"{where}: {shown} has a filter that cannot be read; allowed {_FILTER_HELP}."
            )
        flt, arg = item.group("name"), item.group("arg")
        if flt not in ALLOWED_FILTERS:
            raise TemplateInvalid(f"{where}: the filter |{flt} is not allowed; {_FILTER_HELP}.")
        if arg is not None and flt not in FILTERS_WITH_ARGUMENT:
            raise TemplateInvalid(f"{where}: the filter |{flt} takes no argument (in {shown}).")
        if arg is not None and arg[0] not in "\"'" and arg not in MERGE_FIELDS:
            raise TemplateInvalid(
                f"{where}: in {shown}, |{flt}:{arg} names no merge field; quote a text "
                f'(|{flt}:"our team") or use one of the {_fields_help()}.'
            )
        position = item.end()


def _check_block(content: str, where: str) -> None:
    words = content.split()
    tag = words[0] if words else ""
    if tag not in ALLOWED_TAGS:
        raise TemplateInvalid(
            f"{where}: the tag {{% {tag} %}} is not allowed (only if / else / endif)."
        )
    for word in words[1:]:
        if word not in _IF_WORDS and word not in MERGE_FIELDS:
            raise TemplateInvalid(
                f"{where}: {{% {content.strip()} %}} may only test merge fields (with not, "
                f"and, or); {word!r} is none of the {_fields_help()}."
            )


def _check(source: str, where: str) -> None:
    depth = 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.VAR:
            _check_var(token.contents, where)
        elif token.token_type == TokenType.BLOCK:
            _check_block(token.contents, where)
            # Django's parser and renderer recurse once per open {% if %}.
            tag = token.contents.split()[0]
            depth += {"if": 1, "endif": -1}.get(tag, 0)
            if depth > MAX_IF_DEPTH:
                raise TemplateInvalid(
                    f"{where}: {{% if %}} blocks are nested too deeply "
                    f"(at most {MAX_IF_DEPTH} levels)."
                )
        elif token.token_type == TokenType.TEXT and (
            "{{" in token.contents or "{%" in token.contents
        ):
            raise TemplateInvalid(f"{where}: a {{{{ or {{% is not closed.")


@lru_cache(maxsize=1)
def _engine() -> Engine:
    # A private engine: no loaders, no libraries, no debug; the whitelist above
    # already limits what may reach it.
    return Engine(libraries={}, loaders=[], debug=False, string_if_invalid="")


def _compile(source: str, where: str):
    _check(source, where)
    try:
        return _engine().from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"{where}: {exc}") from exc


def validate_template(subject: str, body: str, text: str = "") -> None:
    """Raise TemplateInvalid when the subject, HTML body or text part is not a valid template."""
    if not (subject or "").strip():
        raise TemplateInvalid("Subject: a subject is required.")
    if "\n" in subject or "\r" in subject:
        raise TemplateInvalid("Subject: must be one line.")
    _compile(subject, "Subject")
    _compile(body or "", "Body")
    if text:
        _compile(text, "Text part")


class _TextExtractor(HTMLParser):
    """HTML → readable plain text: paragraphs, line breaks, list bullets, link URLs."""

    BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(body: str) -> str:
    parser = _TextExtractor()
    parser.feed(body or "")
    parser.close()
    return _tidy("".join(parser.parts))


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def merge_context(*, lead: Any, organization: Any, unsubscribe_url: str = "") -> dict[str, str]:
    """The merge fields of one lead (a lead may be None for a test send without one)."""
    owner = getattr(lead, "owner", None) if lead is not None else None
    owner_user = getattr(owner, "user", None)
    company = ""
    if lead is not None:
        company = (lead.company.name if lead.company_id and lead.company else "") or (
            lead.company_name
        )
    return {
        "first_name": getattr(lead, "first_name", "") or "",
        "last_name": getattr(lead, "last_name", "") or "",
        "full_name": getattr(lead, "full_name", "") or "",
        "email": getattr(lead, "email", "") or "",
        "title": getattr(lead, "title", "") or "",
        "company": company or "",
        "owner_name": owner_user.display_name if owner_user else "",
        "owner_email": owner_user.email if owner_user else "",
        "unsubscribe_url": unsubscribe_url,
        "org_name": getattr(organization, "name", "") or "",
    }


@lru_cache(maxsize=512)
def _compiled(source: str, where: str):
    return _compile(source, where)


@lru_cache(maxsize=512)
def _text_template(body_html: str):
    """The text part of an HTML-only template, converted once from the template
    source rather than per message from the rendered HTML (the HTML parser cost
    more than rendering). None when the converted text is not a valid template
    (e.g. braces spelled as entities): then each message converts its HTML."""
    try:
        return _compile(html_to_text(body_html), "Text part")
    except TemplateInvalid:
        return None


# A merge field or tag inside a tag; the unsubscribe link is ours, not lead data.
_MARKUP_WITH_TEMPLATE_RE = re.compile(r"<[^>]*\{(?:%|\{(?!\s*unsubscribe_url\s*\}\}))")


@lru_cache(maxsize=512)
def _sanitize_after_merge(body_html: str) -> bool:
    """Whether the merged HTML of this source must be sanitized again: a merge
    field or tag sits inside markup (an attribute: merged text there can form a
    javascript: URL), or the source itself is not clean (not saved through
    template_save). Merge fields in text are autoescaped and cannot form markup."""
    return bool(_MARKUP_WITH_TEMPLATE_RE.search(body_html)) or sanitize_html(body_html) != body_html


def _plain(value: str) -> str:
    # Template.render() returns a SafeString; merged lead data must never reach a
    # page marked safe (str() of a SafeString is itself).
    return str.__str__(value)


def render_parts(*, subject: str, body_html: str, body_text: str, context: dict) -> Rendered:
    """Render stored (already validated) template text with a merge context.

    The parts are plain strings, never marked safe: whoever shows them escapes
    them for their context. The HTML is sanitized again after merging when a
    merge field could have placed lead data in an attribute (a URL)."""
    plain = Context(context, autoescape=False)
    out_subject = " ".join(_compiled(subject, "Subject").render(plain).split())
    out_html = _plain(_compiled(body_html, "Body").render(Context(context, autoescape=True)))
    if _sanitize_after_merge(body_html):
        out_html = sanitize_html(out_html)
    if body_text:
        out_text = _plain(_compiled(body_text, "Text part").render(plain))
    elif (derived := _text_template(body_html)) is not None:
        out_text = _plain(_tidy(derived.render(plain)))
    else:
        out_text = html_to_text(out_html)
    return Rendered(subject=_plain(out_subject[:300]), html=out_html, text=out_text)


def render_message(*, template: Any, lead: Any, context_extra: dict | None = None) -> Rendered:
    """Render a template for one lead; context_extra overrides merge fields
    (the sender passes the real unsubscribe_url)."""
    organization = getattr(lead, "organization", None) or template.organization
    context = merge_context(lead=lead, organization=organization)
    context.update(context_extra or {})
    return render_parts(
        subject=template.subject,
        body_html=template.body_html,
        body_text=template.body_text,
        context=context,
    )


_HREF_RE = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)


def track_links(html: str, *, tracked_url, skip: set[str]) -> tuple[str, list[str]]:
    """Replace every http(s) link of the HTML by tracked_url(index); return the new
    HTML and the list of original URLs (index → URL). URLs in ``skip`` (the
    unsubscribe link) stay as they are; a link with any other scheme than
    http(s)/mailto (javascript:, data:, ...) loses its target."""
    links: list[str] = []

    def replace(match: re.Match) -> str:
        url = html_lib.unescape(match.group(2))
        if not url_scheme_allowed(url):
            return f"{match.group(1)}#{match.group(3)}"
        if not url.lower().startswith(("http://", "https://")) or url in skip:
            return match.group(0)
        if url not in links:
            links.append(url)
        tracked = html_lib.escape(tracked_url(links.index(url)), quote=True)
        return f"{match.group(1)}{tracked}{match.group(3)}"

    return _HREF_RE.sub(replace, html), links
