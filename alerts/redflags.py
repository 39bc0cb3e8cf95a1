"""The red-flag rules (API.md § Alerts): each a small function over a batch of subjects that says which of them it
fires on, with a sentence a case officer reads and the records beside the subject (`related`).

A rule reads what it needs from its batch (`ShipmentBatch`, `EntityBatch`), which loads it for the whole batch
in a few queries the first time a rule asks: evaluating thousands of shipments costs a few queries, not a few per
shipment. Rules only find; `alerts.services.evaluate_*` runs them and `alerts.services.settle` writes what they
found. Thresholds are settings (ALERT_*; README § Configuration).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from cases.models import CaseParty, Commodity
from entities.models import Entity, EntityType, Link, LinkKind
from entities.normalize import fold
from shipments.models import PARTY_ROLES, Licence, LicenceStatus, Shipment, ShipmentLeg

from .models import AlertRule, Severity

SHIPMENT = "shipment"
ENTITY = "entity"


@dataclass(frozen=True)
class Hit:
    """A rule fired on a subject (`pk`): why, and what beside it. `severity` overrides the rule's."""

    pk: Any
    explanation: str
    related: list[dict[str, Any]] = field(default_factory=list)
    case_id: Any = None
    severity: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    subject: str  # SHIPMENT or ENTITY
    severity: str
    check: Callable[[Any], Iterable[Hit]]


RULES: dict[str, Rule] = {}


def rule(name: str, *, subject: str, severity: str) -> Callable[[Callable[[Any], Iterable[Hit]]], Any]:
    def register(check: Callable[[Any], Iterable[Hit]]) -> Callable[[Any], Iterable[Hit]]:
        RULES[name] = Rule(name, subject, severity, check)
        return check

    return register


def rules_for(subject: str) -> list[Rule]:
    return [r for r in RULES.values() if r.subject == subject]


# --- what the related items say ----------------------------------------------------------------------------------


def item(kind: str, pk: Any, label: str, **extra: Any) -> dict[str, Any]:
    """One `related` item (the format every producer of alerts uses)."""
    return {"type": kind, "id": str(pk), "label": label, **extra}


def _entity_item(entity: Any, **extra: Any) -> dict[str, Any]:
    if isinstance(entity, dict):
        return item(entity["type"], entity["id"], entity["name"], **extra)
    return item(entity.type, entity.pk, entity.name, **extra)


def _kg(value: Decimal | None) -> str:
    return f"{value.normalize():,f} kg" if value is not None else "an unknown quantity"


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _sentence(*parts: str) -> str:
    """Parts joined by semicolons into one sentence (a name that ends with a full stop ends it)."""
    text = "; ".join(parts)
    return text if text.endswith(".") else text + "."


def _digits(code: str) -> str:
    return "".join(ch for ch in code or "" if ch.isdigit())


# --- shipments ----------------------------------------------------------------------------------------------------


class Commodities:
    """The commodity reference table (a handful of rows), with its HS codes indexed by their six digits."""

    def __init__(self) -> None:
        self.by_code = {c.code: c for c in Commodity.objects.all()}
        self.by_hs: dict[str, list[Commodity]] = defaultdict(list)
        for commodity in self.by_code.values():
            for code in commodity.hs_codes:
                self.by_hs[_digits(code)[:6]].append(commodity)

    def of_hs(self, code: str) -> list[Commodity]:
        digits = _digits(code)
        return list(self.by_hs.get(digits[:6], ())) if len(digits) >= 6 else []


