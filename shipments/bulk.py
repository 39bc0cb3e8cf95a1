"""Bulk writes of shipments: how an import writes them.

The same records, derived fields, version bump and audit events (one per shipment, shaped as the API's: a
create event carries the shipment's `cases` and `legs`, none yet) as the single services write; new shipments
go to the table with COPY. `shipments_upsert` sorts its rows reading only and returns a `core.bulk.Upsert`:
written at once (in a transaction) unless `defer`, when the caller runs its `write()` where it commits (an
import's writer thread), or never (a dry run)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.bulk import Key, NewRows, Upsert, by_key, upsert
from core.rules import RuleViolation

from . import rules
from .models import Shipment, ShipmentLeg

SHIPMENT_KEY = ("source", "source_id")
_NEW = NewRows(Shipment)


def shipments_upsert(*, agency: Any, actor: Any, rows: list[dict[str, Any]],
                     existing: dict[Key, Shipment] | None = None, defer: bool = False) -> Upsert:
    """Create or update the agency's shipments by (source, source_id). Each row holds field values by attname
    (parties as `consignor_id`, …), checked by the caller with the shipment rules. A row gives no legs: a new
    shipment's `transit_countries` are the row's; a stored shipment with legs keeps those its legs give (a row
    that gives others fails: `Upsert.problems`), derived again when its origin or destination changes."""
    agency_id, now = agency.pk, timezone.now()
    if existing is None:
        label, name = SHIPMENT_KEY
        existing = {(obj.source, obj.source_id): obj for obj in by_key(
            Shipment, agency_id, {(values[label], values[name]) for values in rows}, SHIPMENT_KEY)}
    legs: dict[Any, list[ShipmentLeg]] = {}
    if existing:
        for leg in ShipmentLeg.objects.filter(shipment_id__in=[s.pk for s in existing.values()]).order_by("seq"):
            legs.setdefault(leg.shipment_id, []).append(leg)

    def check(stored: Shipment, values: dict[str, Any]) -> dict[str, list[str]] | None:
        given = values.get("transit_countries")
        if given is not None and given != stored.transit_countries:
            try:
                rules.transit_countries_check(has_legs=stored.pk in legs)
            except RuleViolation as exc:
                return exc.errors
        return None

    def derive(shipment: Shipment) -> None:
        if shipment.pk in legs:
            shipment.derive_from_legs(legs[shipment.pk])

    result = upsert(Shipment, agency=agency, actor=actor, rows=rows, key=SHIPMENT_KEY, existing=existing,
                    build=lambda values: _NEW.new({"agency_id": agency_id, **values}, now), check=check,
                    derive=derive, derived=Shipment.DERIVED_FIELDS)
    if not defer:
        with transaction.atomic():
            result.write()
    return result
