"""Brute-force limits of the one password form (allauth's log-in; /admin/login/
sends there, see accounts/admin.py).

Failed attempts are counted per account *and* client IP, so one noisy
neighbour behind a shared NAT can lock out neither everybody on that IP nor
the account's owner elsewhere. A looser per-account budget (from any IP)
stops a distributed guess at one password. A successful log-in gives back the
attempt it used (allauth's rollback), never the whole budget.
"""

from __future__ import annotations

from allauth.core.internal import ratelimit
from django.conf import settings
from django.http import HttpRequest

APP = "allauth.account"


def attempt_key(request: HttpRequest, login: str) -> str:
    """The account+IP key of the per-account-per-IP budget ("login_failed")."""
    return f"{login.strip().lower()}|{ratelimit.get_ip(request)}"


def consume_attempt(request: HttpRequest, login: str) -> ratelimit.RateLimitUsage | None:
    """Spend one password attempt on *login* from this client; None when over a limit."""
    per_ip = ratelimit.consume(
        request, app=APP, action="login_failed", key=attempt_key(request, login)
    )
    if not per_ip:
        return None
    per_account = ratelimit.consume(
        request,
        app=APP,
        action="login_failed_account",
        config={"login_failed_account": settings.LOGIN_FAILED_PER_ACCOUNT_RATE},
        key=login.strip().lower(),
    )
    if not per_account:
        per_ip.rollback()
        return None
    return ratelimit.RateLimitUsage(usage=per_ip.usage + per_account.usage)
