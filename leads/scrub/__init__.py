"""Lead data scrubbing: normalise and grade captured leads.

Pure Python (no models, no DB, no network) and fast enough for CSV imports:
every lookup table is built at import time and hot paths are memoised.

Entry point::

    from leads.scrub import scrub_lead

    result = scrub_lead({"email": "Ann@GMIAL.com", "phone": "(415) 555-2671",
                         "country": "U.S.A."})
    result.quality            # "ok" | "suspect" | "junk"
    result.cleaned            # {"email": "ann@gmail.com", "phone": "+14155552671",
                              #  "country": "US"}
    result.reasons_as_dicts() # [{"code": "email_typo_corrected", ...}]

Modules: ``reasons`` (codes + the severity table), ``emails``, ``phones``,
``countries``, ``names``, ``lead`` (``scrub_lead``), ``data`` (static tables),
``text`` (small helpers).
"""

from .countries import normalize_country
from .emails import EmailCheck, email_domain, is_disposable_domain, is_free_mail, normalize_email
from .lead import FIELD_MAX_LENGTH, ScrubResult, scrub_lead
from .names import is_keyboard_mash, normalize_person_name
from .phones import PhoneCheck, normalize_phone
from .reasons import QUALITIES, SEVERITY, Quality, Reason, ReasonCode

__all__ = [
    "FIELD_MAX_LENGTH",
    "QUALITIES",
    "SEVERITY",
    "EmailCheck",
    "PhoneCheck",
    "Quality",
    "Reason",
    "ReasonCode",
    "ScrubResult",
    "email_domain",
    "is_disposable_domain",
    "is_free_mail",
    "is_keyboard_mash",
    "normalize_country",
    "normalize_email",
    "normalize_person_name",
    "normalize_phone",
    "scrub_lead",
]
