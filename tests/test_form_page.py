"""The one create/edit page helper (leadflow.core.formpage.form_page), used by every app."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpResponseRedirect
from django.test import RequestFactory, override_settings

from leadflow.core.errors import LeadflowError
from leadflow.core.formpage import form_page

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {"page.html": "{{ title }}|{{ form.errors }}"},
                )
            ]
        },
    }
]


class NameForm(forms.Form):
    name = forms.CharField(max_length=5)


def call(method: str, data=None, save=None):
    request = getattr(RequestFactory(), method)("/x/", data or {})
    request._messages = CookieStorage(request)
    form = NameForm(request.POST or None)
    response = form_page(
        request,
        form,
        save=save or (lambda form: form.cleaned_data["name"].upper()),
        saved=lambda obj: (f"Saved {obj}.", HttpResponseRedirect(f"/done/{obj}/")),
        template="page.html",
        context={"title": "Edit"},
    )
    return response, [str(m) for m in get_messages(request)]


@override_settings(TEMPLATES=TEMPLATES)
def test_get_shows_the_form():
    response, flashed = call("get")
    assert (response.status_code, response.content.decode(), flashed) == (200, "Edit|", [])


@override_settings(TEMPLATES=TEMPLATES)
def test_a_valid_post_saves_flashes_and_follows_the_response():
    response, flashed = call("post", {"name": "ann"})
    assert (response.status_code, response["Location"], flashed) == (
        302,
        "/done/ANN/",
        ["Saved ANN."],
    )


@override_settings(TEMPLATES=TEMPLATES)
def test_bad_input_answers_400_without_saving():
    saved = []
    response, flashed = call("post", {"name": "toolong"}, save=saved.append)
    assert response.status_code == 400 and "at most 5" in response.content.decode()
    assert saved == [] and flashed == []


@override_settings(TEMPLATES=TEMPLATES)
def test_a_service_refusal_becomes_a_form_error():
    def refuse(form):
        raise LeadflowError("That name is taken.")

    response, flashed = call("post", {"name": "ann"}, save=refuse)
    assert response.status_code == 400 and "That name is taken." in response.content.decode()
    assert flashed == []


def test_a_bug_in_save_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        call("post", {"name": "ann"}, save=lambda form: 1 / 0)
