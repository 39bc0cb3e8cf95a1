from django.apps import AppConfig


class ImportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imports"
    verbose_name = "Bulk imports"

    def ready(self) -> None:
        from core import policy

        from .models import ImportJob

        # Every user of the owning agency sees its jobs; investigators and up start them.
        policy.register_agency_records(ImportJob, action="entity.change")
