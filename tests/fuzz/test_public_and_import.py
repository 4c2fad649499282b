"""Hostile input to the public hosted form (form posts, JSON, raw bytes) and to
the CSV import upload: never a 500, and an answer that is an error stores no
lead data and leaves nothing half-done (a refused hosted-form post is kept as
a finished, invalid submission, by design; a refused upload stores no job)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Company, FieldType, FormSubmission, ImportJob, Lead
from leads.services import capture
from leads.services.capture_forms import TOKEN_KEY
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory
from tests.fuzz.strategies import DEEP, form_data, hostile_text
from tests.fuzz.test_pages import FORM_ENCODED, encode

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def lead_data(org) -> tuple:
    with tenant_scope(org):
        unfinished = FormSubmission.objects.filter(processed_at__isnull=True).count()
        jobs = ImportJob.objects.count()
        return (
            Lead.objects.count(),
            Company.objects.count(),
            Activity.objects.count(),
            unfinished,
            jobs,
        )


@pytest.fixture
def hosted(org, other_org, settings):
    settings.LEADS_CAPTURE_RATE_LIMIT = ""
    with tenant_scope(org):
        form = CaptureFormFactory(organization=org)
        specs = [
            ("email", FieldType.EMAIL, "email", True, []),
            ("first_name", FieldType.TEXT, "first_name", False, []),
            ("size", FieldType.SELECT, "company_size", False, ["1-10", "11-50"]),
            ("country", FieldType.COUNTRY, "country", False, []),
            ("phone", FieldType.PHONE, "phone", False, []),
            ("note", FieldType.TEXTAREA, "custom", False, []),
            ("ok", FieldType.CHECKBOX, "custom", False, []),
        ]
        for position, (key, kind, maps_to, required, options) in enumerate(specs):
            CaptureFormFieldFactory(
                form=form, position=position, key=key, field_type=kind, maps_to=maps_to,
                required=required, options=options,
            )  # fmt: skip
    with tenant_scope(other_org):
        CaptureFormFactory(organization=other_org)
    return form


_json_bodies = st.one_of(
    st.dictionaries(st.text(max_size=20), hostile_text | st.integers() | st.none()).map(json.dumps),
    st.sampled_from(
        ["null", "[]", '"x"', "1e999", "{", '{"email": NaN}', "[" * DEEP, '{"a": ' * DEEP]
    ),
)


def test_hosted_form_survives_hostile_input(client, org, hosted, fuzz_stats):
    url = f"/f/{hosted.key}/"
    token = capture.fill_token(form=hosted)
    fields = {
        "email": ["someone@acme-corp.com"], "first_name": ["Zoë"], "size": ["1-10", "11-50"],
        "country": ["DE", "Germany"], "phone": ["+49 30 1234567"], "note": ["hi"],
        "ok": ["on"], TOKEN_KEY: [token], "page_url": ["https://acme.example/pricing"],
    }  # fmt: skip

    @FUZZ
    @given(
        kind=st.sampled_from(["form", "json", "bytes"]),
        data=form_data(fields),
        body=_json_bodies,
        raw=st.binary(max_size=300),
        accept_json=st.booleans(),
    )
    def hostile(kind, data, body, raw, accept_json):
        headers = {"HTTP_ACCEPT": "application/json"} if accept_json else {}
        before = lead_data(org)
        fuzz_stats["fuzz_cases"] += 1
        try:
            if kind == "form":
                response = client.post(url, encode(data), content_type=FORM_ENCODED, **headers)
            elif kind == "json":
                response = client.post(url, body, content_type="application/json", **headers)
            else:
                response = client.post(url, raw, content_type=FORM_ENCODED, **headers)
        except Exception:
            fuzz_stats["fuzz_server_errors"] += 1
            raise
        assert response.status_code < 500, (kind, data, body, raw)
        failed = response.status_code >= 400 or b"is-invalid" in response.content
        if failed and lead_data(org) != before:
            fuzz_stats["fuzz_partial_writes"] += 1
            raise AssertionError(f"refused but wrote lead data: {kind} {data!r:.300}")

    hostile()


_csv = st.one_of(
    st.binary(max_size=2_000),
    st.lists(
        st.lists(hostile_text.map(lambda s: s[:2_000]), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    ).map(
        lambda rows: "\n".join(",".join(cells) for cells in rows).encode("utf-8", "surrogatepass")
    ),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf",
            b"email\n" + b"\x00" * 500,
            b'"' * 5_000,
            b"email," * 5_000 + b"\n",
            b"email\n" + b"a" * 200_000 + b"@acme-corp.com\n",
            "email,name\n\ud800@x.example,\ud800\n".encode("utf-8", "surrogatepass"),
        ]
    ),
)


def test_import_upload_survives_hostile_files(org, other_org, make_member, client_for, fuzz_stats):
    client = client_for(make_member(org))
    url = f"/o/{org.slug}/imports/"

    @FUZZ
    @given(content=_csv, name=st.sampled_from(["leads.csv", "x.tsv", "\x00.csv", "a" * 300]))
    def hostile(content, name):
        before = lead_data(org)
        fuzz_stats["fuzz_cases"] += 1
        try:
            response = client.post(url, {"file": SimpleUploadedFile(name, content)})
        except Exception:
            fuzz_stats["fuzz_server_errors"] += 1
            raise
        assert response.status_code < 500, (name, content[:200])
        if response.status_code >= 400 and lead_data(org) != before:
            fuzz_stats["fuzz_partial_writes"] += 1
            raise AssertionError(f"refused upload stored something: {name!r} {content[:200]!r}")

    hostile()
