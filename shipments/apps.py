from django.apps import AppConfig


class ShipmentsConfig(AppConfig):
    name = "shipments"
    verbose_name = "Shipments and licences"

    def ready(self) -> None:
        from core import policy

        from .models import Licence, Shipment

        policy.register_agency_records(Shipment, action="entity.change", via_cases="cases")
        policy.register_agency_records(Licence, action="entity.change", via_cases="shipments__cases")
