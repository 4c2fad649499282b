"""Sender names are one line: a form refuses a line break, and a stored one never
reaches a mail header."""

import pytest

from leadflow.core.mail import describe, header_text, is_transient
from leadflow.core.tenancy import tenant_scope
from nurture.forms import SequenceForm
from nurture.models import Sequence
from nurture.services.common import from_address


@pytest.mark.django_db
def test_sequence_form_refuses_a_sender_name_with_a_line_break(org, other_org):
    with tenant_scope(org):
        form = SequenceForm({"name": "Welcome", "from_name": "Acme\r\nBcc: all@victim.example"})
        assert not form.is_valid()
    assert "without line breaks" in str(form.errors["from_name"])


@pytest.mark.parametrize("email", ["", "news@acme.example"])
def test_a_stored_sender_name_with_a_line_break_is_flattened(email):
    sequence = Sequence(name="s", from_name="Acme\r\nBcc: all@victim.example", from_email=email)
    sender = from_address(sequence=sequence)
    assert "\n" not in sender and "\r" not in sender
    assert "Acme Bcc: all@victim.example" in sender


def test_header_text_and_failure_sorting():
    assert header_text("a\r\n\tb\u2028c\x00") == "a b c"
    assert is_transient(ConnectionRefusedError(111, "refused"))
    assert not is_transient(ValueError("bad header"))
    assert describe(ConnectionRefusedError(111, "refused")).startswith(
        "the mail server could not be reached"
    )
