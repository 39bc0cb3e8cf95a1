from django.apps import AppConfig


class EntitiesConfig(AppConfig):
    name = "entities"
    verbose_name = "Master index"

    def ready(self) -> None:
        from core import policy

        from .models import Entity, Link, Organization, Person

        # Another agency sees an entity only through a case shared with it (read-only).
        for model in (Entity, Person, Organization):
            policy.register_agency_records(model, action="entity.change", via_cases="case_parties__case")
        policy.register_agency_records(Link, action="link.change", via_cases="case")
