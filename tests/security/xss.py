"""XSS payloads and a checker that finds what a payload turned into markup.

Payloads call ``lfxss(n)``. A payload that is escaped shows as text and the
checker does not mind it; it fails on what only an unescaped payload makes:

- an event-handler attribute (``on*``, htmx ``hx-on*``) whose code is a payload;
- a ``<script>`` whose code is a payload (JSON data scripts are data, not code);
- a URL attribute with a ``javascript:``/``vbscript:``/``data:text/html`` target,
  read the way a browser reads it (whoever put it there);
- the same inside every ``srcdoc`` (its decoded value is a document of its own).
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

MARK = "lfxss("
SCRIPT = "<script>lfxss(1)</script>"
BREAK_OUT = '"><img src=x onerror=lfxss(2)>'
JS_URL = "javascript:lfxss(3)//"
SVG = "<svg onload=lfxss(4)>"
SINGLE_QUOTE = "'><svg/onload=lfxss(5)>"
PAYLOADS = (SCRIPT, BREAK_OUT, JS_URL, SVG, SINGLE_QUOTE)
# All of them in one value: a javascript: URL whose code comments out the rest.
POLYGLOT = JS_URL + BREAK_OUT + SCRIPT + SVG + SINGLE_QUOTE

URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "ping"}
)
_BAD_SCHEME = re.compile(r"^(?:javascript|vbscript|data:text/html)", re.IGNORECASE)
_URL_IGNORED = "".join(map(chr, range(0x21)))


def payload_for(max_length: int | None, n: int = 0) -> str:
    """The polyglot when it fits, else one of the single payloads that fits (the
    n-th, so that short fields together still see each kind)."""
    if max_length is None or len(POLYGLOT) <= max_length:
        return POLYGLOT
    fitting = [p for p in PAYLOADS if len(p) <= max_length]
    return fitting[n % len(fitting)] if fitting else ""


def _url_is_script(value: str) -> bool:
    url = value.strip(_URL_IGNORED)
    url = re.sub(r"[\t\n\r]", "", url)
    return bool(_BAD_SCHEME.match(url))


class _Checker(HTMLParser):
    def __init__(self, where: str) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.problems: list[str] = []
        self._script: list[str] | None = None
        self._script_is_data = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            handler = name.startswith(("on", "hx-on")) and value.strip().startswith(MARK)
            if handler or (name in URL_ATTRIBUTES and _url_is_script(value)):
                self.problems.append(f"{self.where}: <{tag} {name}={value!r}>")
            elif name == "srcdoc":
                self.problems.extend(find_xss(value, where=f"{self.where} srcdoc"))
        if tag == "script":
            kind = (dict(attrs).get("type") or "").lower()
            self._script_is_data = kind.endswith("json")
            self._script = []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            code = "".join(self._script).strip()
            if not self._script_is_data and code.startswith(MARK):
                self.problems.append(f"{self.where}: <script>{code}</script>")
            self._script = None


def find_xss(html: str, *, where: str = "page") -> list[str]:
    """What a payload made into markup in this HTML (empty when all is escaped)."""
    checker = _Checker(where)
    checker.feed(html)
    checker.close()
    return checker.problems


_FRAME_SRC = re.compile(r"<iframe\b[^>]*\ssrc=\"([^\"]*)\"", re.IGNORECASE)


def frame_documents(client, page: str) -> list[str]:
    """The documents of a page's same-site frames (the email previews load
    their own URL), fetched with the page's client; each must answer 200."""
    documents = []
    for src in _FRAME_SRC.findall(page):
        url = html_lib.unescape(src)
        if url.startswith("/"):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            documents.append(response.content.decode())
    return documents
