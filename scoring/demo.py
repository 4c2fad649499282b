"""seed_demo step: the starter rules, then a full rescore so the demo leads
arrive scored, with several MQLs."""

from scoring import engine, services


def seed(org, stdout) -> None:
    installed = services.starter_rules_install(organization_id=org.pk)
    result = engine.rescore(organization_id=org.pk)
    from leads.models import Lead

    mqls = Lead.objects.filter(mql_eligible=True).count()
    stdout.write(
        f"  scoring: {installed} starter rules installed, {result.scored} leads scored, {mqls} MQLs"
    )
