from django.core.management.base import CommandError

from accounts.choices import Clearance, Role
from accounts.services import user_ensure

from ._base import AccountsCommand


class Command(AccountsCommand):
    help = "Create a user of an agency, or update its role, unit, clearance and password (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--agency", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--unit", default=None)
        parser.add_argument("--clearance", default=None, choices=Clearance.values)
        parser.add_argument("--password", default=None)
        parser.add_argument("--staff", action="store_true", help="may sign in to the admin")

    def handle(self, username, agency, role, unit, clearance, password, staff, **options):
        agency_obj = self.agency(agency)
        unit_obj = self.unit(agency_obj, unit) if unit else None
        extra = {"is_staff": True} if staff else {}
        try:
            user, created = user_ensure(username=username, agency=agency_obj, role=role, unit=unit_obj,
                                        clearance=clearance, password=password, **extra)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'created' if created else 'updated'}: user {user.username}")
