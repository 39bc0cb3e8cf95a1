import re

from django.core.management.base import CommandError

from accounts.services import unit_ensure

from ._base import AccountsCommand


class Command(AccountsCommand):
    help = "Create a unit in an agency, or update its name (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("agency_code")
        parser.add_argument("unit_code")
        parser.add_argument("name")

    def handle(self, agency_code, unit_code, name, **options):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", unit_code):
            raise CommandError("UNIT_CODE must be 1-32 letters, digits, '-' or '_'")
        unit, created = unit_ensure(agency=self.agency(agency_code), code=unit_code, name=name)
        self.stdout.write(f"{'created' if created else 'exists'}: unit {unit}")
