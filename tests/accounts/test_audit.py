"""The audit log: entries keep their label after the record is gone, and each
organization reads only its own."""

from django_scopes import scope

from accounts.audit import audit_events, audit_record
from tests.factories import LeadFactory


def test_an_entry_keeps_its_subject_label_and_stays_in_its_organization(
    org, other_org, admin, other_admin
):
    with scope(organization=org):
        lead = LeadFactory(organization=org, first_name="Zoe", last_name="Park")
        audit_record(organization=org, action="lead.erased", actor=admin, subject=lead,
                     data={"activities": 3})  # fmt: skip
        lead_id = lead.pk
        lead.delete()
    with scope(organization=other_org):
        audit_record(organization=other_org, action="export.created", actor=other_admin)

    with scope(organization=org):
        (entry,) = audit_events(organization=org)
        assert (entry.action, entry.subject_type, entry.subject_id) == (
            "lead.erased", "leads.Lead", lead_id,
        )  # fmt: skip
        assert "Zoe" in entry.subject or "@" in entry.subject
        assert entry.actor == admin and entry.data == {"activities": 3}
