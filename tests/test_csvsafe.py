"""CSV injection: formula starts are neutralized, phones and numbers are not."""

import pytest

from leadflow.core.csvsafe import neutralize


@pytest.mark.parametrize(
    "cell",
    ["+4930123456", "+49 30 1234567", "+1 (555) 010-0100", "-12.5", "+0049/30-12", "-1"],
)
def test_phones_and_numbers_stay_importable(cell):
    assert neutralize(cell) == cell


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example","x")',
        "@SUM(A1:A2)",
        "+SUM(A1)",
        "-2+cmd|' /C calc'!A0",
        "+1+A1",
        "-",
        "+",
        "\t=1",
        "\r=1",
    ],
)
def test_formula_starts_are_quoted(cell):
    assert neutralize(cell) == "'" + cell


def test_text_can_ask_for_every_sign_to_be_quoted():
    assert neutralize("+49 30 1234567", keep_numbers=False) == "'+49 30 1234567"
    assert neutralize("Ann") == "Ann" and neutralize(None) == ""