class ShipmentBatch:
    """Shipments (not archived) and what the shipment rules read of them, each part loaded once for the batch."""

    def __init__(self, shipments: list[Shipment]) -> None:
        self.items = shipments
        self.commodities = Commodities()

    def carried(self, s: Shipment) -> Commodity | None:
        """What the shipment carries: its commodity, else the one its actual HS code names (when only one does)."""
        if s.commodity_id:
            return self.commodities.by_code.get(s.commodity_id)
        found = self.commodities.of_hs(s.hs_code)
        return found[0] if len(found) == 1 else None

    def controlled(self, s: Shipment) -> list[tuple[Commodity, str]]:
        """The controlled commodities the shipment is, by its commodity or by its actual or declared HS code, each
        with how it was recognised."""
        found: dict[str, tuple[Commodity, str]] = {}
        if s.commodity_id and s.commodity_id in self.commodities.by_code:
            found[s.commodity_id] = (self.commodities.by_code[s.commodity_id], "its commodity")
        for code, how in ((s.hs_code, "HS code"), (s.declared_hs_code, "declared HS code")):
            for commodity in self.commodities.of_hs(code):
                found.setdefault(commodity.code, (commodity, f"{how} {code}"))
        return [(c, how) for c, how in found.values() if c.licence_required and c.controlled_since]

    @staticmethod
    def is_export(s: Shipment) -> bool:
        countries = [c for c in settings.ALERT_EXPORT_COUNTRIES if c]  # an empty setting: any origin
        return not countries or s.origin_country in countries

    def date(self, s: Shipment) -> tuple[datetime.date | None, str]:
        """When it left: its departure, else the first date its legs or its seizure give."""
        if s.departed_on:
            return s.departed_on, "departed"
        for leg in self.legs.get(s.pk, ()):
            if leg.arrived_on:
                return leg.arrived_on, "arrived at a leg's end"
        if s.seized_on:
            return s.seized_on, "seized"
        return None, ""

    @cached_property
    def legs(self) -> dict[Any, list[ShipmentLeg]]:
        """The legs of the shipments that route through a third country or have no departure date."""
        legs: dict[Any, list[ShipmentLeg]] = defaultdict(list)
        wanted = [s.pk for s in self.items if s.transit_countries or not s.departed_on]  # ports, or a date
        for leg in ShipmentLeg.objects.filter(shipment_id__in=wanted).order_by("shipment", "seq"):
            legs[leg.shipment_id].append(leg)
        return legs

    @cached_property
    def cases(self) -> dict[Any, Any]:
        """Each shipment's case (the first by reference) to attach its alerts to."""
        through = Shipment.cases.through.objects.filter(shipment_id__in=[s.pk for s in self.items],
                                                        case__archived=False)
        found: dict[Any, Any] = {}
        for shipment_id, case_id in through.order_by("shipment_id", "case__reference").values_list(
                "shipment_id", "case_id"):
            found.setdefault(shipment_id, case_id)
        return found

    @cached_property
    def parties(self) -> dict[Any, dict[str, Any]]:
        """The consignees and licence end users of the batch's licensed shipments: {id, name, type} by id."""
        ids = {pk for s in self.items if s.licence is not None for pk in (s.consignee_id, s.licence.end_user_id)}
        return {row["id"]: dict(row) for row in Entity.objects.filter(pk__in=ids - {None}).values("id", "name", "type")}

    @cached_property
    def licence_totals(self) -> dict[Any, Decimal]:
        """Per shipment under a licence its shipments exceed together: the quantity the licence's shipments carried
        up to it and with it (by departure, then by when they were recorded). The licences within their maximum
        are left out by one aggregate first."""
        licences = list({s.licence_id for s in self.items if s.licence_id})
        if not licences:
            return {}
        with connection.cursor() as cursor:
            cursor.execute("""
                WITH over AS (
                    SELECT s.licence_id FROM shipments_shipment s JOIN shipments_licence l ON l.id = s.licence_id
                    WHERE s.licence_id = ANY(%(licences)s) AND NOT s.archived AND l.max_quantity_kg IS NOT NULL
                    GROUP BY s.licence_id, l.max_quantity_kg HAVING sum(s.quantity_kg) > l.max_quantity_kg)
                SELECT id, total FROM (
                    SELECT id, sum(coalesce(quantity_kg, 0)) OVER (PARTITION BY licence_id
                        ORDER BY departed_on NULLS LAST, created_at, id) AS total
                    FROM shipments_shipment WHERE licence_id IN (SELECT licence_id FROM over) AND NOT archived
                ) t WHERE id = ANY(%(ids)s)
            """, {"licences": licences, "ids": [s.pk for s in self.items]})
            return dict(cursor.fetchall())

    def hit(self, s: Shipment, explanation: str, related: list[dict[str, Any]] | None = None,
            severity: str | None = None) -> Hit:
        return Hit(s.pk, explanation, related or [], self.cases.get(s.pk), severity)


