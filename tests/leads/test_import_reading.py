"""CSV reading, header suggestions and value parsing of the importer (no database)."""

from __future__ import annotations

import codecs
import csv
import io

import pytest

from leads.importing import (
    MAX_IMPORT_BYTES,
    ImportFileError,
    MappingError,
    RowPlan,
    channel_for,
    check_size,
    custom_key,
    custom_keys,
    custom_value,
    inspect_csv,
    iter_records,
    suggest_mapping,
    validate_mapping,
)
from leads.importing.reading import detect_encoding


def read(data: bytes):
    binary = io.BytesIO(data)
    info = inspect_csv(binary)
    records = list(
        iter_records(
            binary, encoding=info.encoding, delimiter=info.delimiter, width=len(info.header)
        )
    )
    return info, records


# --- encodings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "prefix", "detected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("cp1252", b"", "cp1252"),
        ("utf-16", b"", "utf-16"),  # Excel's "Unicode text" (the codec writes the BOM)
    ],
)
def test_encodings_are_detected_and_accents_survive(encoding, prefix, detected):
    text = (
        "Email,First Name,City\r\nrene@example.org,René,Zürich\r\nzoe@example.org,Zoë,Ålesund\r\n"
    )
    info, records = read(prefix + text.encode(encoding))
    assert info.encoding == detected
    assert info.header == ["Email", "First Name", "City"]  # no BOM left in the first name
    assert [r.values for r in records] == [
        ["rene@example.org", "René", "Zürich"],
        ["zoe@example.org", "Zoë", "Ålesund"],
    ]
    assert all(not r.problem for r in records)


def test_cp1252_specific_characters_are_read_as_cp1252():
    # 0x80 is € in cp1252 and a control character in latin-1.
    info, records = read("Email,Note\r\na@example.org,Prix 5 € – “net”\r\n".encode("cp1252"))
    assert info.encoding == "cp1252"
    assert records[0].values == ["a@example.org", "Prix 5 € – “net”"]


def test_a_few_broken_bytes_in_a_utf8_file_fail_only_their_rows():
    data = (
        "email,name\njose@example.org,José\n".encode()
        + b"bad@example.org,Caf\xe9\n"  # latin-1 é inside a UTF-8 file
        + "ok@example.org,Ørsted\nmore@example.org,Ñandú\n".encode()
    )
    info, records = read(data)
    assert info.encoding == "utf-8"
    assert [r.values[1] for r in records] == ["José", "Caf\ufffd", "Ørsted", "Ñandú"]
    assert [bool(r.problem) for r in records] == [False, True, False, False]
    assert "aren't valid utf-8" in records[1].problem
    assert records[1].number == 3  # spreadsheet row: the header is row 1


def test_detect_encoding_ignores_a_character_cut_by_the_sample_end():
    sample = "a,b\nx,é".encode()[:-1]  # half of the é
    assert detect_encoding(sample, complete=False) == "utf-8"


