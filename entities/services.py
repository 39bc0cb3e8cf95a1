"""Every write of one person, organisation or link, whichever door it comes through (API, admin, script).

A service checks the record's rules (`entities.rules`), sets its derived fields (`Entity.refresh_derived`),
bumps its version, writes its audit event in the same transaction, and leaves the cross-referencing of what
changed to the outbox. An update that changes nothing keeps the version and writes no event.

`data` is already parsed (a serializer's validated data, an admin form's cleaned data, or a script's dict):
field name → value, with references (a link's ends, its case) as records. The `*_check` functions are the
rules a service applies, for a form that wants to show them before it saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from core import outbox
from core.rules import RuleViolation, Violations
from core.services import archive, audit_change, audit_create
from core.snapshots import diff, snapshot

from . import rules
from .bulk import entities_create, entities_upsert, links_upsert  # noqa: F401  (the bulk forms of these services, for importers)
from .models import Entity, EntityType, Link, Organization, OrganizationKind, Person, as_typed

_COMMON = ("name", "names", "identifiers", "addresses", "phones", "emails", "notes", "source", "source_id", "topics",
           "archived")
# The fields a write may set, by entity type: the rest (type, agency, version, derived fields) are the service's.
ENTITY_FIELDS: dict[str, frozenset[str]] = {
    EntityType.PERSON: frozenset((*_COMMON, "gender", "birth_date", "birth_place", "nationalities")),
    EntityType.ORGANIZATION: frozenset((*_COMMON, "kind", "jurisdiction", "registration_number", "incorporated_on",
                                        "dissolved_on", "website")),
}
LINK_FIELDS = frozenset(("kind", "subtype", "source", "target", "share_pct", "amount", "currency", "start_date",
                         "end_date", "description", "confidence", "case", "provenance_source", "provenance_id",
                         "archived"))

E = TypeVar("E", bound=Entity)


# --- persons and organisations -------------------------------------------------------------------


def person_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Person:
    return _entity_create(Person, agency=agency, actor=actor, data=data)


def organization_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Organization:
    return _entity_create(Organization, agency=agency, actor=actor, data=data)


def entity_update(*, entity: Entity, actor: Any, data: Mapping[str, Any]) -> Entity:
    """Apply `data` to a person or organisation (the caller holds the row, e.g. locked by the API's update)."""
    entity = as_typed(entity)
    values = _parsed(Entity, ENTITY_FIELDS[entity.type], data)
    with transaction.atomic():
        return _update(entity, values, actor=actor, check=lambda before: _check_entity(
            entity.agency_id, entity.type, _values_of(entity, ENTITY_FIELDS[entity.type]), pk=entity.pk,
            stored_key=(before["source"], before["source_id"])))


def entity_archive(*, entity: Entity, actor: Any) -> Entity:
    entity = as_typed(entity)
    with transaction.atomic():
        if not entity.archived:
            archive(entity, actor=actor)
            outbox.records_changed(entity._meta.label_lower, [entity.pk])
    return entity


def entity_check(*, agency_id: Any, entity_type: str, data: Mapping[str, Any], entity: Entity | None = None) -> None:
    """The rules a person or organisation must meet once `data` is applied to `entity` (None: a new record)."""
    fields = ENTITY_FIELDS[entity_type]
    values = {**(_values_of(entity, fields) if entity is not None else {}), **_parsed(Entity, fields, data)}
    _check_entity(agency_id, entity_type, values, pk=entity.pk if entity is not None else None,
                  stored_key=(entity.source, entity.source_id) if entity is not None else None)


def _check_entity(agency_id: Any, entity_type: str, values: Mapping[str, Any], *, pk: Any,
                  stored_key: tuple[str, str] | None) -> None:
    violations = Violations()
    _collect(violations, lambda: rules.check_entity(entity_type, values))
    key = (values.get("source") or "", values.get("source_id") or "")
    if key != stored_key:  # a record keeps the pair it has without asking again
        _collect(violations, lambda: rules.check_source_id_free(agency_id=agency_id, source=key[0],
                                                                source_id=key[1], exclude_pk=pk))
    violations.raise_if_any()


def _entity_create(model: type[E], *, agency: Any, actor: Any, data: Mapping[str, Any]) -> E:
    entity_type = model.entity_type
    values = _parsed(Entity, ENTITY_FIELDS[entity_type], data)
    own_transaction = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        _check_entity(agency.pk, entity_type, values, pk=None, stored_key=None)
        entity = model(agency=agency, type=entity_type, **values)
        _derive(entity)
        with _unique_as_rule(savepoint=not own_transaction):
            entity.save()
        audit_create(entity, actor=actor)
        outbox.records_changed(entity._meta.label_lower, [entity.pk])
    return entity


def _derive(entity: Entity) -> None:
    if entity.type == EntityType.ORGANIZATION and not entity.kind:
        entity.kind = OrganizationKind.COMPANY
    entity.refresh_derived()


# --- links ---------------------------------------------------------------------------------------


def link_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Link:
    values = _parsed(Link, LINK_FIELDS, data)
    with transaction.atomic():
        _check_link(agency.pk, values, pk=None, stored_key=None)
        link = Link(agency=agency, **values)
        with _unique_as_rule():
            link.save()
        audit_create(link, actor=actor)
        outbox.records_changed(link._meta.label_lower, [link.pk])
    return link


def link_update(*, link: Link, actor: Any, data: Mapping[str, Any]) -> Link:
    """Apply `data` to a link (the caller holds the row, e.g. locked by the API's update)."""
    values = _parsed(Link, LINK_FIELDS, data)
    with transaction.atomic():
        return _update(link, values, actor=actor, check=lambda before: _check_link(
            link.agency_id, _values_of(link, LINK_FIELDS), pk=link.pk,
            stored_key=(before["provenance_source"], before["provenance_id"])))


def link_archive(*, link: Link, actor: Any) -> Link:
    with transaction.atomic():
        if not link.archived:
            archive(link, actor=actor)
            outbox.records_changed(link._meta.label_lower, [link.pk])
    return link


def link_check(*, agency_id: Any, data: Mapping[str, Any], link: Link | None = None) -> None:
    """The rules a link must meet once `data` is applied to `link` (None: a new link)."""
    values = {**(_values_of(link, LINK_FIELDS) if link is not None else {}), **_parsed(Link, LINK_FIELDS, data)}
    _check_link(agency_id, values, pk=link.pk if link is not None else None,
                stored_key=(link.provenance_source, link.provenance_id) if link is not None else None)


def _check_link(agency_id: Any, values: Mapping[str, Any], *, pk: Any, stored_key: tuple[str, str] | None) -> None:
    violations = Violations()
    _collect(violations, lambda: rules.check_link(values, agency_id=agency_id))
    key = (values.get("provenance_source") or "", values.get("provenance_id") or "")
    if key != stored_key:
        _collect(violations, lambda: rules.check_provenance_free(agency_id=agency_id, provenance_source=key[0],
                                                                 provenance_id=key[1], exclude_pk=pk))
    violations.raise_if_any()


# --- shared --------------------------------------------------------------------------------------


def _update(obj: Any, values: dict[str, Any], *, actor: Any, check: Callable[[dict[str, Any]], None]) -> Any:
    """Set `values` on `obj`; when that changes something, check the rules (`check(before)`), derive, save with a
    new version, audit and tell the outbox. Nothing changed: nothing written, version kept. Broken rules leave
    the instance as it was."""
    before = snapshot(obj)
    kept = {name: getattr(obj, name) for name in values}
    for name, value in values.items():
        setattr(obj, name, value)
    if not diff(before, snapshot(obj)):
        return obj
    try:
        check(before)
    except RuleViolation:
        for name, value in kept.items():
            setattr(obj, name, value)
        raise
    if isinstance(obj, Entity):
        _derive(obj)
    with _unique_as_rule():
        obj.save()
    archiving = obj.archived and not before.get("archived")
    audit_change(obj, before, actor=actor, action="archive" if archiving else "update")
    outbox.records_changed(obj._meta.label_lower, [obj.pk])
    return obj


# A unique index that a concurrent write took between the rule's check and the insert: the same answer.
_UNIQUE_RULES = {
    "entity_source_id_per_agency": ("source_id", rules.SOURCE_ID_TAKEN),
    "link_source_id_per_agency": ("provenance_id", rules.PROVENANCE_TAKEN),
}


@contextmanager
def _unique_as_rule(savepoint: bool = True) -> Iterator[None]:
    # A savepoint: a form that shows the violation may go on using the connection. In a service's transaction
    # of its own (`savepoint` False) a violation rolls all of it back, and the savepoint would serve nothing.
    try:
        with transaction.atomic(savepoint=savepoint):
            yield
    except IntegrityError as exc:
        for constraint, (field, message) in _UNIQUE_RULES.items():
            if constraint in str(exc):
                raise RuleViolation({field: [message]}) from exc
        raise


def _collect(violations: Violations, rule: Callable[[], None]) -> None:
    try:
        rule()
    except RuleViolation as exc:
        violations.merge(exc)


def _values_of(obj: Any, fields: frozenset[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _parsed(model: type[models.Model], fields: frozenset[str], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as the model holds it (a date given as text becomes a date, a decimal gets its places), so that
    what is compared, audited and written is what the database keeps. A field a write may not set is a
    programming error; a value the model's field refuses (not a date, not a choice, too long, a blank name) is a
    RuleViolation on that field: a script that skipped the parsing still cannot store what the API could not."""
    unknown = sorted(set(data) - fields)
    if unknown:
        raise TypeError(f"{model._meta.model_name} writes take none of: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    violations = Violations()
    for name, value in data.items():
        field = cast(models.Field, model._meta.get_field(name))
        if field.is_relation:
            values[name] = value
            continue
        try:
            value = field.clean(value, None)
        except ValidationError as exc:
            for message in exc.messages:
                violations.add(name, message)
            continue
        if isinstance(value, Decimal) and isinstance(field, models.DecimalField):
            value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
        values[name] = value
    violations.raise_if_any()
    return values
