"""Persons, organisations and links as FollowTheMoney entities (`?format=ftm`), made with the `followthemoney`
package's model so every value is one its schema accepts: what the `ftm` import kind (imports.ftm) reads back.

Ids are stable: an entity's is its record's id; its addresses' and passports' are that id and the item's place in
its list. A person is a Person; an organisation a Company, a PublicBody (government) or an Organization (`other`);
a link the schema the `ftm` import reads as its kind with no subtype of its own (imports.ftm.LINKS, so the two
cannot drift), its ends the schema's edge properties, as the import reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from followthemoney import model
from followthemoney.proxy import EntityProxy

from entities.models import EntityType, LinkKind, OrganizationKind

from .ftm import LINKS

ORG_SCHEMA = {OrganizationKind.GOVERNMENT: "PublicBody", OrganizationKind.OTHER: "Organization"}  # else Company
# link kind → (schema, property of the link's source, of its target)
LINK_SCHEMA: dict[str, tuple[str, str, str]] = {
    kind: (name, str(model[name].edge_source), str(model[name].edge_target))
    for name, (kind, subtype) in LINKS.items() if not subtype}
if set(LINK_SCHEMA) != set(LinkKind.values):
    raise LookupError(f"No FtM schema for the link kinds {sorted(set(LinkKind.values) - set(LINK_SCHEMA))}.")
# An identifier as an entity of its own (which keeps its country), or as a property of its holder.
IDENTIFIER_SCHEMA = {"passport": "Passport", "other": "Identification"}
IDENTIFIER_PROPERTY = {"national_id": "idNumber", "tax_id": "taxNumber"}
GENDERS = {"male", "female", "other"}  # FtM's; `unknown` is no value


def _add(proxy: EntityProxy, prop: str, values: Any) -> None:
    if values is None or values == "" or values == []:
        return
    for value in values if isinstance(values, list | tuple) else [values]:
        if value not in (None, ""):
            proxy.add(prop, str(value) if not hasattr(value, "isoformat") else value.isoformat())


def _common(proxy: EntityProxy, entity: Any) -> Iterator[dict[str, Any]]:
    """What persons and organisations share; yields their Address and Identification entities."""
    _add(proxy, "name", entity.name)
    _add(proxy, "alias", [n for n in entity.names or [] if n != entity.name])
    _add(proxy, "phone", entity.phones)
    _add(proxy, "email", entity.emails)
    _add(proxy, "notes", entity.notes)
    _add(proxy, "topics", entity.topics)
    for index, item in enumerate(entity.identifiers or []):
        scheme = item.get("scheme", "")
        if scheme in IDENTIFIER_PROPERTY:
            _add(proxy, IDENTIFIER_PROPERTY[scheme], item.get("number"))
            continue
        document = model.make_entity(IDENTIFIER_SCHEMA.get(scheme, "Identification"))
        document.id = f"{entity.pk}-identifier-{index}"
        document.add("holder", str(entity.pk))
        _add(document, "number", item.get("number"))
        _add(document, "country", (item.get("country") or "").lower())
        yield document.to_dict()
    for index, address in enumerate(entity.addresses or []):
        place = model.make_entity("Address")
        place.id = f"{entity.pk}-address-{index}"
        _add(place, "full", address.get("text"))
        _add(place, "country", (address.get("country") or "").lower())
        proxy.add("addressEntity", place.id)
        yield place.to_dict()


def entity_lines(entity: Any) -> list[dict[str, Any]]:
    """A person or organisation as FtM entities: its addresses and documents, then itself."""
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
