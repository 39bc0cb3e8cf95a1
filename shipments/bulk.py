"""Bulk writes of shipments: how an import writes them.

The same records, version bump and audit events (one per shipment, shaped as the API's: a create event
carries the shipment's `cases` and `legs`, none yet) as the single services write; new shipments go to the
table with COPY. `shipments_upsert` sorts its rows reading only and returns a `core.bulk.Upsert`: written at
once (in a transaction) unless `defer`, when the caller runs its `write()` where it commits (an import's writer
thread), or never (a dry run)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.bulk import Key, NewRows, Upsert, upsert

from .models import Shipment

SHIPMENT_KEY = ("source", "source_id")
_NEW = NewRows(Shipment)


def shipments_upsert(*, agency: Any, actor: Any, rows: list[dict[str, Any]],
                     existing: dict[Key, Shipment] | None = None, defer: bool = False) -> Upsert:
    """Create or update the agency's shipments by (source, source_id). Each row holds field values by attname
    (parties as `consignor_id`, …), checked by the caller with the shipment rules. A file gives no legs, so
    a new shipment's `transit_countries` are the row's."""
    agency_id, now = agency.pk, timezone.now()
    result = upsert(Shipment, agency=agency, actor=actor, rows=rows, key=SHIPMENT_KEY, existing=existing,
                    build=lambda values: _NEW.new({"agency_id": agency_id, **values}, now))
    if not defer:
        with transaction.atomic():
            result.write()
    return result
