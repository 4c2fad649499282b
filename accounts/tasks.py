from celery import shared_task

from accounts import services
from leadflow.core.mail import retry_or_record
from leadflow.core.tenancy import TenantTask


@shared_task(base=TenantTask, bind=True)
def send_invitation(self, *, organization_id: int, invitation_id: int) -> bool:
    try:
        return services.invitation_send(invitation_id=invitation_id)
    except Exception as exc:
        retry_or_record(
            self,
            exc,
            lambda error: services.invitation_send_failed(invitation_id=invitation_id, error=error),
        )
        return False


@shared_task(name="accounts.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> int:
    """Periodic (beat): forget API answers stored for Idempotency-Key retries
    once they are past their retention."""
    from accounts.api_writes import idempotency_keys_purge

    return idempotency_keys_purge()
