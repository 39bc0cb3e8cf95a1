"""Every write of a shipment (with its legs and cases) or a licence: the API, the admin and plain Python alike.

A service takes parsed values (`data`: field name → value; a relation as its object, or as `<field>_id`),
and in one transaction checks the rules (`shipments.rules`), derives what is derived (transit countries and
the departure date, from the legs: `Shipment.derive_from_legs`), writes the record with its legs and cases,
moves the version, writes the audit event (its `changes` carry `legs` and `cases` with the fields) and leaves
the cross-referencing of the record to the outbox. An update that changes nothing keeps the version and
writes no event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from django.db import IntegrityError, models, transaction

from core import outbox
from core.rules import RuleViolation, check_all
from core.services import audit_change, audit_create
from core.snapshots import diff, snapshot

from . import rules
from .bulk import shipments_upsert  # noqa: F401  (the bulk forms of these services, for importers)
from .models import Licence, Shipment, ShipmentLeg

M = TypeVar("M", Shipment, Licence)
SHIPMENT_LABEL = "shipments.shipment"
LICENCE_LABEL = "shipments.licence"
LEG_FIELDS = ("from_country", "from_port", "to_country", "to_port", "mode", "carrier", "vessel", "container",
              "departed_on", "arrived_on")
# Never taken from `data`: set by the record itself, or derived.
_NOT_WRITTEN = frozenset({"id", "agency", "version", "created_at", "updated_at", "transit_countries", "departed_on"})


def _writable_fields(model: type[models.Model]) -> dict[str, models.Field]:
    """Field name and attname (`commodity`, `commodity_id`) → field, for every field `data` may set."""
    fields: dict[str, models.Field] = {}
    for field in model._meta.concrete_fields:
        if field.name not in _NOT_WRITTEN:
            fields[field.name] = fields[field.attname] = field
    return fields


def _apply(obj: models.Model, data: Mapping[str, Any], allowed: dict[str, models.Field]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise RuleViolation({name: ["Unknown field."] for name in unknown})
    for name, value in data.items():
        setattr(obj, name, value)


@contextmanager
def _unique(constraint: str, field: str, message: str) -> Iterator[None]:
    """The race no check can see (two writers, one unique value) as the rule's own violation."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if constraint in str(exc):
            raise RuleViolation({field: [message]}) from exc
        raise


def _agency_of(model: type[models.Model], value: Any) -> Any:
    """The agency id of a referenced record given as an object or an id (None: nothing referenced)."""
    if value is None or value == "":
        return None
    if isinstance(value, models.Model):
        return getattr(value, "agency_id", None)
    return model._default_manager.filter(pk=value).values_list("agency_id", flat=True).first()


def _references(obj: models.Model, data: Mapping[str, Any]) -> dict[str, Any]:
    """{field: agency id of what it names} of the relations `data` sets to an agency-owned record."""
    found: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if not field.is_relation or field.name == "agency" or field.related_model is None:
            continue
        related = cast(type[models.Model], field.related_model)
        if not any(f.name == "agency" for f in related._meta.concrete_fields):
            continue  # a commodity: reference data, the same for every agency
        for key in (field.name, field.attname):
            if key in data:
                found[field.name] = _agency_of(related, data[key])
    return found


def _case_agencies(cases: list[Any]) -> list[Any]:
    from cases.models import Case

    ids = [case.pk if isinstance(case, models.Model) else case for case in cases]
    objects = [case for case in cases if isinstance(case, models.Model)]
    agencies = [cast(Any, case).agency_id for case in objects]
    if len(objects) < len(cases):
        agencies += list(Case.objects.filter(pk__in=ids).values_list("agency_id", flat=True))
    return agencies


# --- shipments -------------------------------------------------------------------------------


