"""The rules of the master index's records (persons, organisations, links), each written once.

Plain functions over plain values, so the services, the admin's forms and the importers (files and
FollowTheMoney) all ask the same questions and get the same answers: each raises
`core.rules.RuleViolation({field: [message]})` naming every broken rule at once.

Parsing a value (a phone into E.164, a country code, an identifier's check digits: `entities.validators`)
is not a rule: a rule is what must hold between a record's parsed values, or between it and the others.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from core.rules import RuleViolation, Violations, unique

from . import validators
from .models import Entity, EntityType, Link, LinkKind


class End(Protocol):
    """A link's end as far as its rules care: an entity (or anything with its id, type and agency)."""

    pk: Any
    type: str
    agency_id: Any


def _checked(violations: Violations, rule: Callable[[], None]) -> None:
    try:
        rule()
    except RuleViolation as exc:
        violations.merge(exc)


# --- persons and organisations -------------------------------------------------------------------

SOURCE_ID_TAKEN = "Another record of this agency (archived ones included) has this source and source_id."
DISSOLVED_BEFORE_INCORPORATED = "An organisation cannot be dissolved before it was incorporated."


def check_birth_date(birth_date: datetime.date | None) -> None:
    try:
        validators.check_birth_date(birth_date)
    except validators.InvalidValue as exc:
        raise RuleViolation({"birth_date": [str(exc)]}) from exc


def check_dissolution(incorporated_on: datetime.date | None, dissolved_on: datetime.date | None) -> None:
    if incorporated_on is not None and dissolved_on is not None and dissolved_on < incorporated_on:
        raise RuleViolation({"dissolved_on": [DISSOLVED_BEFORE_INCORPORATED]})


def check_source_id_free(*, agency_id: Any, source: str, source_id: str, exclude_pk: Any = None) -> None:
    """One record per (source, source_id) in an agency, persons and organisations together, archived included."""
    if not source_id:
        return
    unique(Entity.objects.filter(agency_id=agency_id, source=source or "", source_id=source_id),
           field="source_id", message=SOURCE_ID_TAKEN, exclude_pk=exclude_pk)


def check_entity(entity_type: str, values: Mapping[str, Any]) -> None:
    """Every rule of one person's or organisation's own values (`values`: the record after the write) that needs
    no other record; `check_source_id_free` is the one that does."""
    violations = Violations()
    if entity_type == EntityType.PERSON:
        _checked(violations, lambda: check_birth_date(values.get("birth_date")))
    else:
        _checked(violations, lambda: check_dissolution(values.get("incorporated_on"), values.get("dissolved_on")))
    violations.raise_if_any()


# --- links ---------------------------------------------------------------------------------------

PERSON, ORGANIZATION = EntityType.PERSON.value, EntityType.ORGANIZATION.value
ANY = (PERSON, ORGANIZATION)
# Which entity types each kind of link may join: (source types, target types, the rule in words).
LINK_ENDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    LinkKind.FAMILY: ((PERSON,), (PERSON,), "A family link joins two persons."),
    LinkKind.ASSOCIATE: ((PERSON,), (PERSON,), "An associate link joins two persons."),
    LinkKind.OWNERSHIP: (ANY, (ORGANIZATION,), "An ownership link points at an organisation."),
    LinkKind.DIRECTORSHIP: (ANY, (ORGANIZATION,), "A directorship link points at an organisation."),
    LinkKind.EMPLOYMENT: ((PERSON,), (ORGANIZATION,), "An employment link joins a person (source) to an "
                                                      "organisation (target)."),
    LinkKind.FINANCING: (ANY, ANY, ""),
    LinkKind.REPRESENTATION: (ANY, ANY, ""),
}
LINK_TO_ITSELF = "A link cannot join an entity to itself."
LINK_ENDS_BEFORE_START = "A link cannot end before it starts."
LINK_END_OF_ANOTHER_AGENCY = "A link joins records of its own agency only."
SHARE_ONLY_FOR_OWNERSHIP = "Only an ownership link has a share percentage."
AMOUNT_ONLY_FOR_FINANCING = "Only a financing link has an amount."
CURRENCY_ONLY_FOR_FINANCING = "Only a financing link has a currency."
AMOUNT_NEEDS_CURRENCY = "An amount needs its currency."
CURRENCY_NEEDS_AMOUNT = "A currency goes with an amount."
PROVENANCE_TAKEN = "Another link of this agency has this provenance source and id."


