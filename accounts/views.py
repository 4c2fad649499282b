"""Landing, organization switcher, members and invitations, organization settings."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.decorators import authenticated_view, org_view, public_view
from accounts.forms import (
    PENDING_INVITATION_SESSION_KEY,
    InvitationForm,
    OrganizationCreateForm,
    OrganizationSettingsForm,
    RoleForm,
)
from accounts.models import Invitation, Membership
from accounts.panels import home_for, panels_for
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404


@public_view
def landing(request):
    return render(request, "landing.html")


@authenticated_view
def home(request):
    """Where sign-in lands: the last organization used, else the switcher."""
    memberships = list(selectors.user_memberships(user=request.user))
    last = next(
        (m for m in memberships if m.organization_id == request.user.last_organization_id), None
    )
    chosen = last or (memberships[0] if len(memberships) == 1 else None)
    if chosen:
        return redirect("accounts:org_home", org_slug=chosen.organization.slug)
    return redirect("accounts:org_list")


@authenticated_view
def org_list(request):
    memberships = selectors.user_memberships(user=request.user)
    return render(request, "accounts/organization_list.html", {"memberships": memberships})


@authenticated_view
def org_create(request):
    form = OrganizationCreateForm(request.POST or None, submit_label="Create organization")
    if request.method == "POST" and form.is_valid():
        org = services.organization_create(
            name=form.cleaned_data["name"],
            owner=request.user,
            business_type=form.cleaned_data["business_type"],
        )
        services.organization_update(
            organization=org, name=org.name, timezone_name=form.cleaned_data["timezone"]
        )
        messages.success(request, f"{org.name} is ready. Invite your colleagues next.")
        return redirect("accounts:org_home", org_slug=org.slug)
    return render(request, "accounts/organization_create.html", {"form": form})


@org_view(Perm.VIEW_DASHBOARD)
def org_home(request):
    services.user_set_last_organization(user=request.user, organization=request.organization)
    if (home := home_for(request.membership.role)) and "overview" not in request.GET:
        return redirect(home, org_slug=request.organization.slug)
    members = selectors.organization_members(organization=request.organization)
    return render(
        request,
        "accounts/organization_home.html",
        {
            "member_count": sum(1 for m in members if m.is_active),
            "open_invitation_count": selectors.open_invitations().count(),
            "panels": panels_for(request),
        },
    )


@org_view(Perm.MANAGE_ORGANIZATION)
def org_settings(request):
    org = request.organization
    form = OrganizationSettingsForm(
        request.POST or None, instance=org, submit_label="Save settings"
    )
    if request.method == "POST" and form.is_valid():
        services.organization_update(
            organization=org,
            name=form.cleaned_data["name"],
            timezone_name=form.cleaned_data["timezone"],
            require_two_factor=form.cleaned_data["require_two_factor"],
        )
        messages.success(request, "Settings saved.")
        return redirect("accounts:org_settings", org_slug=org.slug)
    return render(request, "accounts/organization_settings.html", {"form": form})


# --- Members & invitations ---------------------------------------------------


@org_view(Perm.MANAGE_MEMBERS)
def members(request):
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.invitation_create(
                organization=request.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except LeadflowError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("accounts:members", org_slug=request.organization.slug)
    context = {
        "form": form,
        "memberships": selectors.organization_members(organization=request.organization),
        "invitations": selectors.open_invitations(),
        "role_form": RoleForm(),
    }
    return render(request, "accounts/member_list.html", context, status=400 if form.errors else 200)


def _org_membership(request, membership_id: int) -> Membership:
    # Memberships aren't scoped (see the model), so filter by the organization here.
    return get_object_or_404(Membership, pk=membership_id, organization=request.organization)


def _member_action(request, action) -> object:
    try:
        action()
    except LeadflowError as exc:
        messages.error(request, str(exc))
    return redirect("accounts:members", org_slug=request.organization.slug)


@require_POST
@org_view(Perm.MANAGE_MEMBERS)
def member_role(request, membership_id: int):
    membership = _org_membership(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("accounts:members", org_slug=request.organization.slug)

    def change():
        services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display()}."
        )

    return _member_action(request, change)


@require_POST
@org_view(Perm.MANAGE_MEMBERS)
def member_active(request, membership_id: int):
    membership = _org_membership(request, membership_id)
    active = request.POST.get("active") == "1"

    def toggle():
        services.membership_set_active(membership=membership, active=active)
        verb = "reactivated" if active else "deactivated"
        messages.success(request, f"{membership.user.email} was {verb}.")

    return _member_action(request, toggle)


@require_POST
@org_view(Perm.MANAGE_MEMBERS)
def invitation_revoke(request, invitation_id: int):
    invitation = get_tenant_object_or_404(Invitation, pk=invitation_id)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("accounts:members", org_slug=request.organization.slug)


@require_POST
@org_view(Perm.MANAGE_MEMBERS)
def invitation_resend(request, invitation_id: int):
    invitation = get_tenant_object_or_404(Invitation, pk=invitation_id)

    def resend():
        services.invitation_create(
            organization=request.organization,
            email=invitation.email,
            role=invitation.role,
            invited_by=request.user,
        )
        messages.success(request, f"Invitation re-sent to {invitation.email}.")

    return _member_action(request, resend)


@public_view
def invitation(request, token: str):
    """The link from the invitation email. GET shows it; POST (signed in) accepts it."""
    try:
        invitation = services.invitation_from_token(token)
    except services.InvitationError as exc:
        return render(request, "accounts/invitation.html", {"error": str(exc)}, status=410)
    context = {"invitation": invitation, "token": token}
    if not request.user.is_authenticated:
        # Remember the invitation so signing up joins this org instead of creating one.
        request.session[PENDING_INVITATION_SESSION_KEY] = token
        context["signup_url"] = reverse("account_signup") + f"?email={invitation.email}"
        context["login_url"] = reverse("account_login") + f"?next={request.path}"
        return render(request, "accounts/invitation.html", context)
    if request.method == "POST":
        try:
            services.invitation_accept(invitation=invitation, user=request.user)
        except services.InvitationError as exc:
            context["error"] = str(exc)
            return render(request, "accounts/invitation.html", context, status=403)
        messages.success(request, f"Welcome to {invitation.organization.name}!")
        return redirect("accounts:org_home", org_slug=invitation.organization.slug)
    if request.user.email.lower() != invitation.email.lower():
        context["error"] = (
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{request.user.email}. Sign out and sign in with the invited address."
        )
    return render(request, "accounts/invitation.html", context)