def _leg_rows(legs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for leg in legs:
        unknown = sorted(set(leg) - set(LEG_FIELDS))
        if unknown:
            raise RuleViolation({"legs": [f"Unknown leg field(s): {', '.join(unknown)}."]})
        rows.append({name: leg[name] for name in LEG_FIELDS if name in leg})
    return rows


def _shipment_check(shipment: Shipment, data: Mapping[str, Any], *, legs: list[dict[str, Any]] | None,
                    transit: list[str] | None, stored_legs: bool, cases: list[Any] | None) -> None:
    """Every rule of the write, every broken one named at once."""
    checks = [
        lambda: rules.shipment_check({name: getattr(shipment, name) for name in
                                      (*rules.SHIPMENT_QUANTITIES, "purity_pct")}),
        lambda: rules.same_agency_check(agency_id=shipment.agency_id, references={
            **_references(shipment, data), **({"cases": _case_agencies(cases)} if cases else {})}),
    ]
    if legs is not None:
        checks.append(lambda: rules.legs_check(legs))
    if transit:
        checks.append(lambda: rules.transit_countries_check(has_legs=bool(legs) or (legs is None and stored_legs)))
    if {"source", "source_id"} & set(data):
        checks.append(lambda: rules.shipment_source_id_check(
            agency_id=shipment.agency_id, source=shipment.source, source_id=shipment.source_id,
            exclude_id=None if shipment._state.adding else shipment.pk))
    check_all(*checks)


def _derive_route(shipment: Shipment, *, legs: list[dict[str, Any]] | None, transit: list[str] | None,
                  stored: list[ShipmentLeg]) -> None:
    """Transit countries and the departure date from the legs given, else from the stored legs (the origin or
    the destination may have moved); a shipment without legs keeps the transit countries given, if any."""
    if legs:
        shipment.derive_from_legs(legs)
    elif legs is None and stored:
        shipment.derive_from_legs(stored)
    else:
        if legs is not None:
            shipment.derive_from_legs([])  # the route cleared
        if transit is not None:
            shipment.transit_countries = list(dict.fromkeys(transit))


def _save_shipment(shipment: Shipment) -> None:
    with _unique("shipment_source_id_per_agency", "source_id",
                 rules.SOURCE_ID_TAKEN.format(source_id=shipment.source_id)):
        shipment.save()


def _write_legs(shipment: Shipment, legs: list[dict[str, Any]]) -> None:
    ShipmentLeg.objects.filter(shipment=shipment).delete()
    ShipmentLeg.objects.bulk_create(
        ShipmentLeg(shipment=shipment, seq=seq, **leg) for seq, leg in enumerate(legs, start=1)
    )


def _reload(obj: models.Model) -> None:
    """The values as stored (a Decimal to its places, a date string as a date), so that the change compared
    and audited is the same whatever types a caller gave; related objects already loaded are kept."""
    obj.refresh_from_db(fields=[f.attname for f in obj._meta.concrete_fields if not f.is_relation])


def _forget_children(shipment: Shipment) -> None:
    cache = getattr(shipment, "_prefetched_objects_cache", {})
    cache.pop("legs", None)
    cache.pop("cases", None)


def _hidden_cases(shipment: Shipment, actor: Any) -> list[Any]:
    """The shipment's cases the actor cannot see: never shown to them, so a list they write keeps them."""
    if actor is None:
        return []
    from core import policy

    return list(shipment.cases.exclude(pk__in=policy.cases_visible(actor).values("pk")))


def _split(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None, list[str] | None,
                                               list[Any] | None]:
    data = dict(data)
    legs = data.pop("legs", None)
    transit = data.pop("transit_countries", None)
    cases = data.pop("cases", None)
    return data, (_leg_rows(list(legs)) if legs is not None else None), \
        (list(transit) if transit is not None else None), (list(cases) if cases is not None else None)


@transaction.atomic
def shipment_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Shipment:
    """A new shipment of `agency`, with its legs (`data["legs"]`, in order) and cases (`data["cases"]`).
    `transit_countries` may be given only without legs (a shipment whose route is not known leg by leg)."""
    fields, legs, transit, cases = _split(data)
    shipment = Shipment(agency=agency)
    _apply(shipment, fields, _writable_fields(Shipment))
    _shipment_check(shipment, fields, legs=legs, transit=transit, stored_legs=False, cases=cases)
    _derive_route(shipment, legs=legs, transit=transit, stored=[])
    _save_shipment(shipment)
    if legs:
        _write_legs(shipment, legs)
    if cases:
        shipment.cases.set(cases)
    _forget_children(shipment)
    return _created(shipment, actor=actor, label=SHIPMENT_LABEL)


@transaction.atomic
def shipment_update(*, shipment: Shipment, actor: Any, data: Mapping[str, Any]) -> Shipment:
    """Apply `data` to `shipment` (only the fields it names). Legs given replace the stored ones whole;
    cases given replace the links to the cases the actor sees (links to cases hidden from them are kept)."""
    fields, legs, transit, cases = _split(data)
    _forget_children(shipment)
    before = snapshot(shipment)
    was_archived = shipment.archived
    _apply(shipment, fields, _writable_fields(Shipment))
    stored = list(shipment.legs.order_by("seq")) if legs is None else []
    _shipment_check(shipment, fields, legs=legs, transit=transit, stored_legs=bool(stored), cases=cases)
    _derive_route(shipment, legs=legs, transit=transit, stored=stored)
    unchanged = transaction.savepoint()
    _save_shipment(shipment)
    if legs is not None:
        _write_legs(shipment, legs)
    if cases is not None:
        given = {getattr(case, "pk", case) for case in cases}
        shipment.cases.set([*cases, *(case for case in _hidden_cases(shipment, actor) if case.pk not in given)])
    _forget_children(shipment)
    return _settle(shipment, before=before, unchanged=unchanged, was_archived=was_archived, actor=actor,
                   label=SHIPMENT_LABEL)


def _created(obj: M, *, actor: Any, label: str) -> M:
    """End a create: the record as stored, its event, its outbox row."""
    _reload(obj)
    audit_create(obj, actor=actor)
    outbox.records_changed(label, [obj.pk])
    return obj


def _settle(obj: M, *, before: dict[str, Any], unchanged: Any, was_archived: bool, actor: Any, label: str) -> M:
    """End an update written since the savepoint `unchanged`: when the stored record is what it was, undo the
    write (the version stays, no event); else audit it (`archive` when it newly archived) and tell the outbox."""
    _reload(obj)
    if not diff(before, snapshot(obj)):
        transaction.savepoint_rollback(unchanged)
        obj.refresh_from_db()
        return obj
    transaction.savepoint_commit(unchanged)
    action = "archive" if obj.archived and not was_archived else "update"  # type: ignore[attr-defined]
    audit_change(obj, before, actor=actor, action=action)
    outbox.records_changed(label, [obj.pk])
    return obj


def _archive(obj: Shipment | Licence, *, actor: Any, label: str) -> None:
    """Archive a record as it stands: archiving changes nothing else, so no rule of its content may stop it."""
    if obj.archived:
        return
    before = snapshot(obj)
    obj.archived = True
    obj.save()
    audit_change(obj, before, actor=actor, action="archive")
    outbox.records_changed(label, [obj.pk])


@transaction.atomic
def shipment_archive(*, shipment: Shipment, actor: Any) -> Shipment:
    """Archive a shipment (nothing is deleted); archiving an archived one does nothing."""
    _archive(shipment, actor=actor, label=SHIPMENT_LABEL)
    return shipment


# --- licences --------------------------------------------------------------------------------


def _licence_check(licence: Licence, data: Mapping[str, Any]) -> None:
    checks = [
        lambda: rules.licence_check({name: getattr(licence, name) for name in
                                     (*rules.LICENCE_QUANTITIES, "valid_from", "valid_to")}),
        lambda: rules.same_agency_check(agency_id=licence.agency_id, references=_references(licence, data)),
    ]
    if "number" in data:
        checks.append(lambda: rules.licence_number_check(
            agency_id=licence.agency_id, number=licence.number,
            exclude_id=None if licence._state.adding else licence.pk))
    check_all(*checks)


def _save_licence(licence: Licence) -> None:
    with _unique("licence_number_per_agency", "number", rules.LICENCE_NUMBER_TAKEN.format(number=licence.number)):
        licence.save()


@transaction.atomic
def licence_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Licence:
    """A new licence of `agency`; its holder and end user are the agency's."""
    licence = Licence(agency=agency)
    _apply(licence, data, _writable_fields(Licence))
    _licence_check(licence, data)
    _save_licence(licence)
    return _created(licence, actor=actor, label=LICENCE_LABEL)


@transaction.atomic
def licence_update(*, licence: Licence, actor: Any, data: Mapping[str, Any]) -> Licence:
    """Apply `data` to `licence` (only the fields it names)."""
    before = snapshot(licence)
    was_archived = licence.archived
    _apply(licence, data, _writable_fields(Licence))
    _licence_check(licence, data)
    unchanged = transaction.savepoint()
    _save_licence(licence)
    return _settle(licence, before=before, unchanged=unchanged, was_archived=was_archived, actor=actor,
                   label=LICENCE_LABEL)


@transaction.atomic
def licence_archive(*, licence: Licence, actor: Any) -> Licence:
    """Archive a licence (nothing is deleted); archiving an archived one does nothing."""
    _archive(licence, actor=actor, label=LICENCE_LABEL)
    return licence
