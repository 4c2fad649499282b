"""Companies (B2B accounts) and campaigns (lead sources with cost)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.pagination import request_page
from leadflow.tenancy import get_tenant_object_or_404
from leads import selectors
from leads.filters import CompanyFilter
from leads.forms import CampaignForm
from leads.models import Campaign, Company
from leads.services.campaigns import campaign_save


@org_view(Perm.VIEW_LEADS)
def company_list(request):
    companies = selectors.company_list(membership=request.membership)
    company_filter = CompanyFilter(request.GET, queryset=companies)
    page = request_page(request, company_filter.qs, per_page=50)
    return render(request, "leads/company_list.html", {"filter": company_filter, "page": page})


@org_view(Perm.VIEW_LEADS)
def company_detail(request, company_id: int):
    company = get_tenant_object_or_404(Company, pk=company_id)
    leads = (
        selectors.visible_leads(membership=request.membership)
        .filter(company=company)
        .select_related("owner__user")
        .order_by("last_name", "first_name")[:500]
    )
    return render(request, "leads/company_detail.html", {"company": company, "leads": leads})


@org_view(Perm.MANAGE_CAMPAIGNS)
def campaign_list(request):
    campaigns = selectors.campaign_list_with_cost_per_lead()
    return render(request, "leads/campaign_list.html", {"campaigns": campaigns})


def _campaign_form(request, campaign: Campaign | None):
    form = CampaignForm(request.POST or None, instance=campaign, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        obj = campaign_save(campaign=form.save(commit=False), organization=request.organization)
        messages.success(request, f"Campaign “{obj.name}” saved.")
        return redirect("leads:campaign_list", org_slug=request.organization.slug)
    return render(
        request,
        "leads/campaign_form.html",
        {"form": form, "campaign": campaign},
        status=400 if form.errors else 200,
    )


@org_view(Perm.MANAGE_CAMPAIGNS)
def campaign_create(request):
    return _campaign_form(request, None)


@org_view(Perm.MANAGE_CAMPAIGNS)
def campaign_edit(request, campaign_id: int):
    return _campaign_form(request, get_tenant_object_or_404(Campaign, pk=campaign_id))
