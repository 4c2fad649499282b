"""Nurture test helpers: consenting leads, a sequence with steps."""

import pytest

from leadflow.core.tenancy import tenant_scope
from tests.factories import (
    EmailTemplateFactory,
    LeadFactory,
    SequenceFactory,
    SequenceStepFactory,
    verified_sender,
)


@pytest.fixture(autouse=True)
def sender_ready(request):
    """The nurture tests' organizations may email leads (a verified sender and
    a postal address, nurture.services.sender); the tests of that gate undo it."""
    for name in ("org", "other_org"):
        if name in request.fixturenames:
            verified_sender(request.getfixturevalue(name))


@pytest.fixture
def make_leads(db):
    def make(org, n, **kwargs):
        kwargs.setdefault("email_opt_in", True)
        with tenant_scope(org):
            return LeadFactory.create_batch(n, organization=org, **kwargs)

    return make


@pytest.fixture
def make_sequence(db):
    """make(org, delays=[(days, hours), ...], **sequence fields) -> Sequence with steps 1..n."""

    def make(org, delays=((0, 0),), **kwargs):
        with tenant_scope(org):
            sequence = SequenceFactory(organization=org, **kwargs)
            for position, (days, hours) in enumerate(delays, start=1):
                template = EmailTemplateFactory(
                    organization=org,
                    subject=f"Step {position} for {{{{ first_name }}}}",
                    body_html=(
                        f"<p>Hi {{{{ first_name }}}} of {{{{ company }}}}, step {position}.</p>"
                        f'<p><a href="https://example.com/step{position}">Read more</a></p>'
                    ),
                    body_text="",
                )
                SequenceStepFactory(
                    sequence=sequence,
                    position=position,
                    delay_days=days,
                    delay_hours=hours,
                    template=template,
                )
            return sequence

    return make
