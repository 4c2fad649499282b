"""Django admin for staff: sees across tenants, hence scopes are disabled here."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from accounts.models import Invitation, Membership, Organization, User
from leadflow.core.redirects import safe_next

_admin_password_login = admin.site.login


def admin_login(request, extra_context=None):
    """/admin/login/ takes no password: staff sign in through allauth's log-in,
    which has the brute-force limits (accounts.login_limits) and two-factor
    authentication. Signed in, the admin's own view answers (staff or not)."""
    if request.method == "POST" or not request.user.is_authenticated:
        next_url = safe_next(request) or reverse("admin:index")
        return redirect_to_login(next_url, login_url=reverse("account_login"))
    return _admin_password_login(request, extra_context)


admin.site.login = admin_login


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "is_active"]
    list_filter = ["role", "is_active"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "accepted_at"]

    def get_queryset(self, request):
        return Invitation.objects.with_scopes_disabled().all()
