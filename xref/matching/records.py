"""What the engine knows of a record: its fields folded once (`Profile`), loaded for many records in one query.

Keys and comparisons both start from a profile, so a name is folded, a company's legal form dropped and an
address split into its parts once per record, not once per pair.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from django.db import connection

from entities.normalize import company_core, fold

# Words an address spells in several ways, each folded to one form (English, and the common European ones).
ADDRESS_WORDS = {
    "st": "street", "str": "street", "strasse": "street", "ave": "avenue", "av": "avenue", "rd": "road",
    "ln": "lane", "dr": "drive", "pl": "place", "blvd": "boulevard", "ct": "court", "hwy": "highway",
    "pkwy": "parkway", "sq": "square", "ter": "terrace", "cir": "circle", "ste": "suite",
    "apt": "apartment", "bldg": "building", "rm": "room", "n": "north", "s": "south", "e": "east", "w": "west",
    "ne": "northeast", "nw": "northwest", "se": "southeast", "sw": "southwest", "mt": "mount", "ft": "fort",
    "no": "number", "nr": "number", "lu": "road", "jie": "street", "hao": "number",
}
# Words that say where, not which: left out of an address's distinguishing tokens.
ADDRESS_NOISE = {"street", "avenue", "road", "lane", "drive", "place", "boulevard", "court", "suite", "floor",
                 "apartment", "unit", "room", "building", "number", "the", "of", "and"}
_POSTCODE = re.compile(r"^(?:\d{4,6}|\d{5}\d{4}|[a-z]{1,2}\d[a-z\d]?\d[a-z]{2})$")
_HOUSE = re.compile(r"^\d+[a-z]?$")
_ABJAD = re.compile(r"[\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_VOWELS = re.compile(r"[aeiouyw]+")
_DOUBLES = re.compile(r"(.)\1+")


def skeleton(token: str) -> str:
    """A token's consonants, doubled ones once: what a name written in Arabic or Hebrew script (vowels mostly
    unwritten) and its Latin spelling share ("fysl sdyqy", "Faisal Siddiqui": "fsl sdq")."""
    if not token or token.isdigit():
        return token
    return _DOUBLES.sub(r"\1", token[0] + _VOWELS.sub("", token[1:]))


@dataclass(frozen=True)
class Address:
    text: str  # as written
    tokens: tuple[str, ...]  # folded, words of one spelling, postcode left out
    street: str  # the distinguishing tokens (house number, street name), sorted
    number: str  # the house number, '' if none
    postcode: str
    locality: str  # what follows the first comma (city, state), without the postcode
    country: str
    words: tuple[str, ...] = ()  # the street's own name: the distinguishing tokens before the first comma
    #   (not the house number, the street type, the postcode or the locality, which many streets share)


@dataclass
class Profile:
    id: UUID
    agency_id: Any
    type: str
    display: list[str]  # the names as written, the primary first
    names: list[str]  # folded (an organisation's without its legal form), distinct, the primary first
    tokens: list[tuple[str, ...]]  # the tokens of each of `names`
    written: list[str]  # each of `names` as written
    birth_date: datetime.date | None
    countries: frozenset[str]  # nationalities of a person, jurisdiction of an organisation
    id_numbers: frozenset[str]  # identifier and registration numbers, compacted
    id_schemes: frozenset[str]
    registration: str
    phones: frozenset[str]
    emails: frozenset[str]
    addresses: list[Address] = field(default_factory=list)

    sorted_forms: list[str] = field(default_factory=list)  # each name's tokens sorted, joined by spaces
    joined: list[str] = field(default_factory=list)  # each name's tokens written together
    abjad: list[bool] = field(default_factory=list)  # each name written in Arabic or Hebrew script

    def __post_init__(self) -> None:
        self.sorted_forms = [" ".join(sorted(t)) for t in self.tokens]
        self.joined = ["".join(t) for t in self.tokens]
        self.abjad = [bool(_ABJAD.search(w)) for w in self.written]

    @property
    def all_tokens(self) -> set[str]:
        return {t for tokens in self.tokens for t in tokens}


FIELDS = ("id", "agency_id", "type", "name", "names", "birth_date", "nationalities", "jurisdiction",
          "registration_number", "identifiers", "identifier_numbers", "addresses", "phones", "emails", "archived")


def name_form(raw: str, is_org: bool) -> str:
    """A name as compared: folded, an organisation's without its legal form."""
    return company_core(raw) if is_org else fold(raw)


