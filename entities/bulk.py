"""Bulk writes of the master index (persons, organisations, links): how an import writes them.

The same records as the single services write, with the same derived fields (the model's `refresh_derived`,
its `DERIVED_FIELDS`), the same version bump and the same audit events, one per record; new records go to
the table with COPY. Each function sorts its rows reading only and returns a `core.bulk.Upsert`: written at
once (in a transaction) unless `defer`, when the caller runs its `write()` where it commits (an import's
writer thread), or never (a dry run)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from core.bulk import Key, Upsert, upsert

from .models import Entity, EntityType, Link, OrganizationKind

ENTITY_KEY = ("source", "source_id")
LINK_KEY = ("provenance_source", "provenance_id")


def _entity_type(entity: Any) -> str:
    return str(entity.type)  # the API's object type of a person or an organisation: its proxy's name


def _entity_label(entity: Any) -> str:
    return f"entities.{entity.type}"


def _new_entity(agency_id: Any, entity_type: str, values: dict[str, Any]) -> Entity:
    """A new entity as a save makes it: its type, an organisation's default kind, its derived fields."""
    entity = Entity(agency_id=agency_id, type=entity_type, **values)
    if entity.type == EntityType.ORGANIZATION and not entity.kind:
        entity.kind = OrganizationKind.COMPANY
    entity.refresh_derived()
    return entity


def _done(result: Upsert, defer: bool) -> Upsert:
    if not defer:
        with transaction.atomic():
            result.write()
    return result


def entities_upsert(*, agency: Any, actor: Any, rows: list[dict[str, Any]], entity_type: str = "",
                    existing: dict[Key, Entity] | None = None, defer: bool = False) -> Upsert:
    """Create or update the agency's persons and organisations by (source, source_id). Each row holds field
    values by attname and its key; a new one's type is its `type` value, else `entity_type` (a record's
    type never changes)."""
    agency_id = agency.pk
    types = {id(values): values.pop("type") for values in rows if "type" in values}
    return _done(upsert(Entity, agency=agency, actor=actor, rows=rows, key=ENTITY_KEY, existing=existing,
                        build=lambda values: _new_entity(agency_id, types.get(id(values)) or entity_type, values),
                        derive=Entity.refresh_derived, derived=Entity.DERIVED_FIELDS,
                        object_type=_entity_type, label=_entity_label), defer)


def entities_create(*, agency: Any, actor: Any, entities: Iterable[Entity], defer: bool = False) -> Upsert:
    """Create new entities given as unsaved instances (an import's new shipment parties), as a save would."""
    result = Upsert(Entity, agency, actor, derived=Entity.DERIVED_FIELDS, object_type=_entity_type,
                    label=_entity_label)
    for entity in entities:
        entity.agency_id = agency.pk
        if entity.type == EntityType.ORGANIZATION and not entity.kind:
            entity.kind = OrganizationKind.COMPANY
        entity.refresh_derived()
        result.new[("", str(entity.pk))] = entity
        result.outcomes.append("created")
    return _done(result, defer)


def links_upsert(*, agency: Any, actor: Any, rows: list[dict[str, Any]], existing: dict[Key, Link] | None = None,
                 defer: bool = False) -> Upsert:
    """Create or update the agency's links by (provenance_source, provenance_id). Each row holds field values
    by attname (`source_id`, `target_id`: the ends' ids), checked by the caller with the link rules."""
    agency_id = agency.pk
    return _done(upsert(Link, agency=agency, actor=actor, rows=rows, key=LINK_KEY, existing=existing,
                        build=lambda values: Link(agency_id=agency_id, **values)), defer)
