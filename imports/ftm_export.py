"""Persons, organisations and links as FollowTheMoney entities (`?format=ftm`), made with the `followthemoney`
package's model so every value is one its schema accepts: what the `ftm` import kind (imports.ftm) reads back.

Ids are stable: an entity's is its record's id; its addresses' are that id and the address's place in the list.
A person is a Person; an organisation a Company, a PublicBody (government) or an Organization (`other`); a link
the schema the `ftm` import reads as its kind (imports.ftm.LINKS, so the two cannot drift), else the schema below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from followthemoney import model
from followthemoney.proxy import EntityProxy

from entities.models import EntityType, LinkKind, OrganizationKind

from .ftm import LINKS

ORG_SCHEMA = {OrganizationKind.GOVERNMENT: "PublicBody", OrganizationKind.OTHER: "Organization"}  # else Company
# The kinds the `ftm` import reads as no schema yet: (schema, property of the link's source, of its target).
LINK_SCHEMA_MORE: dict[str, tuple[str, str, str]] = {
    LinkKind.EMPLOYMENT: ("Employment", "employee", "employer"),
    LinkKind.REPRESENTATION: ("Representation", "agent", "client"),
    LinkKind.FINANCING: ("Payment", "payer", "beneficiary"),
}
LINK_SCHEMA: dict[str, tuple[str, str, str]] = {
    **LINK_SCHEMA_MORE, **{kind: (schema, source, target) for schema, (kind, source, target) in LINKS.items()}}
IDENTIFIER_PROPERTY = {"passport": "passportNumber", "national_id": "idNumber", "tax_id": "taxNumber",
                       "other": "idNumber"}
GENDERS = {"male", "female", "other"}  # FtM's; `unknown` is no value


def _add(proxy: EntityProxy, prop: str, values: Any) -> None:
    if values is None or values == "" or values == []:
        return
    for value in values if isinstance(values, list | tuple) else [values]:
        if value not in (None, ""):
            proxy.add(prop, str(value) if not hasattr(value, "isoformat") else value.isoformat())


def _common(proxy: EntityProxy, entity: Any) -> Iterator[dict[str, Any]]:
    """What persons and organisations share; yields their Address entities (before the entity names them)."""
    _add(proxy, "name", entity.name)
    _add(proxy, "alias", [n for n in entity.names or [] if n != entity.name])
    _add(proxy, "phone", entity.phones)
    _add(proxy, "email", entity.emails)
    _add(proxy, "notes", entity.notes)
    _add(proxy, "topics", entity.topics)
    for item in entity.identifiers or []:
        _add(proxy, IDENTIFIER_PROPERTY.get(item.get("scheme", ""), "idNumber"), item.get("number"))
    for index, address in enumerate(entity.addresses or []):
        place = model.make_entity("Address")
        place.id = f"{entity.pk}-address-{index}"
        _add(place, "full", address.get("text"))
        _add(place, "country", (address.get("country") or "").lower())
        proxy.add("addressEntity", place.id)
        yield place.to_dict()


def entity_lines(entity: Any) -> list[dict[str, Any]]:
    """A person or organisation as FtM entities: its addresses, then itself."""
    if entity.type == EntityType.PERSON:
        proxy = model.make_entity("Person")
        proxy.id = str(entity.pk)
        _add(proxy, "nationality", [c.lower() for c in entity.nationalities or []])
        _add(proxy, "birthDate", entity.birth_date)
        _add(proxy, "birthPlace", entity.birth_place)
        if entity.gender in GENDERS:
            _add(proxy, "gender", entity.gender)
    else:
        proxy = model.make_entity(ORG_SCHEMA.get(entity.kind, "Company"))
        proxy.id = str(entity.pk)
        # `country` too: what the `ftm` import reads an organisation's jurisdiction from.
        _add(proxy, "jurisdiction", (entity.jurisdiction or "").lower())
        _add(proxy, "country", (entity.jurisdiction or "").lower())
        _add(proxy, "registrationNumber", entity.registration_number)
        _add(proxy, "incorporationDate", entity.incorporated_on)
        _add(proxy, "dissolutionDate", entity.dissolved_on)
        _add(proxy, "website", entity.website)
    places = list(_common(proxy, entity))
    return [*places, proxy.to_dict()]


def link_lines(link: Any) -> list[dict[str, Any]]:
    schema, source_prop, target_prop = LINK_SCHEMA[link.kind]
    proxy = model.make_entity(schema)
    proxy.id = str(link.pk)
    proxy.add(source_prop, str(link.source_id))
    proxy.add(target_prop, str(link.target_id))
    if link.subtype:
        role = "relationship" if proxy.schema.get("relationship") is not None else "role"
        _add(proxy, role, link.subtype)
    _add(proxy, "startDate" if proxy.schema.get("startDate") is not None else "date", link.start_date)
    _add(proxy, "endDate", link.end_date)
    _add(proxy, "description", link.description)
    if link.share_pct is not None:
        _add(proxy, "percentage", str(link.share_pct))
    if link.amount is not None and proxy.schema.get("amount") is not None:
        _add(proxy, "amount", str(link.amount))
        _add(proxy, "currency", link.currency)
    return [proxy.to_dict()]
