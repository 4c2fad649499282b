"""Webhook settings (MANAGE_ROUTING): endpoints that receive signed
stage-change events, their secrets (shown once), test events, and the
delivery log with a payload viewer and redeliver."""

from __future__ import annotations

import json

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib import messages
from django.db.models import Count, Max, Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.formpage import form_page
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.models import LeadStage
from pipeline.models import (
    WEBHOOK_ALL_EVENTS,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from pipeline.services.webhooks import (
    MAX_ATTEMPTS,
    WebhookError,
    webhook_endpoint_delete,
    webhook_endpoint_save,
    webhook_redeliver,
    webhook_secret_rotate,
    webhook_send_test,
    webhook_url_clean,
)

LOG_PAGE_SIZE = 50
_REVEAL_KEY = "pipeline_webhook_secret"

EVENT_CHOICES = (
    [(WEBHOOK_ALL_EVENTS, "Every stage change")]
    + [(value, f"Reached {label}") for value, label in LeadStage.choices]
    + [
        ("lead.created", "Lead created"),
        ("lead.updated", "Lead updated (the changed fields)"),
        ("lead.merged", "Leads merged"),
        ("lead.deleted", "Lead deleted"),
    ]
)


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        help_text="We POST JSON here; it must answer 2xx within 5 seconds.",
        widget=forms.URLInput(attrs={"placeholder": "https://crm.example.com/hooks/leadflow"}),
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        initial=[WEBHOOK_ALL_EVENTS],
        help_text="Send every stage change, or only when a lead reaches the chosen stages;"
        " and the lead record events you tick.",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_url(self) -> str:
        try:
            return webhook_url_clean(self.cleaned_data["url"])
        except WebhookError as exc:
            raise forms.ValidationError(str(exc)) from exc


def _to_detail(request, endpoint: WebhookEndpoint):
    return redirect(
        "pipeline:webhook_detail", org_slug=request.organization.slug, webhook_id=endpoint.pk
    )


def _reveal(request, endpoint: WebhookEndpoint, secret: str) -> None:
    # Shown once, on the next page load: the session holds it until then.
    request.session[_REVEAL_KEY] = {"id": endpoint.pk, "secret": secret}


def _form_page(request, *, endpoint: WebhookEndpoint, title: str):
    initial = None
    if endpoint.pk:
        fields = ("url", "description", "events", "is_active")
        initial = {name: getattr(endpoint, name) for name in fields}
    creating = endpoint.pk is None

    def saved(_):
        if not creating:
            return "Endpoint saved.", _to_detail(request, endpoint)
        _reveal(request, endpoint, endpoint.secret)
        return "Endpoint added. Copy its signing secret now.", _to_detail(request, endpoint)

    return form_page(
        request,
        WebhookEndpointForm(request.POST or None, initial=initial),
        save=lambda form: webhook_endpoint_save(
            endpoint=endpoint, actor=request.membership, **form.cleaned_data
        ),
        saved=saved,
        template="pipeline/webhook_form.html",
        context={"title": title, "endpoint": endpoint},
    )


@org_view(Perm.MANAGE_ROUTING)
def webhook_list(request):
    endpoints = WebhookEndpoint.objects.annotate(
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
        last_delivery_at=Max("deliveries__created_at"),
    ).order_by("created_at", "pk")
    return render(request, "pipeline/webhook_list.html", {"endpoints": endpoints})


@org_view(Perm.MANAGE_ROUTING)
def webhook_create(request):
    endpoint = WebhookEndpoint(organization=request.organization)
    return _form_page(request, endpoint=endpoint, title="New webhook endpoint")


@org_view(Perm.MANAGE_ROUTING)
def webhook_edit(request, webhook_id: int):
    endpoint = get_tenant_object_or_404(WebhookEndpoint, pk=webhook_id)
    return _form_page(request, endpoint=endpoint, title="Edit webhook endpoint")


@org_view(Perm.MANAGE_ROUTING)
def webhook_detail(request, webhook_id: int):
    """The endpoint, its secret once after creation/rotation, and its delivery log
    (the log alone for htmx, which refreshes it while deliveries are pending)."""
    endpoint = get_tenant_object_or_404(WebhookEndpoint, pk=webhook_id)
    status = request.GET.get("status", "")
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    deliveries = list(deliveries.order_by("-created_at", "-pk")[:LOG_PAGE_SIZE])
    context = {
        "endpoint": endpoint,
        "deliveries": deliveries,
        "status": status,
        "statuses": DeliveryStatus.choices,
        "any_pending": any(d.status == DeliveryStatus.PENDING for d in deliveries),
        "max_attempts": MAX_ATTEMPTS,
        "event_names": [dict(EVENT_CHOICES).get(e, e) for e in endpoint.events],
    }
    if request.htmx:
        return render(request, "pipeline/webhook_detail.html#delivery-log", context)
    revealed = request.session.get(_REVEAL_KEY)
    if revealed and revealed.get("id") == endpoint.pk:
        context["revealed_secret"] = request.session.pop(_REVEAL_KEY)["secret"]
    return render(request, "pipeline/webhook_detail.html", context)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def webhook_rotate(request, webhook_id: int):
    endpoint = get_tenant_object_or_404(WebhookEndpoint, pk=webhook_id)
    _reveal(request, endpoint, webhook_secret_rotate(endpoint=endpoint))
    messages.success(
        request, "New secret generated: update your receiver, the old one no longer signs."
    )
    return _to_detail(request, endpoint)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def webhook_test(request, webhook_id: int):
    endpoint = get_tenant_object_or_404(WebhookEndpoint, pk=webhook_id)
    webhook_send_test(endpoint=endpoint)
    messages.success(request, "Test event queued; its result appears in the log below.")
    return _to_detail(request, endpoint)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def webhook_delete(request, webhook_id: int):
    endpoint = get_tenant_object_or_404(WebhookEndpoint, pk=webhook_id)
    webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.url} deleted with its delivery log.")
    return redirect("pipeline:webhook_list", org_slug=request.organization.slug)


def _delivery_or_404(delivery_id: int) -> WebhookDelivery:
    return get_tenant_object_or_404(
        WebhookDelivery.objects.select_related("endpoint"), pk=delivery_id
    )


@org_view(Perm.MANAGE_ROUTING)
def webhook_delivery(request, delivery_id: int):
    delivery = _delivery_or_404(delivery_id)
    context = {
        "delivery": delivery,
        "endpoint": delivery.endpoint,
        "payload": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
        "max_attempts": MAX_ATTEMPTS,
    }
    return render(request, "pipeline/webhook_delivery.html", context)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def webhook_delivery_redeliver(request, delivery_id: int):
    delivery = _delivery_or_404(delivery_id)
    try:
        webhook_redeliver(delivery=delivery)
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Delivery queued again with the same event id.")
    return _to_detail(request, delivery.endpoint)
