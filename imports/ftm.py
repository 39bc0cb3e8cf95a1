"""FollowTheMoney JSON lines, read by the FtM schema hierarchy (the `followthemoney` package's model), so a
schema is taken as what it extends:

- a Person (or a schema extending it) is a person; any other LegalEntity (Company, Organization, PublicBody, …)
  an organisation, its `kind` from the nearest schema that names one (Company → company, PublicBody →
  government);
- an Address is folded into the entities that name it (`addressEntity`), an Identification (Passport, …) into its
  holder's identifiers; both lines are counted `unchanged`;
- an Interest, Interval or Value that joins two of them is a link, by the nearest schema of `LINKS` it is or
  extends (Ownership, Directorship, Employment, Membership, Family, Associate, Representation, Payment, Debt,
  UnknownLink), between the schema's own edge properties (owner → asset, employee → employer, …);
- every other schema is reported on its line as skipped, with the reason (`skip_reason`).

Rows are the file's lines; link lines are read in a second pass, once every entity of the file is written.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import IO, Any

from followthemoney import model
from followthemoney.schema import Schema
from rest_framework import serializers

from core.api.validation import CurrencyField, amount_field, percent_field
from core.rules import RuleViolation
from entities import rules
from entities.models import Entity, Link, LinkKind

from .readers import BadFile, _check_text, parse_json

# schema: (link kind, subtype when the line gives none). The ends are the schema's own edge properties.
LINKS = {
    "Ownership": (LinkKind.OWNERSHIP, ""),
    "Directorship": (LinkKind.DIRECTORSHIP, ""),
    "Employment": (LinkKind.EMPLOYMENT, ""),
    # A member of an organisation works within it: the nearest of the service's kinds, told apart by its subtype.
    "Membership": (LinkKind.EMPLOYMENT, "member"),
    "Family": (LinkKind.FAMILY, ""),
    "Associate": (LinkKind.ASSOCIATE, ""),
    "Representation": (LinkKind.REPRESENTATION, ""),
    "Payment": (LinkKind.FINANCING, ""),
    "Debt": (LinkKind.FINANCING, "debt"),
    # An unqualified link between two persons; between others, the link's rules refuse it on its line.
    "UnknownLink": (LinkKind.ASSOCIATE, "unknown"),
}
ORG_KINDS = {"Company": "company", "PublicBody": "government", "Organization": "other"}  # the nearest decides
IDENTIFIER_SCHEMES = {"Passport": "passport"}  # an Identification schema → the identifier's scheme

PERSON, ORGANIZATION, ADDRESS, IDENTIFICATION, LINK, SKIPPED = (
    "person", "organization", "address", "identification", "link", "skipped")


def lineage(schema: Schema) -> Iterator[Schema]:
    """The schema, then what it extends, nearest first (breadth first, each once)."""
    seen: set[str] = set()
    queue = [schema]
    while queue:
        current = queue.pop(0)
        if current.name not in seen:
            seen.add(current.name)
            yield current
            queue.extend(sorted(current.extends, key=lambda s: s.name))


def _nearest(schema: Schema, names: dict[str, Any]) -> Any:
    return next((names[s.name] for s in lineage(schema) if s.name in names), None)


def classify(item: dict[str, Any]) -> tuple[str, str]:
    """What the import makes of a line: (PERSON | ORGANIZATION | ADDRESS | IDENTIFICATION | LINK, "") or
    (SKIPPED, the reason)."""
    name = str(item.get("schema") or "")
    schema = model.get(name) if name else None
    if schema is None:
        return SKIPPED, f"{name!r} is not a FollowTheMoney schema." if name else "The line names no schema."
    if schema.is_a("Person"):
        return PERSON, ""
    if schema.is_a("LegalEntity"):
        return ORGANIZATION, ""
    if schema.is_a("Address"):
        return ADDRESS, ""
    if schema.is_a("Identification"):
        return IDENTIFICATION, ""
    if _nearest(schema, LINKS) is not None:
        return LINK, ""
    return SKIPPED, skip_reason(schema)


def skip_reason(schema: Schema) -> str:
    if schema.is_a("Sanction"):
        return ("Skipped: a Sanction is not imported as a record; a listed entity's `topics` (and `program`) make "
                "the import a watchlist.")
    if schema.is_a("Succession"):
        return "Skipped: one organisation succeeding another has no link kind in this service."
    if schema.edge:
        return (f"Skipped: {schema.name} ({schema.edge_source} → {schema.edge_target}) has no link kind in this "
                f"service (it keeps {', '.join(sorted(LINKS))}).")
    if schema.is_a("Thing"):
        return (f"Skipped: a {schema.name} is not a person or an organisation, the only things this service "
                f"indexes.")
    return f"Skipped: a {schema.name} is not a person, an organisation, an address or a link between them."


def _schema(item: dict[str, Any]) -> Schema:
    """The schema of a line that `classify` took (so one the model knows)."""
    schema = model.get(str(item["schema"]))
    if schema is None:
        raise ValueError(f"{item['schema']!r} is not a FollowTheMoney schema")
    return schema


def link_schema(item: dict[str, Any]) -> tuple[LinkKind, str, str, str]:
    """(kind, default subtype, source property, target property) of a LINK line."""
    schema = _schema(item)
    kind, subtype = _nearest(schema, LINKS)
    return kind, subtype, str(schema.edge_source or ""), str(schema.edge_target or "")


def link_ends(item: dict[str, Any]) -> tuple[str, str]:
    """The ids a LINK line names at its two ends ("" where it names none)."""
    _, _, source_prop, target_prop = link_schema(item)
    props = item.get("properties", {})
    return _first(props.get(source_prop)), _first(props.get(target_prop))


def lines(binary: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    binary.seek(0)
    number = 0
    for raw in binary:
        text = raw.decode("utf-8-sig").strip()
        if not text:
            continue
        number += 1
        try:
            item = parse_json(text)
        except ValueError as exc:  # JSONDecodeError among them
            yield number, None, f"Not valid JSON: {exc}."
            continue
        if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict) or not item.get("id"):
            yield number, None, "Not a FollowTheMoney entity (an object with id, schema and properties)."
            continue
        yield number, item, ""


def check_file(binary: IO[bytes]) -> None:
    """An FtM file is UTF-8 JSON lines whose first line is an object, or a bad file."""
    binary.seek(0)
    head = binary.read(4096)
    binary.seek(0)
    if not head.replace(b"\xef\xbb\xbf", b"").strip():
        raise BadFile("The file is empty.")
    _check_text(binary)
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise BadFile("An ftm file is FollowTheMoney JSON lines: one entity object a line.")


def count_lines(binary: IO[bytes], limit: int) -> int:
    """The rows of an FtM file (its lines that are not blank), as `lines` numbers them; over `limit`, a bad file."""
    binary.seek(0)
    total = 0
    for raw in binary:
        if raw.decode("utf-8-sig").strip():
            total += 1
            if total > limit:
                raise BadFile(f"The file has more than {limit} rows, the import limit (IMPORT_MAX_ROWS): "
                              "split it into several files.")
    binary.seek(0)
    return total


def addresses(binary: IO[bytes]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for _, item, _ in lines(binary):
        if item is not None and classify(item)[0] == ADDRESS:
            props = item.get("properties", {})
            text = _first(props.get("full")) or ", ".join(
                v for v in (_first(props.get("street")), _first(props.get("city"))) if v)
            found[str(item["id"])] = {"text": text, "country": _first(props.get("country")).upper()}
    return found


def identifications(binary: IO[bytes]) -> dict[str, list[dict[str, str]]]:
    """The file's Identification lines (Passport, …) by the id of their holder: the holder's identifiers."""
    found: dict[str, list[dict[str, str]]] = {}
    for _, item, _ in lines(binary):
        if item is None or classify(item)[0] != IDENTIFICATION:
            continue
        props = item.get("properties", {})
        holder, number = _first(props.get("holder")), _first(props.get("number"))
        if holder and number:
            scheme = _nearest(_schema(item), IDENTIFIER_SCHEMES) or "other"
            found.setdefault(holder, []).append(
                {"scheme": scheme, "number": number, "country": _first(props.get("country")).upper()})
    return found


def _first(values: Any) -> str:
    return str(values[0]) if isinstance(values, list) and values else ""


def entity_row(item: dict[str, Any], known_addresses: dict[str, dict[str, str]],
               known_identifiers: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    """The API's input for an FtM Person or other LegalEntity (classify's PERSON or ORGANIZATION)."""
    props = item.get("properties", {})
    names = [str(n) for n in props.get("name", [])] + [str(n) for n in props.get("alias", [])]
    row: dict[str, Any] = {"source_id": str(item["id"])[:200], "name": names[0] if names else "",
                           "names": names[1:]}
    countries = [str(c).upper() for c in props.get("country", []) + props.get("nationality", [])]
    schema = _schema(item)
    if schema.is_a("Person"):
        if countries:
            row["nationalities"] = list(dict.fromkeys(countries))
        if props.get("birthDate"):
            row["birth_date"] = _first(props["birthDate"])[:10]
        if props.get("gender"):
            row["gender"] = _first(props["gender"])  # FtM's male/female/other, which the API reads too
        if props.get("birthPlace"):
            row["birth_place"] = _first(props["birthPlace"])
    else:
        jurisdiction = _first(props.get("jurisdiction")).upper() or (countries[0] if countries else "")
        if jurisdiction:
            row["jurisdiction"] = jurisdiction
        if props.get("registrationNumber"):
            row["registration_number"] = _first(props["registrationNumber"])
        for prop, name in (("incorporationDate", "incorporated_on"), ("dissolutionDate", "dissolved_on")):
            if props.get(prop):
                row[name] = _first(props[prop])[:10]
        if props.get("website"):
            row["website"] = _first(props["website"])
        if kind := _nearest(schema, ORG_KINDS):
            row["kind"] = kind
    addrs = [known_addresses[a] for a in props.get("addressEntity", []) if a in known_addresses]
    addrs += [{"text": str(a), "country": ""} for a in props.get("address", [])]
    if addrs:
        row["addresses"] = addrs
    if props.get("phone"):
        row["phones"] = [str(p) for p in props["phone"]]
    if props.get("email"):
        row["emails"] = [str(e) for e in props["email"]]
    if props.get("notes"):
        row["notes"] = "\n\n".join(str(n) for n in props["notes"])
    if props.get("idNumber"):
        row["identifiers"] = [{"scheme": "national_id", "number": str(n)} for n in props["idNumber"]]
    if props.get("taxNumber"):
        row.setdefault("identifiers", []).extend({"scheme": "tax_id", "number": str(n)} for n in props["taxNumber"])
    if props.get("topics"):
        row["topics"] = [str(t) for t in props["topics"]]
    if props.get("passportNumber"):
        row.setdefault("identifiers", []).extend({"scheme": "passport", "number": str(n)}
                                                 for n in props["passportNumber"])
    if known_identifiers and str(item["id"]) in known_identifiers:
        row.setdefault("identifiers", []).extend(known_identifiers[str(item["id"])])
    return row


def listed(binary: IO[bytes]) -> dict[str, tuple[list[str], str]]:
    """The file's persons and organisations that carry topics (a list's entries, OpenSanctions' way): id →
    (programmes, remarks) as the watchlist keeps them (the `program` property; no remarks)."""
    found: dict[str, tuple[list[str], str]] = {}
    for _, item, _ in lines(binary):
        if item is not None and classify(item)[0] in (PERSON, ORGANIZATION):
            props = item.get("properties", {})
            if props.get("topics"):
                found[str(item["id"])[:200]] = ([str(p)[:100] for p in props.get("program", [])][:20], "")
    return found


# A link's values are parsed by the API's own fields, so a value reads the same in a file as in a request.
_AMOUNT, _CURRENCY, _PERCENT = amount_field(), CurrencyField(allow_blank=True), percent_field()


def link_values(item: dict[str, Any], ends: dict[str, Entity]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """A Link's field values for an FtM interval entity, or the errors of the line (named by the line's
    properties). The link's rules are the API's (`entities.rules`)."""
    kind, subtype, source_prop, target_prop = link_schema(item)
    props = item.get("properties", {})
    errors: dict[str, list[str]] = {}
    source, target = ends.get(_first(props.get(source_prop))), ends.get(_first(props.get(target_prop)))
    if source is None:
        errors[source_prop] = ["Names no entity of this source in your agency."]
    if target is None:
        errors[target_prop] = ["Names no entity of this source in your agency."]
    values: dict[str, Any] = {"kind": kind, "provenance_id": str(item["id"])[:200]}
    prop_of = {"source": source_prop, "target": target_prop}  # a link's field → the line's property

    def parse(name: str, prop: str, value: str, parse_value: Callable[[str], Any]) -> None:
        prop_of[name] = prop
        try:
            values[name] = parse_value(value)
        except serializers.ValidationError as exc:
            errors[prop] = [str(message) for message in exc.detail]  # type: ignore[union-attr]
        except ValueError:
            errors[prop] = [f"{value!r} is not a date."]

    amount_prop = "amountEur" if props.get("amountEur") else "amount"
    if amount := _first(props.get(amount_prop)):
        parse("amount", amount_prop, amount, _AMOUNT.run_validation)
        currency = "EUR" if amount_prop == "amountEur" else _first(props.get("currency"))
        parse("currency", "currency", currency, _CURRENCY.run_validation)
    for prop, name in (("startDate", "start_date"), ("date", "start_date"), ("endDate", "end_date")):
        if props.get(prop) and name not in values:
            parse(name, prop, _first(props[prop])[:10], datetime.date.fromisoformat)
    if props.get("percentage"):
        parse("share_pct", "percentage", _first(props["percentage"]), _PERCENT.run_validation)
    if props.get("role") or props.get("relationship"):
        values["subtype"] = "_".join(_first(props.get("role") or props.get("relationship")).lower().split())[:32]
    elif subtype:
        values["subtype"] = subtype
    if source is not None and target is not None:
        try:
            rules.check_link({**values, "source": source, "target": target})
        except RuleViolation as exc:
            for field, messages in exc.errors.items():
                errors.setdefault(prop_of.get(field, field), messages)
    if errors:
        return None, errors
    values["source_id"], values["target_id"] = source.pk, target.pk  # type: ignore[union-attr]
    return values, {}


__all__ = ["ADDRESS", "IDENTIFICATION", "LINK", "LINKS", "ORGANIZATION", "PERSON", "SKIPPED", "Entity", "Link",
           "addresses", "check_file", "classify", "count_lines", "entity_row", "identifications", "lines",
           "link_ends", "link_values", "listed"]
