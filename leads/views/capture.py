"""The public hosted form /f/<form_key>/: shown in an iframe on customers' sites
or posted to straight from their own HTML.

It is public, so it resolves its tenant from the unguessable key and opens that
scope itself. CSRF protection can't apply to posts from other sites; the
honeypot, the signed fill-time token and the per-IP rate limit stand in for it.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import is_ratelimited

from accounts.decorators import public_view
from leadflow.core.badinput import DEPTH_MESSAGE, TooDeep, json_problem, query_problem
from leadflow.core.clientip import client_ip
from leadflow.core.dbfaults import DB_ERRORS
from leadflow.core.tenancy import tenant_scope
from leads.forms_capture import PublicCaptureForm, honeypot_name
from leads.models import CaptureForm
from leads.services import capture
from leads.services.capture_forms import PAGE_URL_KEY, TOKEN_KEY

log = logging.getLogger(__name__)

DEFAULT_RATE = "10/m"


def _is_script(request: HttpRequest) -> bool:
    """A fetch/XHR call (as opposed to a browser navigating with a form post)."""
    return (
        request.headers.get("Sec-Fetch-Mode") == "cors"
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
        or _wants_json(request)
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "") or (
        request.content_type == "application/json"
    )


def _preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, Accept, X-Requested-With"
    response["Access-Control-Max-Age"] = "86400"
    return response


def _answer(request, template: str, context: dict, *, status: int = 200, data=None):
    """HTML for a browser, JSON for a script that asked for it."""
    if _wants_json(request):
        return JsonResponse(data or {}, status=status)
    return render(request, f"leads/public/{template}", context, status=status)


def _unavailable(request, status: int, form: CaptureForm | None = None):
    title, message = (
        ("This form is closed", "It is no longer taking submissions. Thank you for your interest.")
        if status == 410
        else ("Form not found", "Check the link you followed; this form does not exist.")
    )
    return _answer(
        request,
        "form_unavailable.html",
        {"title": title, "message": message, "capture_form": form},
        status=status,
        data={"ok": False, "error": message},
    )


def _page_url(request: HttpRequest, posted: str | None) -> str:
    """The page the visitor was on: posted by the hosted page, else the Referer —
    unless that is the hosted page itself."""
    for candidate in (posted, request.headers.get("Referer")):
        candidate = (candidate or "").strip()
        if not candidate:
            continue
        parts = urlsplit(candidate)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        if parts.path == request.path and parts.netloc == request.get_host():
            continue
        return candidate[:2000]
    return ""


def _rate_limited(request: HttpRequest, form: CaptureForm) -> bool:
    rate = getattr(settings, "LEADS_CAPTURE_RATE_LIMIT", DEFAULT_RATE)
    if not rate or capture.rate_limit_breaker.is_open():
        return False  # the cache just failed: no visitor waits on it again for a while
    try:
        return is_ratelimited(
            request,
            group="leads.capture",
            key=lambda group, req: f"{client_ip(req)}:{form.key}",
            rate=rate,
            method="POST",
            increment=True,
        )
    except Exception:  # an unreachable cache must not lose a lead: fail open
        capture.rate_limit_breaker.trip()
        log.warning("Rate-limit cache unavailable; letting submissions through", exc_info=True)
        return False


def _read_data(request: HttpRequest) -> QueryDict:
    """Form-encoded or multipart fields, or a flat JSON object from a script."""
    if request.content_type != "application/json":
        # NUL characters can't be stored (not even echoed in an error message): drop them.
        return _without_nul(request.POST)
    try:
        body = json.loads(request.body or b"{}")
    except RecursionError as exc:
        raise TooDeep(DEPTH_MESSAGE) from exc
    if not isinstance(body, dict):
        raise ValueError("Send a JSON object of field names to values.")
    problem = json_problem(body, max_depth=2)  # field -> value or list of values
    if problem == DEPTH_MESSAGE:
        raise TooDeep("Send a flat JSON object of field names to values.")
    data = QueryDict(mutable=True)
    for key, value in body.items():
        values = value if isinstance(value, list) else [value]
        data.setlist(str(key), ["" if v is None else str(v) for v in values])
    data = _without_nul(data)
    if problem := query_problem(data.lists()):  # an unpaired surrogate: can't be stored
        raise ValueError(problem)
    return data


def _without_nul(data: QueryDict) -> QueryDict:
    if not any("\x00" in k or any("\x00" in v for v in vs) for k, vs in data.lists()):
        return data
    clean = QueryDict(mutable=True)
    for key, values in data.lists():
        clean.setlist(key.replace("\x00", ""), [v.replace("\x00", "") for v in values])
    return clean


def _context(request, form, fields, public_form, token: str) -> dict:
    return {
        "capture_form": form,
        "form": public_form,
        "honeypot": honeypot_name(fields),
        "token": token,
        "token_name": TOKEN_KEY,
        "page_url_name": PAGE_URL_KEY,
        "page_url": _page_url(request, request.GET.get(PAGE_URL_KEY)),
        "action": request.get_full_path(),
    }


def _show(request, hosted: capture.HostedForm):
    form, fields = hosted.form, hosted.fields
    if not form.is_active:
        return _unavailable(request, 410, form)
    public_form = PublicCaptureForm(
        fields=fields,
        consent_text=form.consent_text,
        initial=PublicCaptureForm.prefill(request.GET, fields),
    )
    token = capture.fill_token(form=form)
    return render(
        request, "leads/public/form_page.html", _context(request, form, fields, public_form, token)
    )


def _success(request, hosted: capture.HostedForm):
    form = hosted.form
    if _wants_json(request):
        return JsonResponse(
            {"ok": True, "message": form.success_message, "redirect_url": form.redirect_url}
        )
    if form.redirect_url:
        return redirect(form.redirect_url, permanent=False)
    # The thank-you page depends on the form alone: render it once per form version.
    if "success_html" not in hosted.memo:
        hosted.memo["success_html"] = render_to_string(
            "leads/public/form_success.html", {"capture_form": form}
        )
    return HttpResponse(hosted.memo["success_html"])


def _meta(request: HttpRequest, data: QueryDict | None) -> capture.SubmissionMeta:
    page_url = _page_url(request, data.get(PAGE_URL_KEY) if data is not None else None)
    return capture.SubmissionMeta(
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        referrer=request.headers.get("Referer", ""),
        page_url=page_url,
        utm=capture.utm_from(data, request.GET, page_url=page_url),
    )


def _receive(request, hosted: capture.HostedForm):
    form, fields = hosted.form, hosted.fields
    try:
        data = _read_data(request)
    except RequestDataTooBig:
        limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        message = f"That was more than we can accept (over {limit_kb} KB). Please shorten it."
        capture.submission_store_unreadable(
            form=form, meta=_meta(request, None), code="payload_too_large", message=message
        )
        return _answer(
            request,
            "form_problem.html",
            {"capture_form": form, "title": "Too much text", "message": message},
            status=413,
            data={"ok": False, "error": message},
        )
    except (SuspiciousOperation, MultiPartParserError, ValueError, UnicodeDecodeError) as exc:
        message = "We could not read that submission. Please try again."
        detail = str(exc) if isinstance(exc, ValueError) else message
        capture.submission_store_unreadable(
            form=form, meta=_meta(request, None), code="unreadable", message=detail[:300]
        )
        return _answer(
            request,
            "form_problem.html",
            {"capture_form": form, "title": "Something went wrong", "message": message},
            status=400,
            data={"ok": False, "error": detail},
        )

    submission = capture.submission_store(
        form=form, payload=capture.payload_from_data(data), meta=_meta(request, data)
    )
    public_form = PublicCaptureForm(data, fields=fields, consent_text=form.consent_text)
    errors = None if public_form.is_valid() else public_form.errors
    verdict = capture.submission_screen(
        form=form,
        submission=submission,
        honeypot_name=honeypot_name(fields),
        token=data.get(TOKEN_KEY),
        rate_limited=_rate_limited(request, form),
        errors={k: list(v) for k, v in errors.items()} if errors else None,
        now=timezone.now(),
    )
    if verdict in (capture.Verdict.ACCEPTED, capture.Verdict.SPAM):
        return _success(request, hosted)
    if verdict == capture.Verdict.GONE:
        return _unavailable(request, 410, form)
    if verdict == capture.Verdict.RATE_LIMITED:
        message = "You have sent this form several times in a row. Please wait a minute."
        response = _answer(
            request,
            "form_problem.html",
            {"capture_form": form, "title": "Slow down a little", "message": message},
            status=429,
            data={"ok": False, "error": message},
        )
        response["Retry-After"] = "60"
        return response
    if _wants_json(request):
        return JsonResponse({"ok": False, "errors": public_form.errors.get_json_data()}, status=400)
    # Keep the original token: the visitor's fill time started when the page was shown.
    token = data.get(TOKEN_KEY) or capture.fill_token(form=form)
    return render(
        request, "leads/public/form_page.html", _context(request, form, fields, public_form, token)
    )


RETRY_AFTER_SECONDS = 60
RETRY_MESSAGE = (
    "We could not save your answers just now. Please try again in a minute; "
    "they are still filled in below."
)


def _try_again(request: HttpRequest, hosted: capture.HostedForm | None):
    """The database is unreachable: 503, and the visitor's answers kept for a retry.
    Built from the in-process copy of the form; nothing here reads the database."""
    data = request.POST if request.method == "POST" else QueryDict()
    if _wants_json(request):
        response = JsonResponse({"ok": False, "error": RETRY_MESSAGE}, status=503)
    elif hosted is not None and request.method == "POST":
        form, fields = hosted.form, hosted.fields
        public_form = PublicCaptureForm(data, fields=fields, consent_text=form.consent_text)
        token = data.get(TOKEN_KEY) or capture.fill_token(form=form)
        context = _context(request, form, fields, public_form, token)
        context["retry_message"] = RETRY_MESSAGE
        response = HttpResponse(
            render_to_string("leads/public/form_page.html", context), status=503
        )
    else:
        # The form's definition is not at hand: echo what was sent, to send again.
        posted = [(k, v) for k, values in data.lists() for v in values if v]
        # Rendered without the request: no context processor (sessions, users) runs.
        html = render_to_string(
            "leads/public/form_retry.html",
            {
                "capture_form": hosted.form if hosted else None,
                "posted": [(k, v) for k, v in posted if k not in (TOKEN_KEY, PAGE_URL_KEY)],
                "hidden": [(k, v) for k, v in posted if k in (TOKEN_KEY, PAGE_URL_KEY)],
                "action": request.get_full_path(),
                "message": RETRY_MESSAGE
                if posted
                else "This form is briefly unavailable. Please try again in a minute.",
            },
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _respond(request: HttpRequest, form_key: str) -> HttpResponse:
    try:
        hosted = capture.hosted_form(key=form_key)
    except DB_ERRORS:
        log.warning("Database unavailable; hosted form %s answered 503", form_key, exc_info=True)
        hosted = capture.hosted_form_last_known(key=form_key)
        if hosted is None or request.method == "POST":
            return _try_again(request, hosted)
        # GET: the page can still be shown; its post will be retried if need be.
    if hosted is None:
        return _unavailable(request, 404)
    with tenant_scope(hosted.form.organization_id):
        try:
            if request.method == "POST":
                return _receive(request, hosted)
            return _show(request, hosted)
        except DB_ERRORS:
            log.warning(
                "Database unavailable; hosted form %s answered 503", form_key, exc_info=True
            )
            return _try_again(request, hosted)


@public_view
@csrf_exempt
@xframe_options_exempt
def hosted_form(request: HttpRequest, form_key: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight()
    if request.method not in ("GET", "HEAD", "POST"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD, POST, OPTIONS"
        return response
    response = _respond(request, form_key)
    if _is_script(request):
        response["Access-Control-Allow-Origin"] = "*"
    patch_vary_headers(response, ("Accept", "Sec-Fetch-Mode", "X-Requested-With"))
    return response