@functools.lru_cache(maxsize=1 << 16)  # pure; a record is profiled again by each step of a run (index, train, part)
def address(text: str, country: str = "") -> Address | None:
    tail = text.partition(",")[2]
    tokens = [ADDRESS_WORDS.get(t, t) for t in fold(text).split()]
    postcode = next((t for t in reversed(tokens) if _POSTCODE.match(t) and not t.isalpha()), "")
    if postcode and postcode == tokens[0] and len(tokens) > 1 and _HOUSE.match(tokens[0]):
        postcode = ""  # a leading number is the house's
    kept = [t for t in tokens if t != postcode]
    if not kept and not postcode:
        return None
    number = next((t for t in kept if _HOUSE.match(t)), "")
    street = " ".join(sorted({t for t in kept if t not in ADDRESS_NOISE}))
    locality = " ".join(t for t in fold(tail).split() if t != postcode) if tail else ""
    place = set(locality.split())
    head = [ADDRESS_WORDS.get(t, t) for t in fold(text.partition(",")[0]).split()] if tail else kept
    words = tuple(sorted({t for t in head if t not in ADDRESS_NOISE and t not in place and t != postcode
                          and not _HOUSE.match(t)}))
    return Address(text, tuple(kept), street, number, postcode, locality, country or "", words)


def profile(row: dict[str, Any]) -> Profile:
    is_org = row["type"] == "organization"
    display, names, tokens, written = [], [], [], []
    for raw in [row["name"], *(row.get("names") or [])]:
        if not raw or raw in display:
            continue
        display.append(raw)
        form = name_form(raw, is_org)
        if form and form not in names:
            names.append(form)
            tokens.append(tuple(form.split()))
            written.append(raw)
    countries = set(row.get("nationalities") or [])
    if row.get("jurisdiction"):
        countries.add(row["jurisdiction"])
    schemes = {str(i.get("scheme") or "other") for i in row.get("identifiers") or [] if isinstance(i, dict)}
    if row.get("registration_number"):
        schemes.add("registration")
    addresses = []
    for item in row.get("addresses") or []:
        text = item.get("text", "") if isinstance(item, dict) else str(item)
        parsed = address(text, item.get("country", "") if isinstance(item, dict) else "")
        if parsed:
            addresses.append(parsed)
    return Profile(
        id=row["id"], agency_id=row["agency_id"], type=row["type"], display=display, names=names, tokens=tokens,
        written=written,
        birth_date=row.get("birth_date"), countries=frozenset(countries),
        id_numbers=frozenset(row.get("identifier_numbers") or []), id_schemes=frozenset(schemes),
        registration="".join(ch for ch in (row.get("registration_number") or "").upper() if ch.isalnum()),
        phones=frozenset(row.get("phones") or []), emails=frozenset(e.lower() for e in row.get("emails") or []),
        addresses=addresses,
    )


LOAD_BATCH = 5000  # records a query
_JSON_FIELDS = ("identifiers", "addresses")
_LOAD = f"SELECT {', '.join(FIELDS)} FROM entities_entity WHERE id = ANY(%s::uuid[])"  # noqa: S608


def id_array(ids: Iterable[Any]) -> str:
    """A list of ids as one PostgreSQL array literal (for `= ANY(%s::uuid[])`): one parameter to send, not one
    quoted value per id."""
    return "{" + ",".join(str(i) for i in ids) + "}"


def rows(ids: Sequence[Any]) -> Iterable[dict[str, Any]]:
    """The entities' rows as `profile` takes them (FIELDS), a query per LOAD_BATCH ids."""
    with connection.cursor() as cursor:
        for start in range(0, len(ids), LOAD_BATCH):
            cursor.execute(_LOAD, [id_array(ids[start:start + LOAD_BATCH])])
            for values in cursor.fetchall():
                row = dict(zip(FIELDS, values, strict=True))
                for name in _JSON_FIELDS:  # jsonb comes as text on Django's connections
                    if isinstance(row[name], str | bytes):
                        row[name] = orjson.loads(row[name])
                yield row


def load(ids: Iterable[Any], *, archived: bool = False) -> dict[Any, Profile]:
    """Profiles of these entities (archived ones left out unless asked), a query per LOAD_BATCH."""
    return {row["id"]: profile(row) for row in rows(list(ids)) if archived or not row["archived"]}
