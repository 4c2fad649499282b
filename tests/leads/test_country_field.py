"""One CountryField cleans a typed country in every form (issue #14)."""

from __future__ import annotations

import pytest
from django import forms

from leads.forms import CountryField, LeadForm
from nurture.forms import NurtureListForm


@pytest.mark.parametrize(("typed", "code"), [("Germany", "DE"), (" de ", "DE"), ("", "")])
def test_country_field_cleans_to_an_iso_code(typed, code):
    assert CountryField().clean(typed) == code


def test_country_field_rejects_an_unknown_country():
    with pytest.raises(forms.ValidationError, match="Unknown country “Atlantis”"):
        CountryField().clean("Atlantis")


@pytest.mark.parametrize("form_class", [LeadForm, NurtureListForm])
def test_forms_use_the_one_country_field(form_class):
    """No form keeps its own copy of the country cleaning."""
    assert isinstance(form_class.base_fields["country"], CountryField)
    assert not hasattr(form_class, "clean_country")
