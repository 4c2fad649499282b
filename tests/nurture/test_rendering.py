"""Templates: merge fields, sandboxing, sanitizing, plain-text part."""

import pytest

from leadflow.core.tenancy import tenant_scope
from nurture import services
from nurture.models import EmailTemplate
from nurture.rendering import TemplateInvalid, render_message, validate_template
from tests.factories import CompanyFactory, LeadFactory


@pytest.mark.parametrize(
    "subject, body, needle",
    [
        ("Hi {{ password }}", "<p>x</p>", "unknown merge field"),
        ("Hi", "<p>{{ lead.owner.user.password }}</p>", "not a merge field"),
        ("Hi", "<p>{{ first_name|safe }}</p>", "filter |safe"),
        ("Hi", "{% load static %}", "not allowed"),
        ("Hi", "{% include 'base.html' %}", "not allowed"),
        ("Hi", "{% if first_name %}open", "Body"),
        ("Hi {{ first_name ", "<p>x</p>", "Subject"),
        ("", "<p>x</p>", "subject is required"),
    ],
)
def test_bad_templates_are_rejected_with_a_clear_message(subject, body, needle):
    with pytest.raises(TemplateInvalid, match=needle):
        validate_template(subject, body)


def test_good_template_renders_merge_fields_escaped_in_html_only(org, other_org):
    with tenant_scope(org):
        company = CompanyFactory(organization=org, name="Initech & Co")
        lead = LeadFactory(organization=org, first_name="Ada", company=company, title="<b>CTO</b>")
        template = EmailTemplate(
            organization=org,
            subject='{{ first_name|default:"there" }} at {{ company }}',
            body_html="<p>{% if title %}{{ title }}{% else %}none{% endif %} {{ org_name }}</p>",
        )
        rendered = render_message(template=template, lead=lead)
    assert rendered.subject == "Ada at Initech & Co"
    assert "&lt;b&gt;CTO&lt;/b&gt;" in rendered.html and "Acme" in rendered.html
    assert rendered.text == "<b>CTO</b> Acme"  # generated from the HTML, unescaped


def test_template_save_strips_script_and_iframe_and_keeps_merge_links(org, other_org, admin):
    with tenant_scope(org):
        template = services.template_save(
            data={
                "name": "Welcome",
                "subject": "Hi {{ first_name }}",
                "body_html": '<p onclick="x()">Hi</p><script>alert(1)</script>'
                '<iframe src="https://evil.example"></iframe>'
                '<a href="javascript:alert(1)">bad</a> <a href="{{ unsubscribe_url }}">out</a>',
            },
            actor=admin,
        )
        assert "script" not in template.body_html and "iframe" not in template.body_html
        assert "onclick" not in template.body_html and "javascript" not in template.body_html
        assert 'href="{{ unsubscribe_url }}"' in template.body_html
        with pytest.raises(TemplateInvalid):
            services.template_save(
                template=template,
                data={"name": "Welcome", "subject": "Hi {{ nickname }}", "body_html": "<p>x</p>"},
                actor=admin,
            )
        template.refresh_from_db()
        assert template.subject == "Hi {{ first_name }}"  # nothing stored on bad input
    with tenant_scope(other_org):
        assert not EmailTemplate.objects.exists()
        # Names are unique per organization only.
        services.template_save(
            data={"name": "Welcome", "subject": "Hi", "body_html": "<p>x</p>"},
            organization_id=other_org.pk,
        )
