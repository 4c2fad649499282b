"""leadflow.core.inserts: a new row INSERTed with its statement compiled once
per model stores what save() stores; leadflow.core.server_prepared's numbering."""

import pytest
from django.db.models import Value
from django.db.models.signals import post_save, pre_save
from django.forms.models import model_to_dict

from leadflow.core.inserts import insert_row, insert_statement
from leadflow.core.server_prepared import numbered
from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission, Lead, SubmissionChannel

pytestmark = pytest.mark.django_db


def stored(model, pk) -> dict:
    row = model_to_dict(model.objects.get(pk=pk))
    return {k: v for k, v in row.items() if k not in {"id", "received_at", "created_at"}}


@pytest.mark.parametrize(
    "build",
    [
        lambda org, n: FormSubmission(
            organization=org,
            channel=SubmissionChannel.API,
            payload={"email": "a@x.example", "n": [1, 2], "s": "50% 'off' %s"},
            user_agent="curl",
        ),
        lambda org, n: Lead(
            organization=org, email=f"ada{n}@x.example", custom={"k": "v"}, company_size=50
        ),
    ],
    ids=["submission", "lead"],
)
def test_a_row_inserted_once_compiled_is_the_row_save_stores(org, other_org, build):
    with tenant_scope(org):
        fast, slow = build(org, 1), build(org, 2)
        assert insert_row(fast) is True
        assert fast.pk and not fast._state.adding
        slow.save()
        model = type(fast)
        fast_row, slow_row = stored(model, fast.pk), stored(model, slow.pk)
        if model is Lead:
            assert (fast_row.pop("email"), slow_row.pop("email")) == (fast.email, slow.email)
            assert fast.created_at  # auto_now_add, set as save() sets it
        assert fast_row == slow_row


def test_a_taken_unique_value_inserts_nothing_and_says_so(org):
    with tenant_scope(org):
        Lead.objects.create(organization=org, email="ada@x.example")
        twin = Lead(organization=org, email="ada@x.example")
        assert insert_row(twin, ignore_conflicts=True) is False
        assert twin.pk is None and Lead.objects.count() == 1


def test_an_expression_value_is_compiled_the_usual_way(org):
    with tenant_scope(org):
        lead = Lead(organization=org, email="ada@x.example", first_name=Value("Ada"))
        _sql, params = insert_statement(lead)
        assert "Ada" in params  # the ORM resolved the expression
        assert insert_row(lead) is True
        assert Lead.objects.get(pk=lead.pk).first_name == "Ada"


def test_the_models_inserted_this_way_have_no_save_receivers():
    """insert_row sends no signals: a receiver added later for these models
    would silently miss their rows."""
    for model in (FormSubmission, Lead):
        for signal in (pre_save, post_save):
            assert not signal.has_listeners(model), (model, signal)


def test_numbered_placeholders_and_literal_percents():
    assert numbered("a = %s AND b LIKE '50%%' AND c = %s") == "a = $1 AND b LIKE '50%' AND c = $2"
    assert numbered("x LIKE '%%s' OR y = %s") == "x LIKE '%s' OR y = $1"
