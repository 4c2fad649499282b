"""Email templates: every starter validates, |default takes a quoted text or a
merge field, messages say which part and what is allowed, and a template in
use by a sequence is not deleted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from nurture import demo
from nurture.models import EmailTemplate
from nurture.rendering import TemplateInvalid, render_parts, validate_template
from nurture.views.email_templates import STARTER_BODY
from tests.factories import EmailTemplateFactory

# Every piece of template text the product itself offers: the editor's starter
# body and the demo organization's templates.
STARTERS = [("editor starter", "Hello {{ first_name }}", STARTER_BODY)] + [
    (name, subject, body) for name, subject, body in demo.TEMPLATES
]


@pytest.mark.parametrize(("name", "subject", "body"), STARTERS, ids=[s[0] for s in STARTERS])
def test_every_starter_template_validates(name, subject, body):
    validate_template(subject, body)


@pytest.mark.parametrize(
    ("source", "owner", "expected"),
    [
        ('{{ owner_name|default:"our team" }}', "", "our team"),
        ("{{ owner_name|default:'our team'|upper }}", "", "OUR TEAM"),
        ("{{ owner_name|default:org_name }}", "", "Acme &amp; Co"),
        ("{{ owner_name|default:org_name }}", "Ana", "Ana"),
    ],
)
def test_default_takes_a_quoted_text_or_a_merge_field(source, owner, expected):
    validate_template("s", source)
    context = {"owner_name": owner, "org_name": "Acme & Co"}
    assert render_parts(subject="s", body_html=source, body_text="", context=context).html == (
        expected
    )


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        (
            "s",
            "{{ owner_name|default:secret_key }}",
            "Body: in {{ owner_name|default:secret_key }}",
        ),
        ("s", "{{ owner_name|date }}", "Body: the filter |date is not allowed; filters: |default"),
        ("s", '{{ first_name|upper:"x" }}', "the filter |upper takes no argument"),
        ("{{ lead.email }}", "x", "Subject: {{ lead.email }} is not a merge field. Write"),
        ("s", "{{ password }}", "use one of the merge fields: first_name, last_name"),
        ("s", "{% if password %}x{% endif %}", "'password' is none of the merge fields"),
    ],
)
def test_validation_messages_name_the_part_and_what_is_allowed(subject, body, expected):
    with pytest.raises(TemplateInvalid) as error:
        validate_template(subject, body)
    assert expected in str(error.value)


def test_a_template_used_by_sequences_is_not_deleted_and_the_message_names_them(
    admin_client, org, other_org, make_sequence
):
    first, second = make_sequence(org, name="Welcome"), make_sequence(org, name="Recycle")
    with tenant_scope(org):
        used = first.steps.get().template
        second_step = second.steps.get()
        second_step.template = used
        second_step.save()
        unused = EmailTemplateFactory(organization=org, name="Spare")
    with tenant_scope(other_org):
        foreign = EmailTemplateFactory(organization=other_org, name="Theirs")

    def delete(template):
        kwargs = {"org_slug": org.slug, "template_id": template.pk}
        return admin_client.post(reverse("nurture:template_delete", kwargs=kwargs), follow=True)

    html = delete(used).content.decode()
    assert "is used by the sequences “Recycle”, “Welcome”" in html
    assert delete(foreign).status_code == 404
    assert "Template “Spare” deleted." in delete(unused).content.decode()
    with tenant_scope(org):
        assert EmailTemplate.objects.filter(pk=used.pk).exists()
        assert not EmailTemplate.objects.filter(pk=unused.pk).exists()
    with tenant_scope(other_org):
        assert EmailTemplate.objects.filter(pk=foreign.pk).exists()