def _licence_item(licence: Licence, **extra: Any) -> dict[str, Any]:
    return item("licence", licence.pk, licence.number, **extra)


@rule(AlertRule.UNLICENSED_EXPORT, subject=SHIPMENT, severity=Severity.HIGH)
def unlicensed_export(batch: ShipmentBatch) -> Iterator[Hit]:
    """A controlled commodity exported on or after its control date without a licence."""
    for s in batch.items:
        if (s.licence is not None and not s.licence.archived) or not batch.is_export(s):
            continue
        when, how = batch.date(s)
        for commodity, recognised in batch.controlled(s):
            if when is not None and commodity.controlled_since and when >= commodity.controlled_since:
                yield batch.hit(s, f"{commodity.name} (by {recognised}) {how} {when:%Y-%m-%d} from "
                                   f"{s.origin_country or 'an unknown country'} without an export licence; "
                                   f"licences are required since {commodity.controlled_since:%Y-%m-%d} "
                                   f"({commodity.control_regime}).")
                break


@rule(AlertRule.LICENCE_INVALID, subject=SHIPMENT, severity=Severity.HIGH)
def licence_invalid(batch: ShipmentBatch) -> Iterator[Hit]:
    """A licence that did not cover the shipment: not valid at departure (expired, not yet valid, revoked,
    suspected forgery), for another commodity, another destination or another end user than the consignee."""
    for s in batch.items:
        licence = s.licence if s.licence_id else None
        if licence is None or licence.archived:
            continue
        when, _ = batch.date(s)
        reasons = []
        if licence.status != LicenceStatus.VALID:
            reasons.append(f"its status is {licence.get_status_display().lower()}")
        if when and licence.valid_to and when > licence.valid_to:
            reasons.append(f"it expired on {licence.valid_to:%Y-%m-%d}, before the departure on {when:%Y-%m-%d}")
        if when and licence.valid_from and when < licence.valid_from:
            reasons.append(f"it was valid only from {licence.valid_from:%Y-%m-%d}, after the departure on "
                           f"{when:%Y-%m-%d}")
        carried = batch.carried(s)
        if carried is not None and licence.commodity_id != carried.code:
            licensed = batch.commodities.by_code.get(licence.commodity_id)
            reasons.append(f"it is for {licensed.name if licensed else licence.commodity_id}, not {carried.name}")
        if licence.destination_country and s.destination_country and \
                licence.destination_country != s.destination_country:
            reasons.append(f"it is for exports to {licence.destination_country}, not {s.destination_country}")
        wrong_end_user = None
        if licence.end_user_id and s.consignee_id and licence.end_user_id != s.consignee_id:
            wrong_end_user = batch.parties[licence.end_user_id]
            reasons.append(f"its end user is {wrong_end_user['name']}, not the consignee "
                           f"{batch.parties[s.consignee_id]['name']}")
        if reasons:
            related = [_licence_item(licence, status=licence.status)]
            if wrong_end_user is not None:
                related.append(_entity_item(wrong_end_user, role="end_user"))
            yield batch.hit(s, _sentence(f"Licence {licence.number} does not cover this shipment: {reasons[0]}",
                                         *reasons[1:]), related)


