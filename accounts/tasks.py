from smtplib import SMTPException

from celery import shared_task

from accounts import services
from leadflow.tenancy import TenantTask


@shared_task(base=TenantTask, autoretry_for=(SMTPException, ConnectionError, TimeoutError))
def send_invitation(*, organization_id: int, invitation_id: int) -> bool:
    return services.invitation_send(invitation_id=invitation_id)


@shared_task(name="accounts.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> int:
    """Periodic (beat): forget API answers stored for Idempotency-Key retries
    once they are past their retention."""
    from leadflow.api_writes import idempotency_keys_purge

    return idempotency_keys_purge()
