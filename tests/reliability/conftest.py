"""Reliability tests share the nurture helpers (consenting leads, sequences)."""

from tests.nurture.conftest import make_leads, make_sequence, sender_ready  # noqa: F401