@rule(AlertRule.LICENCE_EXCEEDED, subject=SHIPMENT, severity=Severity.HIGH)
def licence_exceeded(batch: ShipmentBatch) -> Iterator[Hit]:
    """More than the licence's maximum quantity: in this shipment, or with the licence's earlier shipments."""
    for s in batch.items:
        licence = s.licence if s.licence_id else None
        if licence is None or licence.archived or licence.max_quantity_kg is None:
            continue
        maximum = licence.max_quantity_kg
        total = batch.licence_totals.get(s.pk)
        if s.quantity_kg is not None and s.quantity_kg > maximum:
            text = f"This shipment's {_kg(s.quantity_kg)} exceed licence {licence.number}'s maximum of {_kg(maximum)}."
        elif total is not None and total > maximum:
            text = (f"With this shipment ({_kg(s.quantity_kg)}) the shipments under licence {licence.number} total "
                    f"{_kg(total)}, over its maximum of {_kg(maximum)}.")
        else:
            continue
        yield batch.hit(s, text, [_licence_item(licence, max_quantity_kg=str(maximum))])


@rule(AlertRule.THIRD_COUNTRY_TRANSIT, subject=SHIPMENT, severity=Severity.MEDIUM)
def third_country_transit(batch: ShipmentBatch) -> Iterator[Hit]:
    """A route through a country that is neither its origin nor its destination (high through a transit hub)."""
    hubs = set(settings.ALERT_TRANSIT_HUBS)
    for s in batch.items:
        transit = [c for c in s.transit_countries if c not in (s.origin_country, s.destination_country)]
        if not transit:
            continue
        ports: dict[str, list[str]] = defaultdict(list)
        for leg in batch.legs.get(s.pk, ()):
            for country, port in ((leg.from_country, leg.from_port), (leg.to_country, leg.to_port)):
                if country in transit and port and port not in ports[country]:
                    ports[country].append(port)
        via = ", ".join(f"{c} ({', '.join(ports[c])})" if ports[c] else c for c in transit)
        through_hubs = [c for c in transit if c in hubs]
        text = f"Routed from {s.origin_country or '?'} to {s.destination_country or '?'} through {via}"
        text += f", a transit hub ({', '.join(through_hubs)})." if through_hubs else "."
        yield batch.hit(s, text, severity=Severity.HIGH if through_hubs else None)


# Words a description names each commodity by (beside its code and name).
COMMODITY_WORDS = {
    "antimony": ("antimony", "stibnite", "antimonial"),
    "gallium": ("gallium",),
    "germanium": ("germanium",),
    "graphite": ("graphite",),
    "rare_earths": ("rare earth", "samarium", "gadolinium", "terbium", "dysprosium", "lutetium", "scandium",
                    "yttrium"),
    "tungsten": ("tungsten", "wolfram"),
}


def _names(commodity: Commodity, description: str) -> bool:
    text = f" {fold(description)} "
    words = {*COMMODITY_WORDS.get(commodity.code, ()), commodity.code.replace("_", " "),
             fold(commodity.name.partition("(")[0])}
    return any(f" {fold(word)}" in text for word in words if word)


def _unit_value(s: Shipment, commodity: Commodity) -> Decimal | None:
    """The declared value per kg, when it can be compared with the commodity's reference (same currency)."""
    if not s.declared_value or not s.quantity_kg or not commodity.reference_value_per_kg:
        return None
    if s.currency and s.currency != commodity.currency:
        return None
    return s.declared_value / s.quantity_kg


