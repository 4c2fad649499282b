from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

from accounts import login_limits
from leadflow.core.clientip import client_ip


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return getattr(settings, "ACCOUNT_ALLOW_SIGNUP", True)

    def get_client_ip(self, request) -> str:
        # Behind a proxy, the visitor's address (LEADS_CLIENT_IP_HEADER), not the proxy's:
        # otherwise every visitor would share one IP in the log-in limits.
        return client_ip(request) or super().get_client_ip(request)

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # allauth keys failed logins on the address alone; ours add the client IP
        # (see accounts.login_limits). A password reset clears that key.
        login = credentials.get("email", credentials.get("username", ""))
        return login_limits.attempt_key(request, login)

    def pre_authenticate(self, request, **credentials) -> None:
        login = credentials.get("email", credentials.get("username", ""))
        self._login_failed_rl_usage = login_limits.consume_attempt(request, login)
        if not self._login_failed_rl_usage:
            raise self.validation_error("too_many_login_attempts")
