"""Writes on users, organizations, memberships and invitations."""

from __future__ import annotations

from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import BusinessType, Invitation, Membership, Organization, Role, User
from leadflow.core import hooks
from leadflow.core.errors import LeadflowError
from leadflow.core.mail import ERROR_MAX_LENGTH, header_text, validate_single_line
from leadflow.core.tenancy import enqueue_on_commit, tenant_scope

INVITATION_SALT = "accounts.invitation"


class InvitationError(LeadflowError):
    pass


class MembershipError(LeadflowError):
    pass


def _organization_name(name: str) -> str:
    try:
        validate_single_line(name)
    except ValidationError as exc:
        raise LeadflowError(f"Organization name: {exc.messages[0]}") from exc
    return name.strip()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(
    *, name: str, owner: User, slug: str | None = None, business_type: str = BusinessType.B2B
) -> Organization:
    """A new tenant; its creator becomes its first admin. An explicit `slug`
    (operations commands) is used as given, or the creation fails."""
    name = _organization_name(name) or header_text(f"{owner.display_name}'s organization")
    for _ in range(1 if slug else 5):
        try:
            with transaction.atomic():
                org = Organization.objects.create(name=name, slug=slug or _unique_slug(name))
            break
        except IntegrityError:  # a concurrent sign-up took the slug; pick again
            continue
    else:
        raise LeadflowError("Could not allocate an organization address, try another name")
    Membership.objects.create(organization=org, user=owner, role=Role.ADMIN)
    owner.last_organization = org
    owner.save(update_fields=["last_organization"])
    hooks.organization_created.call(org, owner, business_type)
    return org


def organization_update(
    *,
    organization: Organization,
    name: str,
    timezone_name: str,
    require_two_factor: bool | None = None,
) -> None:
    organization.name = _organization_name(name)
    organization.timezone = timezone_name
    fields = ["name", "timezone"]
    if require_two_factor is not None:
        organization.require_two_factor = require_two_factor
        fields.append("require_two_factor")
    organization.save(update_fields=fields)


# --- Invitations ------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """Signed (not stored) token naming the tenant and the invitation."""
    return signing.dumps(
        {"o": invitation.organization_id, "i": invitation.pk}, salt=INVITATION_SALT
    )