@rule(AlertRule.MISDECLARED_COMMODITY, subject=SHIPMENT, severity=Severity.HIGH)
def misdeclared_commodity(batch: ShipmentBatch) -> Iterator[Hit]:
    """Declared under an HS code that is not the carried commodity's, or with a description that does not name
    it, or at a value per kg implausible for the declared code (when that names another commodity than the one
    carried, or the carried one is not known)."""
    factor = Decimal(str(settings.ALERT_DECLARED_VALUE_FACTOR))
    for s in batch.items:
        carried = batch.carried(s)
        reasons = []
        declared = _digits(s.declared_hs_code)
        if carried is not None and declared:
            codes = {_digits(c)[:6] for c in carried.hs_codes}
            if declared[:6] not in codes and not any(code.startswith(declared) for code in codes):
                reasons.append(f"declared under HS {s.declared_hs_code}, which is not among {carried.name}'s codes "
                               f"({', '.join(carried.hs_codes)})")
        if carried is not None and s.declared_description and not _names(carried, s.declared_description):
            reasons.append(f"declared as \u201c{s.declared_description}\u201d, which does not name {carried.name}")
        named = batch.commodities.of_hs(s.declared_hs_code)
        # Declared as what it is (the code may name several): a low value is value_anomaly's.
        if named and (carried is None or carried not in named):
            units = [(c, _unit_value(s, c)) for c in named]
            if all(unit is not None and c.reference_value_per_kg
                   and not (c.reference_value_per_kg / factor <= unit <= c.reference_value_per_kg * factor)
                   for c, unit in units):
                commodity, unit = units[0]
                reasons.append(f"declared at {unit:,.2f} {commodity.currency}/kg, implausible for HS "
                               f"{s.declared_hs_code} ({' or '.join(c.name for c in named)}, about "
                               f"{' or '.join(f'{c.reference_value_per_kg:,.2f}' for c in named)} "
                               f"{commodity.currency}/kg)")
        if reasons:
            carries = f"Carries {carried.name if carried else 'goods'} (HS {s.hs_code or '?'})"
            yield batch.hit(s, _sentence(f"{carries} {reasons[0]}", *reasons[1:]))


@rule(AlertRule.VALUE_ANOMALY, subject=SHIPMENT, severity=Severity.MEDIUM)
def value_anomaly(batch: ShipmentBatch) -> Iterator[Hit]:
    """A declared unit value far below the carried commodity's reference value per kg."""
    ratio = Decimal(str(settings.ALERT_VALUE_RATIO))
    for s in batch.items:
        carried = batch.carried(s)
        unit = _unit_value(s, carried) if carried is not None else None
        if carried is None or unit is None or carried.reference_value_per_kg is None:
            continue
        reference = carried.reference_value_per_kg
        if unit < reference * ratio:
            yield batch.hit(s, f"Declared at {unit:,.2f} {carried.currency}/kg ({s.declared_value:,.2f} for "
                               f"{_kg(s.quantity_kg)}), {unit / reference:.1%} of {carried.name}'s reference value of "
                               f"{reference:,.2f} {carried.currency}/kg (below {ratio:.0%}).")


# --- persons and organisations -----------------------------------------------------------------------------------


def address_key(address: Any) -> str:
    """An address as compared: folded, one spelling per word, its distinguishing tokens and postcode."""
    from xref.matching.records import address as parse

    text = address.get("text", "") if isinstance(address, dict) else str(address or "")
    parsed = parse(text) if text else None
    return f"{parsed.street}|{parsed.postcode}" if parsed is not None and parsed.street else ""


@dataclass
class Suspect:
    """A suspect-type party of a case (ALERT_SUSPECT_ROLES)."""

    entity: dict[str, Any]
    case_id: Any
    case_reference: str
    role: str

    def items(self, **extra: Any) -> list[dict[str, Any]]:
        return [_entity_item(self.entity, role=self.role, case=self.case_reference, **extra),
                item("case", self.case_id, self.case_reference)]


def suspects_of(agency_ids: Iterable[Any], *, entity_ids: Iterable[Any] | None = None) -> list[Suspect]:
    """The suspect-type parties of the agencies' live cases (or those of `entity_ids` among them), by case
    reference."""
    parties = CaseParty.objects.filter(role__in=settings.ALERT_SUSPECT_ROLES, archived=False, case__archived=False,
                                       entity__archived=False, entity__agency_id__in=list(agency_ids))
    if entity_ids is not None:
        parties = parties.filter(entity_id__in=list(entity_ids))
    rows = parties.order_by("case__reference", "created_at").values(
        "entity_id", "entity__name", "entity__type", "entity__agency_id", "entity__addresses", "entity__phones",
        "case_id", "case__reference", "role")
    return [Suspect({"id": r["entity_id"], "name": r["entity__name"], "type": r["entity__type"],
                     "agency_id": r["entity__agency_id"], "addresses": r["entity__addresses"] or [],
                     "phones": r["entity__phones"] or []}, r["case_id"], r["case__reference"], r["role"])
            for r in rows]


