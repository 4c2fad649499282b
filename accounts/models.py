"""Users, organizations (tenants), memberships with roles, invitations."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from leadflow.core.mail import validate_single_line
from leadflow.core.tenancy import TenantModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; logs in with an email address. Belongs to organizations via Membership."""

    email = models.EmailField(unique=True)
    # Goes into mail (invitations name their sender): one line, never a header break.
    full_name = models.CharField(max_length=150, blank=True, validators=[validate_single_line])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    last_organization = models.ForeignKey(
        "Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email.split("@")[0]


class Organization(models.Model):
    """A tenant: a company using LeadFlow. Everything it owns hangs off it."""

    # Goes into mail subjects (invitations, digests): one line, never a header break.
    name = models.CharField(max_length=120, validators=[validate_single_line])
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # Members without two-factor authentication are sent to set it up before
    # they can open any of this organization's pages (leadflow.middleware).
    require_two_factor = models.BooleanField(
        default=False,
        verbose_name="Require two-factor authentication",
        help_text="Members must set up an authenticator app before they can use this workspace.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class BusinessType(models.TextChoices):
    """What kind of business an organization is: it picks the starter scoring rules."""

    B2B = "b2b", "B2B (companies buy from you)"
    EDUCATION = "education", "B2C or education (people sign up for courses or services)"
    PRODUCT = "product", "Product-led (people try your product first)"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    SALES_REP = "sales_rep", "Sales rep"


class Membership(models.Model):
    """A user's seat in one organization, with a role.

    Not a TenantModel on purpose: it is the tenancy machinery itself (the
    middleware resolves it to decide which scope to open). Every query on it
    filters by organization or by user explicitly — see accounts.selectors.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "role", "is_active"])]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"

    def has_perm(self, permission: str) -> bool:
        from accounts.permissions import role_has_perm

        return self.is_active and role_has_perm(self.role, permission)


class Invitation(TenantModel):
    """An emailed, signed, expiring invitation to join an organization with a role."""

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The last send that failed for good (shown on the members page until a resend).
    send_failed_at = models.DateTimeField(null=True, blank=True)
    send_error = models.CharField(max_length=300, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]
        constraints = [
            # One open invitation per address per organization.
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_unique",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organization_id}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class ApiKey(models.Model):
    """A per-organization API key. Only a SHA-256 of the secret is stored; the
    full key is shown once. Like Membership it is tenancy machinery (it names
    the tenant of an API request), so it is not a TenantModel: every query
    filters by organization or by the key's public prefix explicitly."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiIdempotencyKey(TenantModel):
    """The answer an API write gave under a client's ``Idempotency-Key``, so a
    retried request is answered again instead of being applied twice. Written in
    the request's own transaction: a request that failed leaves no key behind."""

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="api_idempotency_key_unique"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created_idx")]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key} ({self.status_code})"


class AuditEvent(TenantModel):
    """One entry of an organization's audit log: who did what to which record.

    Append-only (nothing updates or deletes a row; an erasure keeps its own entry).
    ``subject`` is a short label written at the time, so the entry still reads well
    after the record it names is gone; ``data`` holds the details as JSON."""

    actor = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=60)  # dotted verb the service writes: "lead.merged"
    subject_type = models.CharField(max_length=60, blank=True)
    subject_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="audit_org_time_idx"),
            models.Index(
                fields=["organization", "subject_type", "subject_id"], name="audit_subject_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action}: {self.subject}"