def invitation_from_token(token: str) -> Invitation:
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvitationError("This invitation has expired. Ask an admin for a new one.") from exc
    except signing.BadSignature as exc:
        raise InvitationError("This invitation link is not valid.") from exc
    with tenant_scope(payload["o"]):
        invitation = (
            Invitation.objects.select_related("organization").filter(pk=payload["i"]).first()
        )
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationError("This invitation was withdrawn.")
    if invitation.accepted_at is not None:
        raise InvitationError("This invitation has already been used.")
    return invitation


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User
) -> Invitation:
    """Invite an address with a role; inviting an open address again re-sends it."""
    email = email.strip().lower()
    if Membership.objects.filter(
        organization=organization, user__email__iexact=email, is_active=True
    ).exists():
        raise InvitationError(f"{email} is already a member of {organization.name}.")
    invitation: Invitation | None = (
        Invitation.objects.select_for_update()
        .annotate(email_lower=Lower("email"))
        .filter(email_lower=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, invited_by=invited_by
        )
    else:
        invitation.role = role
        invitation.invited_by = invited_by
        invitation.sent_at = None
        invitation.send_failed_at = None
        invitation.send_error = ""
        invitation.save(
            update_fields=["role", "invited_by", "sent_at", "send_failed_at", "send_error"]
        )
    enqueue_on_commit(
        "accounts.tasks.send_invitation",
        organization_id=organization.pk,
        invitation_id=invitation.pk,
    )
    return invitation


@transaction.atomic
def invitation_send(*, invitation_id: int) -> bool:
    """Send the invitation email once; a repeated task delivery finds sent_at and skips.
    A failed send raises (the task retries or records it with invitation_send_failed)."""
    invitation = (
        (
            Invitation.objects.select_for_update(of=("self",)).select_related(
                "organization", "invited_by"
            )
        )
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or not invitation.is_open or invitation.sent_at is not None:
        return False
    url = settings.SITE_URL.rstrip("/") + reverse(
        "accounts:invitation", kwargs={"token": invitation_token(invitation)}
    )
    context = {
        "invitation": invitation,
        "url": url,
        "days": settings.INVITATION_MAX_AGE_DAYS,
    }
    message = EmailMultiAlternatives(
        subject=header_text(f"You're invited to join {invitation.organization.name} on LeadFlow"),
        body=render_to_string("accounts/email/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(
        render_to_string("accounts/email/invitation.html", context), "text/html"
    )
    message.send()
    invitation.sent_at = timezone.now()
    invitation.send_failed_at = None
    invitation.send_error = ""
    invitation.save(update_fields=["sent_at", "send_failed_at", "send_error"])
    return True


def invitation_send_failed(*, invitation_id: int, error: str) -> bool:
    """Record that the invitation email could not be sent (the members page shows it,
    with Resend). An invitation sent or closed meanwhile is left alone."""
    return bool(
        Invitation.objects.filter(
            pk=invitation_id,
            sent_at__isnull=True,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(send_failed_at=timezone.now(), send_error=error[:ERROR_MAX_LENGTH])
    )


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User, verify_email: bool = True
) -> Membership:
    """Join the organization; only the invited address may accept. Following the
    link proves that address, so it counts as verified (``verify_email=False``
    only during sign-up, where allauth records the verified address itself)."""
    if user.email.lower() != invitation.email.lower():
        raise InvitationError(
            f"This invitation is for {invitation.email}, but you are signed in as {user.email}."
        )
    # Reached from a signed link, outside any /o/<slug>/ URL: open the invitation's tenant.
    with tenant_scope(invitation.organization_id):
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise InvitationError("This invitation has already been used.")
    membership, created = Membership.objects.get_or_create(
        organization_id=invitation.organization_id,
        user=user,
        defaults={"role": invitation.role},
    )
    if not created:
        membership.role = invitation.role
        membership.is_active = True
        membership.deactivated_at = None
        membership.save(update_fields=["role", "is_active", "deactivated_at"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    with tenant_scope(invitation.organization_id):
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    user.last_organization_id = invitation.organization_id
    user.save(update_fields=["last_organization"])
    if verify_email:
        _email_mark_verified(user=user, email=invitation.email)
    return membership


def _email_mark_verified(*, user: User, email: str) -> None:
    """The invitation link went to this address: following it proves the inbox,
    just as allauth's confirmation link would."""
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
        EmailAddress.objects.create(
            user=user, email=user.email, verified=True, primary=not has_primary
        )
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])


def invitation_revoke(*, invitation: Invitation) -> None:
    if invitation.is_open:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


# --- Memberships -------------------------------------------------------------


def _ensure_another_admin(membership: Membership) -> None:
    others = Membership.objects.filter(
        organization_id=membership.organization_id, role=Role.ADMIN, is_active=True
    ).exclude(pk=membership.pk)
    if membership.role == Role.ADMIN and membership.is_active and not others.exists():
        raise MembershipError("An organization needs at least one active admin.")


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> None:
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}.")
    # Lock the org's admin rows so two admins demoting each other can't leave none.
    list(
        Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Role.ADMIN
        )
    )
    if role != Role.ADMIN:
        _ensure_another_admin(membership)
    membership.role = role
    membership.save(update_fields=["role"])


@transaction.atomic
def membership_set_active(*, membership: Membership, active: bool) -> None:
    list(
        Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Role.ADMIN
        )
    )
    if not active:
        _ensure_another_admin(membership)
    membership.is_active = active
    membership.deactivated_at = None if active else timezone.now()
    membership.save(update_fields=["is_active", "deactivated_at"])


def user_set_last_organization(*, user: User, organization: Organization) -> None:
    if user.last_organization_id != organization.pk:
        user.last_organization = organization
        user.save(update_fields=["last_organization"])