class EntityBatch:
    """Persons and organisations (not archived) and what the entity rules read of them."""

    def __init__(self, entities: list[Entity]) -> None:
        self.items = entities
        self.organizations = [e for e in entities if e.type == EntityType.ORGANIZATION]

    @cached_property
    def suspects(self) -> dict[Any, list[Suspect]]:
        """Per agency of the batch, its suspects."""
        found: dict[Any, list[Suspect]] = defaultdict(list)
        for suspect in suspects_of({e.agency_id for e in self.items}):
            found[suspect.entity["agency_id"]].append(suspect)
        return found

    @cached_property
    def suspects_of_entity(self) -> dict[Any, dict[Any, list[Suspect]]]:
        """Per agency, its suspects by their entity."""
        found: dict[Any, dict[Any, list[Suspect]]] = defaultdict(lambda: defaultdict(list))
        for agency_id, suspects in self.suspects.items():
            for suspect in suspects:
                found[agency_id][suspect.entity["id"]].append(suspect)
        return found

    def suspects_by(self, what: str, values: Callable[[dict[str, Any]], dict[str, str]]
                    ) -> dict[Any, dict[str, list[tuple[int, Suspect]]]]:
        """Per agency, the person suspects by each of their `values` (keys), each with its place in the
        agency's order (by case reference); computed once per batch for each `what`."""
        cache: dict[str, Any] = self.__dict__.setdefault("_suspects_by", {})
        if what not in cache:
            index: dict[Any, dict[str, list[tuple[int, Suspect]]]] = defaultdict(lambda: defaultdict(list))
            for agency_id, suspects in self.suspects.items():
                for n, suspect in enumerate(suspects):
                    if suspect.entity["type"] == EntityType.PERSON:
                        for key in values(suspect.entity):
                            index[agency_id][key].append((n, suspect))
            cache[what] = index
        return cache[what]

    @cached_property
    def first_shipments(self) -> dict[Any, tuple[datetime.date, Any, str]]:
        """Per organisation that is a party of a dated shipment: the first one's date, id and reference."""
        ids = [e.pk for e in self.organizations]
        if not ids:
            return {}
        union = " UNION ALL ".join(
            f"SELECT {role}_id AS party, departed_on, id, reference FROM shipments_shipment "  # noqa: S608
            f"WHERE {role}_id = ANY(%(ids)s) AND NOT archived AND departed_on IS NOT NULL" for role in PARTY_ROLES)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT ON (party) party, departed_on, id, reference FROM ({union}) p "  # noqa: S608
                           "ORDER BY party, departed_on, id", {"ids": ids})
            return {party: (when, pk, reference) for party, when, pk, reference in cursor.fetchall()}

    @cached_property
    def officers(self) -> dict[Any, list[dict[str, Any]]]:
        """Per organisation: its directors and owners (live links), each {id, name, type, kind}."""
        found: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in Link.objects.filter(target_id__in=[e.pk for e in self.organizations], archived=False,
                                       source__archived=False,
                                       kind__in=(LinkKind.DIRECTORSHIP, LinkKind.OWNERSHIP)).values(
                "target_id", "source_id", "source__name", "source__type", "kind"):
            found[row["target_id"]].append({"id": row["source_id"], "name": row["source__name"],
                                            "type": row["source__type"], "kind": row["kind"]})
        return found

    @cached_property
    def co_officed(self) -> dict[Any, list[Any]]:
        """Per officer of the batch's organisations: the other organisations it directs or owns."""
        officers = {o["id"] for rows in self.officers.values() for o in rows}
        found: dict[Any, list[Any]] = defaultdict(list)
        for source_id, target_id in Link.objects.filter(
                source_id__in=officers, archived=False, target__archived=False,
                kind__in=(LinkKind.DIRECTORSHIP, LinkKind.OWNERSHIP)).values_list("source_id", "target_id"):
            found[source_id].append(target_id)
        return found

    @cached_property
    def parties(self) -> set[Any]:
        """The batch's entities that are parties of a live shipment or case."""
        ids = [e.pk for e in self.items]
        found = set(CaseParty.objects.filter(entity_id__in=ids, archived=False, case__archived=False)
                    .values_list("entity_id", flat=True))
        union = " UNION ".join(f"SELECT {role}_id FROM shipments_shipment "  # noqa: S608
                               f"WHERE {role}_id = ANY(%(ids)s) AND NOT archived" for role in PARTY_ROLES)
        with connection.cursor() as cursor:
            cursor.execute(union, {"ids": ids})
            return found | {pk for (pk,) in cursor.fetchall()}


