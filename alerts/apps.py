from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from core import policy

        from .models import Alert, AlertRun

        # An agency record; another agency sees it through a case shared with it (its `case`), read-only.
        policy.register_agency_records(Alert, action="alert.change", via_cases="case")
        # A full pass's bookkeeping: written by the pass alone.
        policy.register_agency_records(AlertRun, action=None)