def _a(entity_type: str) -> str:
    return "an organisation" if entity_type == ORGANIZATION else "a person"


def check_link_ends(kind: str, source: End | None, target: End | None) -> None:
    """Which ends each kind joins, and never an entity to itself. An end not known (None) is not judged."""
    if source is None or target is None or kind not in LINK_ENDS:
        return
    if source.pk == target.pk:
        raise RuleViolation({"target": [LINK_TO_ITSELF]})
    source_types, target_types, rule = LINK_ENDS[kind]
    violations = Violations()
    if source.type not in source_types:
        violations.add("source", f"{rule} The source is {_a(source.type)}.")
    if target.type not in target_types:
        violations.add("target", f"{rule} The target is {_a(target.type)}.")
    violations.raise_if_any()


def check_link_agency(agency_id: Any, source: End | None, target: End | None, case: Any = None) -> None:
    """A link names records of its own agency only (its ends, the case it was found in)."""
    violations = Violations()
    for field, record in (("source", source), ("target", target), ("case", case)):
        if record is not None and agency_id is not None and record.agency_id != agency_id:
            violations.add(field, LINK_END_OF_ANOTHER_AGENCY)
    violations.raise_if_any()


def check_link_dates(start_date: datetime.date | None, end_date: datetime.date | None) -> None:
    if start_date is not None and end_date is not None and end_date < start_date:
        raise RuleViolation({"end_date": [LINK_ENDS_BEFORE_START]})


def check_link_money(kind: str, share_pct: Decimal | None, amount: Decimal | None, currency: str | None) -> None:
    """A share belongs to an ownership; an amount and its currency to a financing, and go together."""
    violations = Violations()
    if share_pct is not None and kind != LinkKind.OWNERSHIP:
        violations.add("share_pct", SHARE_ONLY_FOR_OWNERSHIP)
    if kind != LinkKind.FINANCING:
        if amount is not None:
            violations.add("amount", AMOUNT_ONLY_FOR_FINANCING)
        if currency:
            violations.add("currency", CURRENCY_ONLY_FOR_FINANCING)
    elif amount is not None and not currency:
        violations.add("currency", AMOUNT_NEEDS_CURRENCY)
    elif currency and amount is None:
        violations.add("amount", CURRENCY_NEEDS_AMOUNT)
    violations.raise_if_any()


def check_link(values: Mapping[str, Any], *, agency_id: Any = None) -> None:
    """Every rule of one link's own values (`values`: the link after the write; ends and case as records) that
    needs no other link; `check_provenance_free` is the one that does. With `agency_id`, its references too."""
    kind = str(values.get("kind") or "")
    source, target = values.get("source"), values.get("target")
    violations = Violations()
    _checked(violations, lambda: check_link_agency(agency_id, source, target, values.get("case")))
    if not violations:
        _checked(violations, lambda: check_link_ends(kind, source, target))
    _checked(violations, lambda: check_link_dates(values.get("start_date"), values.get("end_date")))
    _checked(violations, lambda: check_link_money(kind, values.get("share_pct"), values.get("amount"),
                                                  values.get("currency")))
    violations.raise_if_any()


def check_provenance_free(*, agency_id: Any, provenance_source: str, provenance_id: str,
                          exclude_pk: Any = None) -> None:
    """One link per (provenance source, id) in an agency."""
    if not provenance_id:
        return
    unique(Link.objects.filter(agency_id=agency_id, provenance_source=provenance_source or "",
                               provenance_id=provenance_id),
           field="provenance_id", message=PROVENANCE_TAKEN, exclude_pk=exclude_pk)