@rule(AlertRule.NEW_COMPANY, subject=ENTITY, severity=Severity.LOW)
def new_company(batch: EntityBatch) -> Iterator[Hit]:
    """A company incorporated less than ALERT_NEW_COMPANY_DAYS before its first shipment as a party."""
    days = settings.ALERT_NEW_COMPANY_DAYS
    for org in batch.organizations:
        first = batch.first_shipments.get(org.pk)
        if org.incorporated_on is None or first is None:
            continue
        when, shipment_id, reference = first
        gap = (when - org.incorporated_on).days
        if gap < days:
            age = f"{gap} days after" if gap >= 0 else f"{-gap} days before"
            yield Hit(org.pk, f"Incorporated on {org.incorporated_on:%Y-%m-%d}; its first shipment, {reference}, "
                              f"departed {age} (less than {days} days).",
                      [item("shipment", shipment_id, reference, departed_on=f"{when:%Y-%m-%d}")])


def _shared(batch: EntityBatch, values: Callable[[dict[str, Any]], dict[str, str]], what: str) -> Iterator[Hit]:
    """Organisations that share a value (`values`: key -> as written) with a person who is a suspect of a case."""
    index = batch.suspects_by(what, values)
    for org in batch.organizations:
        own = values({"addresses": org.addresses, "phones": org.phones})
        by_key = index.get(org.agency_id, {})
        found = sorted(((n, suspect, own[key]) for key in own for n, suspect in by_key.get(key, ())
                        if suspect.entity["id"] != org.pk), key=lambda hit: hit[0])
        if found:
            _, first, value = found[0]
            names = "; ".join(dict.fromkeys(f"{s.entity['name']} ({s.role} in {s.case_reference})"
                                            for _, s, _ in found))
            related = [i for _, suspect, _ in found for i in suspect.items()]
            related = list({(i["type"], i["id"]): i for i in related}.values())
            yield Hit(org.pk, _sentence(f"Shares the {what} {value} with {names}"), related, first.case_id)


