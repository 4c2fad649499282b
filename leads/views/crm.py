"""Companies (B2B accounts) and campaigns (lead sources with cost)."""

from __future__ import annotations

from django.shortcuts import redirect, render

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.formpage import form_page
from leadflow.core.pagination import request_page
from leadflow.core.tenancy import get_tenant_object_or_404
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
    def save(form):
        return campaign_save(campaign=form.save(commit=False), organization=request.organization)

    return form_page(
        request,
        CampaignForm(request.POST or None, instance=campaign, organization=request.organization),
        save=save,
        saved=lambda obj: (
            f"Campaign “{obj.name}” saved.",
            redirect("leads:campaign_list", org_slug=request.organization.slug),
        ),
        template="leads/campaign_form.html",
        context={"campaign": campaign},
    )


@org_view(Perm.MANAGE_CAMPAIGNS)
def campaign_create(request):
    return _campaign_form(request, None)


@org_view(Perm.MANAGE_CAMPAIGNS)
def campaign_edit(request, campaign_id: int):
    return _campaign_form(request, get_tenant_object_or_404(Campaign, pk=campaign_id))
