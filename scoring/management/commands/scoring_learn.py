"""manage.py scoring_learn <slug> [--apply]: learn a suggested rule set from
the organization's outcomes, print the holdout AUC (or how many more outcomes
are needed), and apply it with --apply."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Organization
from leadflow.core.tenancy import tenant_scope
from scoring import learning, versions


class Command(BaseCommand):
    help = "Learn scoring rules from won and lost leads."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--apply", action="store_true")

    def handle(self, *args, slug, apply, **options):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organization {slug!r}.")
        with tenant_scope(org):
            try:
                version = versions.version_learn(organization_id=org.pk, actor=None)
            except learning.NotEnoughOutcomes as exc:
                self.stdout.write(f"Not enough data: {exc}")
                raise CommandError("Learning refused: too few outcomes.") from exc
            h = version.metrics["holdout"]
            self.stdout.write(
                f"Enough data: {version.metrics['outcomes']['won']:,} won, "
                f"{version.metrics['outcomes']['lost']:,} lost.\n"
                f"Version {version.number}: {len(version.rules)} rules. Holdout AUC {h['auc']:.3f} "
                f"(95% CI {h['low']:.3f}–{h['high']:.3f}) on {h['leads']:,} leads "
                f"({h['split']} split); rules in use: "
                + (f"{h['current_auc']:.3f}" if h["current_auc"] is not None else "n/a")
            )
            for warning in version.metrics["warnings"]:
                self.stdout.write(f"Left out {warning['field']}: {warning['why']}.")
            if apply:
                with transaction.atomic():
                    versions.version_apply(version=version, actor=None)
                self.stdout.write(
                    f"Applied version {version.number}; scores are being recalculated."
                )