def _addresses(record: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for address in record.get("addresses") or ():
        key = address_key(address)
        if key:
            found.setdefault(key, address.get("text", "") if isinstance(address, dict) else str(address))
    return found


@rule(AlertRule.SHARED_ADDRESS, subject=ENTITY, severity=Severity.MEDIUM)
def shared_address(batch: EntityBatch) -> Iterator[Hit]:
    """An organisation at the address (normalised) of a person who is a suspect of a case."""
    return _shared(batch, _addresses, "address")


@rule(AlertRule.SHARED_PHONE, subject=ENTITY, severity=Severity.MEDIUM)
def shared_phone(batch: EntityBatch) -> Iterator[Hit]:
    """An organisation with the phone of a person who is a suspect of a case."""
    return _shared(batch, lambda record: {p: p for p in record.get("phones") or ()}, "phone")


@rule(AlertRule.SHARED_OFFICER, subject=ENTITY, severity=Severity.HIGH)
def shared_officer(batch: EntityBatch) -> Iterator[Hit]:
    """An organisation whose director or owner is a suspect of a case, or also directs or owns an organisation
    that is one."""
    for org in batch.organizations:
        suspects = batch.suspects_of_entity.get(org.agency_id, {})
        reasons, related, case_id = [], [], None
        for officer in batch.officers.get(org.pk, ()):
            title = "director" if officer["kind"] == LinkKind.DIRECTORSHIP else "owner"
            for suspect in suspects.get(officer["id"], ())[:1]:
                reasons.append(f"its {title} {officer['name']} is {_a(suspect.role)} in {suspect.case_reference}")
                related += suspect.items(link=officer["kind"])
                case_id = case_id or suspect.case_id
            for other in batch.co_officed.get(officer["id"], ()):  # (an officer's other companies)
                for suspect in suspects.get(other, ())[:1] if other != org.pk else ():
                    reasons.append(f"its {title} {officer['name']} also directs or owns {suspect.entity['name']}, "
                                   f"{_a(suspect.role)} in {suspect.case_reference}")
                    related += [_entity_item(officer, link=officer["kind"]), *suspect.items()]
                    case_id = case_id or suspect.case_id
        if reasons:
            related = list({(i["type"], i["id"]): i for i in related}.values())
            reasons = list(dict.fromkeys(reasons))
            yield Hit(org.pk, _sentence(f"Shares an officer with a suspect: {reasons[0]}", *reasons[1:]), related,
                      case_id)


@rule(AlertRule.WATCHLIST_MATCH, subject=ENTITY, severity=Severity.HIGH)
def watchlist_match(batch: EntityBatch) -> Iterator[Hit]:
    """A party of a shipment or a case that cross-referencing matched (not rejected, same agency, scoring
    XREF_PROPOSE_THRESHOLD or more) to an entry of a watchlist."""
    from watchlists.models import WatchlistEntry
    from xref.models import Match, MatchStatus

    subjects = {e.pk: e for e in batch.items if not e.lists and e.pk in batch.parties}
    if not subjects:
        return
    matches = (Match.objects.filter(Q(left_id__in=list(subjects)) | Q(right_id__in=list(subjects)),
                                    archived=False, score__gte=settings.XREF_PROPOSE_THRESHOLD)
               .exclude(status=MatchStatus.REJECTED).values("left_id", "right_id", "left_agency_id",
                                                             "right_agency_id", "score", "explanation"))
    pairs = [(m["left_id"] if m["left_id"] in subjects else m["right_id"],
              m["right_id"] if m["left_id"] in subjects else m["left_id"], m)
             for m in matches if m["left_agency_id"] == m["right_agency_id"]]
    listed = {e["id"]: e for e in Entity.objects.filter(pk__in={other for _, other, _ in pairs}, archived=False)
              .exclude(lists=[]).values("id", "name", "type", "lists")}
    entries: dict[Any, list[tuple[str, list[str]]]] = defaultdict(list)
    for row in WatchlistEntry.objects.filter(entity_id__in=list(listed), delisted_at__isnull=True).order_by(
            "watchlist__source").values("entity_id", "watchlist__source", "programmes"):
        entries[row["entity_id"]].append((row["watchlist__source"], row["programmes"] or []))
    found: dict[Any, list[tuple[dict[str, Any], str, list[str], dict[str, Any]]]] = defaultdict(list)
    for subject, other, match in sorted(pairs, key=lambda p: -p[2]["score"]):
        if other in listed:
            for source, programmes in entries.get(other) or [(s, []) for s in listed[other]["lists"]]:
                found[subject].append((dict(listed[other]), source, programmes, dict(match)))
    for subject, hits in found.items():
        parts = [f"{entry['name']} on {source}" + (f" ({', '.join(programmes)})" if programmes else "")
                 + f", score {match['score']:.2f}: {match['explanation']}"
                 for entry, source, programmes, match in hits]
        related = [_entity_item(entry, list=source, programmes=programmes, score=round(match["score"], 2),
                                reasons=match["explanation"]) for entry, source, programmes, match in hits]
        yield Hit(subject, _sentence(f"Matches a listed entry: {parts[0]}", *parts[1:]), related)
