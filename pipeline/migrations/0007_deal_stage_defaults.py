"""Default deal stages for the organizations that exist; their deals get a stage."""

from django.db import migrations

# The defaults as they were when this migration was written (the service's list may change).
DEFAULT_STAGES = [
    ("Qualification", 10, "open"),
    ("Proposal", 40, "open"),
    ("Negotiation", 70, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
]


def install_defaults(apps, schema_editor):
    """Every existing organization gets the default stages; its deals go to the first
    stage of their status's kind."""
    Organization = apps.get_model("accounts", "Organization")
    DealStage = apps.get_model("pipeline", "DealStage")
    Opportunity = apps.get_model("pipeline", "Opportunity")
    for org_id in Organization.objects.values_list("pk", flat=True).iterator():
        if DealStage.objects.filter(organization_id=org_id).exists():
            continue
        stages = DealStage.objects.bulk_create(
            DealStage(organization_id=org_id, name=name, position=n, probability=p, kind=kind)
            for n, (name, p, kind) in enumerate(DEFAULT_STAGES)
        )
        first = {}
        for stage in stages:
            first.setdefault(stage.kind, stage)
        for status, stage in first.items():
            Opportunity.objects.filter(organization_id=org_id, status=status).update(
                stage_id=stage.pk
            )


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0006_deal_stages")]

    operations = [migrations.RunPython(install_defaults, migrations.RunPython.noop)]
