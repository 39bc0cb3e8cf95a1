from django.core.management.base import BaseCommand, CommandError

from accounts.models import Agency, Unit


class AccountsCommand(BaseCommand):
    def agency(self, code: str) -> Agency:
        agency = Agency.objects.filter(code=code).first()
        if agency is None:
            raise CommandError(f"no agency with code {code!r}; create it with create_agency")
        return agency

    def unit(self, agency: Agency, code: str) -> Unit:
        unit = Unit.objects.filter(agency=agency, code=code).first()
        if unit is None:
            raise CommandError(f"agency {agency.code} has no unit {code!r}; create it with create_unit")
        return unit