# --- delimiters, quoting, rows ----------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(delimiter):
    rows = [
        ["Email", "Company", "Note"],
        ["a@example.org", "Acme; Inc, Ltd", "x"],
        ["b@example.org", "Globex", "1,5"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    info, records = read(buffer.getvalue().encode())
    assert info.delimiter == delimiter
    assert info.header == rows[0]
    assert [r.values for r in records] == rows[1:]


def test_quoted_fields_with_delimiters_quotes_and_newlines():
    data = b'email,note\na@example.org,"Hello, ""world""\nsecond line"\nb@example.org,plain\n'
    info, records = read(data)
    assert info.total_rows == 2
    assert records[0].values == ["a@example.org", 'Hello, "world"\nsecond line']
    assert [r.number for r in records] == [2, 3]


def test_blank_lines_are_skipped_but_keep_row_numbers_true():
    info, records = read(b"email\n\na@example.org\n\n\nb@example.org\n")
    assert info.total_rows == 2
    assert [(r.number, r.values) for r in records] == [
        (3, ["a@example.org"]),
        (6, ["b@example.org"]),
    ]


def test_ragged_rows_are_reported_and_the_others_kept():
    data = (
        b"email,first,last\n"
        b"a@example.org,Ann,Lee\n"
        b"b@example.org,Bob\n"
        b"c@example.org,Cy,Do,extra\n"
        b"d@example.org,Di,Ek,,\n"
    )
    _info, records = read(data)
    problems = {r.number: r.problem for r in records}
    assert problems[2] == ""
    assert problems[3] == "The row has 2 values but the header has 3 columns."
    assert problems[4].startswith("The row has 4 values but the header has 3 columns")
    # Trailing empty cells (Excel) are not an error.
    assert problems[5] == ""
    assert records[3].values == ["d@example.org", "Di", "Ek"]


def test_nul_characters_are_dropped_from_values():
    # PostgreSQL can't store NUL in text. (A NUL in the first megabyte makes
    # the file count as binary; this one comes later in a big file.)
    binary = io.BytesIO(b"email,name\na@example.org,An\x00n\n")
    records = list(iter_records(binary, encoding="utf-8", delimiter=",", width=2))
    assert records[0].values == ["a@example.org", "Ann"]
    assert records[0].problem == ""


def test_header_names_are_cleaned_and_made_unique():
    info, _ = read(b"\xef\xbb\xbf Email ,,Email,  Job   Title \nx@example.org,1,2,3\n")
    assert info.header == ["Email", "Column 2", "Email (2)", "Job Title"]


# --- files we refuse ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n  \r\n", "The file is empty."),
        (b"email,name\n", "The file has a header row but no data rows."),
        (b"PK\x03\x04\x14\x00\x06\x00rest-of-a-zip", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old-xls", "old Excel"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        (bytes(range(256)) * 4, "binary file"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(data, message):
    with pytest.raises(ImportFileError, match=message):
        inspect_csv(io.BytesIO(data))


def test_size_limit_is_100_mb():
    assert MAX_IMPORT_BYTES == 100 * 1024 * 1024
    check_size(MAX_IMPORT_BYTES)
    with pytest.raises(ImportFileError, match=r"The file is 100\.0 MB; the limit is 100 MB\."):
        check_size(MAX_IMPORT_BYTES + 1)
    with pytest.raises(ImportFileError, match="empty"):
        check_size(0)


# --- header suggestions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("First Name", "first_name"),
        ("Surname", "last_name"),
        ("Company", "company_name"),
        ("Organisation", "company_name"),
        ("Job Title", "title"),
        ("Phone Number", "phone"),
        ("Mobile", "phone"),
        ("Country", "country"),
        ("City", "city"),
        ("Lead Source", "source"),
        ("Prospect ID", "external_id"),
        ("Lead ID", "external_id"),
        ("Record ID", "external_id"),
        ("Id", "external_id"),
        ("Do Not Email", "do_not_email"),
        ("Do Not Call", "do_not_call"),
        ("Opt-in", "email_opt_in"),
        ("Full Name", "full_name"),
        ("Industry", "industry"),
        ("No. of Employees", "company_size"),
    ],
)
def test_header_synonyms_are_suggested(header, target):
    assert suggest_mapping([header]) == {header: target}


def test_other_columns_become_custom_attributes_and_fields_are_used_once():
    header = ["Email", "TotalVisits", "E-mail", "Phone", "Mobile", "Lead Origin"]
    assert suggest_mapping(header) == {
        "Email": "email",
        "TotalVisits": "custom:total_visits",
        "E-mail": "custom:e_mail",
        "Phone": "phone",
        "Mobile": "custom:mobile",
        "Lead Origin": "custom:lead_origin",
    }


def test_full_name_is_not_suggested_next_to_first_and_last_name():
    mapping = suggest_mapping(["Name", "First Name", "Last Name", "Email"])
    assert mapping["Name"] == "custom:name"


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("TotalVisits", "total_visits"),
        ("Total Time Spent on Website", "total_time_spent_on_website"),
        ("Page Views Per Visit", "page_views_per_visit"),
        ("HTMLScore", "html_score"),
        ("Prénom de l'élève", "prenom_de_l_eleve"),
        ("  --  ", ""),
    ],
)
def test_custom_keys_are_derived_from_headers(header, key):
    assert custom_key(header) == key


