"""Hypothesis strategies for hostile input: what a browser, a script or an
attacker can put into a form field, a query parameter or a JSON document."""

from __future__ import annotations

from hypothesis import strategies as st

DEEP = 5_000

_long = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["a", "ж", "7", "<", "\x00", "😀", " "]),
    st.integers(min_value=1_000, max_value=10_000),
)
_nul = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=8), st.text(max_size=8))
# Not valid UTF-8 once encoded with surrogatepass: what a hostile client can send.
_surrogate = st.builds(lambda a: f"{a}\ud800", st.text(max_size=8))
_huge_int = st.sampled_from(
    [2**31, 2**31 - 1, -(2**31) - 1, 2**32, 2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**30]
).map(str) | st.integers().map(str)
_numberish = st.sampled_from(
    ["-1", "0", "1.5", "1e309", "-0", "NaN", "Infinity", "0x10", "1_000", "١٢", " 7 ", "+5"]
)
_wrong_type = st.sampled_from(
    ["", " ", "true", "false", "null", "None", "[]", "{}", "[1, 2]", '{"a": 1}', "on", "abc"]
)
_datetimes = st.sampled_from(
    [
        "0357-05-20T21:56:41-18:36",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "0000-00-00",
        "2025-02-30",
        "2025-13-01T25:61:61",
        "10000-01-01",
        "1970-01-01T00:00:00Z",
        "0.5",
    ]
)
_deep_json = st.sampled_from(
    ["[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP, "[" * 100_000]
)
_template = st.sampled_from(
    [
        "{% if first_name %}" * DEEP + "x" + "{% endif %}" * DEEP,
        "{{ first_name",
        "{% load static %}",
        "{{ first_name|safe }}",
        "{% for x in y %}{% endfor %}",
        "{{" * 1000,
    ]
)
_markup = st.sampled_from(
    ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]
)

# The worst value of each class, tried in every field in turn (the others
# ordinary), so that no single-field defect depends on luck.
WORST = [
    "a\x00b",
    "ж" * 10_000 + "\ud800",
    str(2**63),
    "[" * DEEP + "]" * DEEP,
    "{% if first_name %}" * DEEP + "x" + "{% endif %}" * DEEP,
    "0357-05-20T21:56:41-18:36",
]

hostile_text = st.one_of(
    _nul,
    _surrogate,
    _long,
    _huge_int,
    _numberish,
    _wrong_type,
    _datetimes,
    _deep_json,
    _template,
    _markup,
    st.text(max_size=40),
)


_ordinary = st.sampled_from(["hello", "a@acme-corp.com", "1", "2", "https://example.com/", "on"])


def field_value(plausible: list[str]) -> st.SearchStrategy[str | list[str]]:
    """A value for one form field: often hostile, often one the page offers or
    an ordinary one (so that validation gets past the other fields), sometimes
    several."""
    single = (
        hostile_text | st.sampled_from(plausible) | _ordinary
        if plausible
        else (hostile_text | _ordinary)
    )
    return single | st.lists(single, min_size=2, max_size=3)


def form_data(fields: dict[str, list[str]]) -> st.SearchStrategy[dict]:
    """Some of the form's fields (by name) with hostile or plausible values,
    and sometimes a field the form doesn't have."""
    known = st.fixed_dictionaries(
        {}, optional={name: field_value(values) for name, values in fields.items()}
    )
    extra = st.dictionaries(st.sampled_from(["\x00", "x" * 300, "id", "pk", "page"]), hostile_text)
    return st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})
