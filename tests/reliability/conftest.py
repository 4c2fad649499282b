"""Reliability tests share the nurture helpers (consenting leads, sequences)
and the scripted SMTP server."""

import pytest

from tests.nurture.conftest import make_leads, make_sequence, sender_ready  # noqa: F401
from tests.reliability.smtp import ScriptedSMTP


@pytest.fixture
def server():
    smtp = ScriptedSMTP()
    yield smtp
    smtp.stop()
