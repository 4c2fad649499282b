"""A send_mail stand-in that fails the way mail servers do (for the mail task tests)."""

from __future__ import annotations

from django.core.mail import send_mail


class FailingSend:
    """Raises `exc` for the address `only_to`, or for the first `times` calls, or
    always; otherwise sends for real (into the test outbox). `calls` records the
    recipients of every attempt."""

    def __init__(self, exc: Exception, *, only_to: str | None = None, times: int | None = None):
        self.exc, self.only_to, self.times = exc, only_to, times
        self.calls: list[list[str]] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs["recipient_list"])
        if self.only_to is not None:
            failing = kwargs["recipient_list"] == [self.only_to]
        else:
            failing = self.times is None or len(self.calls) <= self.times
        if failing:
            raise self.exc
        return send_mail(**kwargs)