def test_custom_keys_are_unique_and_never_empty():
    assert custom_keys(["Visits", "visits", "£€", "x" * 100]) == [
        "visits",
        "visits_2",
        "column_3",
        "x" * 60,
    ]


# --- mapping rules -----------------------------------------------------------------------


def test_a_mapping_needs_an_email_or_record_id_column():
    with pytest.raises(MappingError, match="Map a column to Email or to Record ID"):
        validate_mapping(["Name", "City"], {"Name": "full_name", "City": "city"})


def test_a_field_can_be_mapped_once_only():
    with pytest.raises(MappingError, match="“A” and “B” are both mapped to Email"):
        validate_mapping(["A", "B"], {"A": "email", "B": "email"})


def test_unknown_targets_and_foreign_custom_keys_are_refused():
    with pytest.raises(MappingError, match="can't be imported as"):
        validate_mapping(["Email", "X"], {"Email": "email", "X": "owner"})
    with pytest.raises(MappingError, match="can't be imported as"):
        validate_mapping(["Email", "X"], {"Email": "email", "X": "custom:not_x"})


def test_validate_mapping_keeps_header_columns_only_and_ignores_missing_ones():
    assert validate_mapping(["Email", "X"], {"Email": "email", "Other": "city"}) == {
        "Email": "email",
        "X": "",
    }


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "channel"),
    [
        ("Google", "organic_search"),
        ("google", "organic_search"),
        ("Organic Search", "organic_search"),
        ("Direct Traffic", "direct"),
        ("Olark Chat", "direct"),
        ("Live Chat", "direct"),
        ("Reference", "referral"),
        ("Referral Sites", "referral"),
        ("Facebook", "social"),
        ("LinkedIn", "social"),
        ("Facebook Ads", "paid_social"),
        ("Pay per Click Ads", "paid_search"),
        ("Google Ads", "paid_search"),
        ("NC_EDM", "email"),
        ("Spring Webinar 2024", "webinar"),
        ("paid_search", "paid_search"),
        ("testone", "other"),
        ("  ", ""),
    ],
)
def test_lead_source_values_map_to_channels(value, channel):
    assert channel_for(value) == channel


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("0", 0),
        ("674", 674),
        ("2.5", 2.5),
        ("-3", -3),
        ("007", "007"),
        ("1,5", "1,5"),
        ("1e5", "1e5"),
        ("12345678901234567890", "12345678901234567890"),
        ("02.Medium", "02.Medium"),
        ("Yes", "Yes"),
    ],
)
def test_numeric_custom_values_become_numbers(value, parsed):
    result = custom_value(value)
    assert result == parsed and type(result) is type(parsed)


def test_row_plan_builds_engine_rows():
    header = ["Email", "Name", "Lead Source", "TotalVisits", "City", "Notes"]
    mapping = {
        "Email": "email",
        "Name": "full_name",
        "Lead Source": "source",
        "TotalVisits": "custom:total_visits",
        "City": "city",
        "Notes": "",
    }
    plan = RowPlan.build(header, mapping, opt_in_all=True)
    row = plan.row([" ann@example.org ", "Ana María López", "Google", "5", "Select", "skip me"])
    assert row == {
        "email": "ann@example.org",
        "first_name": "Ana María",
        "last_name": "López",
        "source": "organic_search",
        "custom": {"total_visits": 5},
        "email_opt_in": True,
    }
    # "Select" (an unanswered dropdown) and blanks are empty.
    assert plan.row(["b@example.org", "", "", "select", "", ""]) == {
        "email": "b@example.org",
        "custom": {},
        "email_opt_in": True,
    }
