"""Privacy settings per organization (the personal data itself lives in the apps
that hold it; the consent ledger and erasure hashes in leads)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from leadflow.core.tenancy import TenantModel


class PrivacySettings(TenantModel):
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text="Purge raw form submissions and junk leads older than this many days."
        " Blank keeps them.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "privacy settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="privacy_settings_one_per_org")
        ]

    def __str__(self) -> str:
        return f"Privacy settings of {self.organization_id}"
