import re

from django.core.management.base import CommandError

from accounts.services import agency_ensure

from ._base import AccountsCommand


class Command(AccountsCommand):
    help = "Create an agency, or update its name and contact (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("name")
        parser.add_argument("--contact", default=None)

    def handle(self, code, name, contact, **options):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", code):
            raise CommandError("CODE must be 1-16 letters, digits, '-' or '_'")
        if not name.strip():
            raise CommandError("NAME must not be empty")
        agency, created = agency_ensure(code=code, name=name, contact=contact)
        self.stdout.write(f"{'created' if created else 'exists'}: agency {agency.code}")
