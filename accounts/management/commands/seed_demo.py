"""Load the demo organization (idempotent): an admin, a marketer, two sales reps.

Later capabilities add their demo data on leadflow.core.hooks.demo_steps so one
command seeds everything.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Organization, Role, User
from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope

DEMO_SLUG = "acme"
DEMO_PASSWORD = "leadflow-demo"
DEMO_PEOPLE = [
    ("admin@acme.example", "Ada Admin", Role.ADMIN),
    ("marketer@acme.example", "Mia Marketer", Role.MARKETER),
    ("rep1@acme.example", "Sam Seller", Role.SALES_REP),
    ("rep2@acme.example", "Riley Rep", Role.SALES_REP),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization and its people."

    @transaction.atomic
    def handle(self, *args, **options):
        org, _ = Organization.objects.get_or_create(
            slug=DEMO_SLUG, defaults={"name": "Acme Analytics (demo)", "timezone": "Europe/Berlin"}
        )
        for email, name, role in DEMO_PEOPLE:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name)
            user.last_organization = org
            user.save(update_fields=["last_organization"])
            Membership.objects.update_or_create(
                organization=org, user=user, defaults={"role": role, "is_active": True}
            )
        with tenant_scope(org):
            hooks.demo_steps.call(org, self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo organization '{org.name}' at /o/{org.slug}/"))
        self.stdout.write(
            f"Sign in at http://127.0.0.1:8000/accounts/login/ (password: {DEMO_PASSWORD})"
        )
        for email, _, role in DEMO_PEOPLE:
            self.stdout.write(f"  {role.label:<10} {email}")
