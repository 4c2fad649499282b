"""Nurture channels: how one step's message is composed and delivered.

The dispatcher (nurture.services.dispatch) and the send side
(nurture.services.sends) own everything that does not depend on the medium:
which steps are due, the per-organization throttle, advancing enrollments, the
send ledger (one row per enrollment and step, written before any delivery),
claims, retries, the at-most-once hand-off. They reach the medium only through
the `Channel` protocol below; a channel is looked up by its key in REGISTRY.

A second channel (SMS, a webhook action) is one new module with a class that
satisfies `Channel`, plus its line in REGISTRY.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nurture.channels.base import Channel, DeliveryResult, Failure, Send, Verdict

__all__ = [
    "Channel",
    "DeliveryResult",
    "Failure",
    "Send",
    "Verdict",
    "for_message",
    "for_step",
    "get",
]

DEFAULT = "email"


def _email() -> Channel:
    from nurture.channels.email import EmailChannel

    return EmailChannel()


# A step's channel key -> its channel. Built on first use, so importing this
# package does not import every channel's dependencies.
FACTORIES: dict[str, Callable[[], Channel]] = {"email": _email}
REGISTRY: dict[str, Channel] = {}


def get(key: str = DEFAULT) -> Channel:
    if key not in REGISTRY:
        REGISTRY[key] = FACTORIES[key]()
    return REGISTRY[key]


def for_step(step: Any) -> Channel:
    """The channel of a sequence step (email unless the step names another)."""
    return get(getattr(step, "channel", None) or DEFAULT)


def for_message(message: Any) -> Channel:
    """The channel a ledger row was composed for. The ledger has no channel
    column yet (email is the only channel), so no query is spent here."""
    return get(getattr(message, "channel", None) or DEFAULT)
