"""Email previews served as documents of their own.

An email needs inline CSS and remote images, which the application's policy
(no 'unsafe-inline', images from 'self') forbids — and a ``srcdoc`` frame
inherits its parent's policy, so the email lost its styling there. Each preview
is therefore its own URL, answered under EMAIL_DOCUMENT_POLICY: inline styles
and images only, no script at all, and a sandbox (an opaque origin) on top of
the frame's own ``sandbox=""``.

The editor previews unsaved text too; a URL cannot carry it, so the live
preview keeps the last draft each person rendered for each template in the
cache (organization + user + template, overwritten on each keystroke, expiring
on its own) and the frame loads it by URL.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json

from csp.constants import NONE, UNSAFE_INLINE
from django.core.cache import cache

EMAIL_DOCUMENT_POLICY = {
    "default-src": [NONE],
    "style-src": [UNSAFE_INLINE],
    "img-src": ["https:", "http:", "data:"],
    "font-src": ["https:", "data:"],
    "sandbox": True,
}
DRAFT_TIMEOUT = 60 * 60  # an editor left open for an hour reloads its draft on the next key


def email_document(html: str, *, title: str = "") -> str:
    """A whole HTML document: a sent email already is one; a template body is
    wrapped. ``html`` is the sanitized email markup, served as the frame's own
    document; the title is text and is escaped."""
    if html.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return html
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html_lib.escape(title)}</title></head>\n<body>{html}</body></html>\n"
    )


def _draft_key(*, organization_id: int, user_id: int, slot: str) -> str:
    return f"nurture:preview-draft:{organization_id}:{user_id}:{slot}"


def draft_slot(template_id: int | None) -> str:
    """Which editor a draft belongs to: a template's id, or "new"."""
    return str(template_id) if template_id else "new"


def draft_store(
    *, organization_id: int, user_id: int, slot: str, subject: str, body_html: str, body_text: str
) -> str:
    """Keep a validated draft for this person's editor; return its version (a
    digest the frame URL carries, so each draft is a URL of its own)."""
    draft = {"subject": subject, "body_html": body_html, "body_text": body_text}
    key = _draft_key(organization_id=organization_id, user_id=user_id, slot=slot)
    cache.set(key, draft, DRAFT_TIMEOUT)
    return hashlib.sha256(json.dumps(draft, sort_keys=True).encode()).hexdigest()[:16]


def draft_load(*, organization_id: int, user_id: int, slot: str) -> dict[str, str] | None:
    """This person's last draft for the editor, or None when it has expired."""
    return cache.get(_draft_key(organization_id=organization_id, user_id=user_id, slot=slot))
