from django.apps import AppConfig
from django.core import checks


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Agencies and users"

    def ready(self) -> None:
        from core import policy

        from .models import Agency, Unit, User
        from .throttles import check_auth_rate

        checks.register(check_auth_rate)

        policy.register_account_records(Agency, agency_field="pk")
        policy.register_account_records(Unit, agency_field="agency_id")
        policy.register_account_records(User, agency_field="agency_id")
