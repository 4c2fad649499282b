"""manage.py create_organization <slug> --name "…" --admin <email>: a tenant
and its first admin, from a shell (the admin sets a password through the
"forgot password" mail, or --password)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Organization, User
from accounts.services import organization_create
from leadflow.core.errors import LeadflowError


class Command(BaseCommand):
    help = "Create an organization with its first admin."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, help="The admin's email address.")
        parser.add_argument("--password", default=None)

    @transaction.atomic
    def handle(self, *args, slug, name, admin, password, **options):
        if slugify(slug) != slug:
            raise CommandError(
                f"{slug!r} is not a valid address: use lower-case letters, digits and -."
            )
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"An organization {slug!r} already exists.")
        user = User.objects.filter(email__iexact=admin).first()
        if user is None:
            user = User.objects.create_user(email=admin, password=password)
        try:
            org = organization_create(name=name, owner=user, slug=slug)
        except (IntegrityError, LeadflowError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created {org.name} at /o/{org.slug}/ with admin {user.email}.")
