"""The rules of shipments (with their legs) and licences, each written once.

Plain functions over plain values (numbers, dates, ids, lists): the services call them before every write,
the admin's forms call them in `clean()`, the importer's row check calls them on each row. Each raises
`core.rules.RuleViolation({field: [message]})`, so a message reads the same through every door. The value
formats (countries, HS codes, currencies, choices) are parsed before a rule sees them, by the API's fields
and the admin's cleaned fields.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from core.rules import RuleViolation, Violations, unique

MAX_LEGS = 50

# The API's own wording for a number out of range (DRF's), so the admin and a service say the same.
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."
AT_MOST_100 = "Ensure this value is less than or equal to 100."
SAME_AGENCY = "Only records of the same agency as this record may be named here."

SEIZED_OVER_QUANTITY = "More was seized than the shipment carried (quantity_kg)."
LEG_ARRIVES_BEFORE_DEPARTING = "A leg cannot arrive before it departs."
TOO_MANY_LEGS = f"At most {MAX_LEGS} legs."
TRANSIT_WITH_LEGS = ("This shipment has legs, and its transit countries come from them: "
                     "leave transit_countries out, or give the legs instead.")
SOURCE_ID_TAKEN = "Another shipment of this agency already has source_id {source_id!r} from this source."
LICENCE_ENDS_BEFORE_START = "A licence cannot expire before it starts (valid_from)."
LICENCE_NUMBER_TAKEN = "Your agency already has a licence numbered {number!r}."

SHIPMENT_QUANTITIES = ("quantity_kg", "declared_value", "seized_quantity_kg")
LICENCE_QUANTITIES = ("max_quantity_kg",)


def _not_negative(found: Violations, values: Mapping[str, Any], names: Iterable[str]) -> None:
    for name in names:
        value = values.get(name)
        if value is not None and Decimal(value) < 0:
            found.add(name, NOT_NEGATIVE)


# --- shipments -------------------------------------------------------------------------------


def leg_check(*, departed_on: datetime.date | None, arrived_on: datetime.date | None) -> None:
    """One leg of a route: it does not arrive before it departs (the same day is fine)."""
    if departed_on and arrived_on and arrived_on < departed_on:
        raise RuleViolation({"arrived_on": [LEG_ARRIVES_BEFORE_DEPARTING]})


def legs_check(legs: Sequence[Mapping[str, Any]]) -> None:
    """A route: at most MAX_LEGS legs, each leg sound. (The API names a bad leg by its index itself, as it
    parses; a caller in plain Python hears of it here, as `legs`.)"""
    found = Violations()
    if len(legs) > MAX_LEGS:
        found.add("legs", TOO_MANY_LEGS)
    for number, leg in enumerate(legs, start=1):
        try:
            leg_check(departed_on=leg.get("departed_on"), arrived_on=leg.get("arrived_on"))
        except RuleViolation as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    found.add("legs", f"Leg {number}, {field}: {message}")
    found.raise_if_any()


def transit_countries_check(*, has_legs: bool) -> None:
    """Transit countries given outright (an import file's column, a caller in plain Python) are taken only for
    a shipment without legs: with legs they are derived from the legs (`Shipment.derive_from_legs`), and a
    list given beside them could only contradict the route. (The API never takes them: read-only there.)"""
    if has_legs:
        raise RuleViolation({"transit_countries": [TRANSIT_WITH_LEGS]})


def shipment_check(values: Mapping[str, Any]) -> None:
    """The rules between a shipment's own values (its stored values with the change applied): quantities not
    negative, a purity between 0 and 100, no more seized than carried."""
    purity, seized, quantity = values.get("purity_pct"), values.get("seized_quantity_kg"), values.get("quantity_kg")
    try:  # the common case (parsed numbers, all fine) without collecting: an import checks every row
        if (all(value is None or value >= 0 for value in map(values.get, SHIPMENT_QUANTITIES))
                and (purity is None or 0 <= purity <= 100)
                and (seized is None or quantity is None or seized <= quantity)):
            return
    except TypeError:
        pass  # numbers given as text: read below
    found = Violations()
    _not_negative(found, values, SHIPMENT_QUANTITIES)
    if purity is not None and Decimal(purity) < 0:
        found.add("purity_pct", NOT_NEGATIVE)
    elif purity is not None and Decimal(purity) > 100:
        found.add("purity_pct", AT_MOST_100)
    if seized is not None and quantity is not None and Decimal(seized) > Decimal(quantity):
        found.add("seized_quantity_kg", SEIZED_OVER_QUANTITY)
    found.raise_if_any()


def shipment_source_id_check(*, agency_id: Any, source: str, source_id: str, exclude_id: Any = None) -> None:
    """A (source, source_id) names one shipment of an agency (an empty source_id names none)."""
    from shipments.models import Shipment

    if not source_id:
        return
    unique(Shipment.objects.filter(agency_id=agency_id, source=source or "", source_id=source_id),
           field="source_id", message=SOURCE_ID_TAKEN.format(source_id=source_id), exclude_pk=exclude_id)


def same_agency_check(*, agency_id: Any, references: Mapping[str, Any]) -> None:
    """Every record a record names (parties, holder, end user, licence, cases) is of the record's own agency.
    `references` maps a field to the agency id of what it names, or a list of them (None: names nothing)."""
    found = Violations()
    for field, agencies in references.items():
        items = agencies if isinstance(agencies, list | tuple | set) else [agencies]
        if any(item is not None and item != agency_id for item in items):
            found.add(field, SAME_AGENCY)
    found.raise_if_any()


# --- licences --------------------------------------------------------------------------------


def licence_check(values: Mapping[str, Any]) -> None:
    """The rules between a licence's own values: a quantity not negative, valid_from..valid_to in order."""
    found = Violations()
    _not_negative(found, values, LICENCE_QUANTITIES)
    valid_from, valid_to = values.get("valid_from"), values.get("valid_to")
    if valid_from and valid_to and valid_to < valid_from:
        found.add("valid_to", LICENCE_ENDS_BEFORE_START)
    found.raise_if_any()


def licence_number_check(*, agency_id: Any, number: str, exclude_id: Any = None) -> None:
    """A licence number is unique within its agency."""
    from shipments.models import Licence

    if not number:
        return
    unique(Licence.objects.filter(agency_id=agency_id, number=number),
           field="number", message=LICENCE_NUMBER_TAKEN.format(number=number), exclude_pk=exclude_id)
