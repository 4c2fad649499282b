from smtplib import SMTPException

from celery import shared_task

from accounts import services
from leadflow.tenancy import TenantTask


@shared_task(base=TenantTask, autoretry_for=(SMTPException, ConnectionError, TimeoutError))
def send_invitation(*, organization_id: int, invitation_id: int) -> bool:
    return services.invitation_send(invitation_id=invitation_id)
