"""Double opt-in: the confirmation email (mail queue, sent once)."""

from __future__ import annotations

from celery import shared_task

from leadflow.core.mail import retry_or_record
from leadflow.core.tenancy import TenantTask
from leads.services import consent

__all__ = ["send_consent_confirmation"]


@shared_task(base=TenantTask, bind=True, name="leads.send_consent_confirmation")
def send_consent_confirmation(self, *, organization_id: int, confirmation_id: int) -> bool:
    try:
        return consent.consent_confirmation_send(confirmation_id=confirmation_id)
    except Exception as exc:
        retry_or_record(
            self,
            exc,
            lambda error: consent.consent_confirmation_send_failed(
                confirmation_id=confirmation_id, error=error
            ),
        )
        return False
