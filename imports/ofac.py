"""The US Treasury's SDN list in its legacy CSV layout (API.md § Bulk import, kind `ofac_sdn`).

Three files without a header, `-0-` for an empty cell: `sdn` (ent_num, name, type, program, title, call_sign,
vess_type, tonnage, grt, vess_flag, vess_owner, remarks), `add` (ent_num, add_num, address, city_state_zip, country,
remarks) and `alt` (ent_num, alt_num, alt_type, alt_name, remarks); sent as a zip holding the three (told by their
names, any case: `sdn.csv`, `add.csv`, `alt.csv`, with or without a prefix such as `ofac_`) or as the SDN file
alone. Rows are the SDN file's entries; the address and alias files are folded into them.

An entry becomes a person (type `individual`) or an organisation (every other type; a vessel or an aircraft is an
organisation of kind `other`, its flag as jurisdiction, its IMO number and call sign as identifiers). A person's
"LAST, First" gives the primary name "First Last" and stays a name variant, as do the aliases. From the remarks,
only what reads without guessing: a full date of birth (`DOB 27 Jun 1956`; a year or a range is left in the
remarks), the place of birth, nationalities and citizenships, gender, and passport, national id and tax numbers
(each kept only when the API's own identifier rules accept it). Countries are ISO alpha-2 where the name is known;
an unknown one is left blank. Every entry gets the topic `sanction`; its programmes (`[SDGT] [IRAN]`) and remarks
are the watchlist entry's (`watchlists.services`).

Files are decoded as UTF-8, else as Windows-1252 (the Treasury's legacy encoding); a trailing Ctrl-Z is ignored.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import functools
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import pycountry

from entities import validators
from entities.models import EntityType, OrganizationKind

from .readers import ZIP_ERRORS, BadFile, Table, check_zip, count_rows

DEFAULT_SOURCE = "ofac-sdn"
TOPICS = ["sanction"]
SDN_COLUMNS = ("ent_num", "name", "type", "program", "title", "call_sign", "vess_type", "tonnage", "grt",
               "vess_flag", "vess_owner", "remarks")
ADD_COLUMNS = ("ent_num", "add_num", "address", "city_state_zip", "country", "remarks")
ALT_COLUMNS = ("ent_num", "alt_num", "alt_type", "alt_name", "remarks")
LIST_MAX = 100  # the API's most items in a list field
NAME_MAX, ADDRESS_MAX, PLACE_MAX = 300, 500, 200
_MEMBER = re.compile(r"(?:^|[^a-z])(sdn|add|alt)\.csv$")

# Names the Treasury writes that pycountry does not know; those left out (regions, "undetermined") stay blank.
COUNTRY_NAMES = {
    "burma": "MM", "korea, north": "KP", "korea, south": "KR", "russia": "RU", "turkey": "TR",
    "congo, democratic republic of the": "CD", "congo, republic of the": "CG", "the gambia": "GM",
    "gambia, the": "GM", "bahamas, the": "BS", "macau": "MO", "brunei": "BN", "cote d ivoire": "CI",
    "st. vincent and the grenadines": "VC", "st. kitts & nevis": "KN", "iran": "IR", "syria": "SY",
    "venezuela": "VE", "bolivia": "BO", "tanzania": "TZ", "vietnam": "VN", "laos": "LA", "moldova": "MD",
    "taiwan": "TW", "macedonia, the former yugoslav republic of": "MK", "cabo verde": "CV", "cape verde": "CV",
}
IDENTIFIER_LABELS = {  # a remark's label → the identifier scheme it names
    "passport": "passport", "national id no.": "national_id", "cedula no.": "national_id",
    "c.u.r.p.": "national_id", "d.n.i.": "national_id", "tax id no.": "tax_id", "r.f.c.": "tax_id",
    "nit #": "tax_id",
}
_IDENTIFIER = re.compile(r"^(?:alt\. )?(?P<label>" + "|".join(re.escape(k) for k in IDENTIFIER_LABELS)
                         + r") (?P<number>[^()]+?)(?: \((?P<country>[^)]+)\))?(?: .*)?$", re.IGNORECASE)
_ROMAN = re.compile(r"^[IVX]+$")


@functools.lru_cache(maxsize=512)
def country_code(name: str) -> str:
    """ISO 3166-1 alpha-2 of a country as the list names it; '' when unknown."""
    name = " ".join(name.split()).strip(" .")
    if not name:
        return ""
    known = COUNTRY_NAMES.get(name.lower())
    if known is not None:
        return known
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        return ""


def _blank(value: str) -> str:
    value = value.strip()
    return "" if value == "-0-" else value


def _title(word: str) -> str:
    return word.title() if word.isupper() and not _ROMAN.match(word) else word


def readable_name(name: str) -> str:
    """An individual's "LAST, First" as "First Last" (the surname out of capitals); other names as they are."""
    last, comma, first = name.partition(",")
    if not comma or not first.strip() or not last.strip():
        return name
    return " ".join([first.strip(), *(_title(word) for word in last.split())])


def programmes(value: str) -> list[str]:
    """`[SDGT] [IRAN]` (or the legacy file's `SDGT] [IRAN`) → ["SDGT", "IRAN"]."""
    return list(dict.fromkeys(p.strip(" []") for p in _blank(value).split("] [") if p.strip(" []")))


# --- the files -----------------------------------------------------------------------------------------------


@dataclass
class SdnFiles:
    """Where each file of the list is: opens each as rows of stripped cells, blank lines and a Ctrl-Z skipped."""

    open_member: Callable[[str], IO[bytes]]
    sdn: str
    add: str | None = None
    alt: str | None = None

    def rows(self, member: str, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
        binary = self.open_member(member)
        try:
            encoding = _encoding(binary)
            text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
            number = 0
            try:
                for values in csv.reader(text):
                    if not "".join(values).replace("\x1a", "").strip():
                        continue
                    number += 1
                    if number == 1:
                        _check_first(member, values, columns)
                    yield number, values
            except csv.Error as exc:
                raise BadFile(f"The file {member} cannot be read as CSV: {exc}.") from exc
        finally:
            binary.close()


def _encoding(binary: IO[bytes]) -> str:
    """UTF-8 when the whole file decodes as such, else Windows-1252; the stream is rewound (or reopened)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    head = binary.read(4096)
    if b"\x00" in head:
        raise BadFile("The file is binary, not the SDN list's CSV.")
    try:
        decoder.decode(head)
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp1252"
    binary.seek(0)
    return encoding


def _check_first(member: str, values: list[str], columns: tuple[str, ...]) -> None:
    """The first row tells the file: the layout's number of columns, an entry number first (no header)."""
    if len(values) != len(columns) or not values[0].strip().isdigit():
        raise BadFile(f"{member} is not an SDN list file in the Treasury's legacy CSV layout: its first row has "
                      f"{len(values)} value(s){'' if values[0].strip().isdigit() else ' and no entry number first'}"
                      f"; expected {len(columns)} without a header ({', '.join(columns)}).")


def open_files(binary: IO[bytes]) -> SdnFiles:
    """The list's files in an upload: a zip of sdn/add/alt (the SDN file required), or the SDN file alone."""
    head = binary.read(4096)
    binary.seek(0)
    if not head.replace(b"\xef\xbb\xbf", b"").replace(b"\x1a", b"").strip():
        raise BadFile("The file is empty.")
    if not head.startswith(b"PK\x03\x04"):
        def reopen(_: str) -> IO[bytes]:
            binary.seek(0)
            return cast(IO[bytes], _Unclosed(binary))
        return SdnFiles(reopen, "the SDN file")
    check_zip(binary, noun="zip", whole="files")
    try:
        archive = zipfile.ZipFile(binary)
        found: dict[str, str] = {}
        for info in archive.infolist():
            match = _MEMBER.search(info.filename.rsplit("/", 1)[-1].lower())
            if match and not info.is_dir():
                if match.group(1) in found:
                    raise BadFile(f"The zip holds two {match.group(1)} files: {found[match.group(1)]} and "
                                  f"{info.filename}.")
                found[match.group(1)] = info.filename
    except ZIP_ERRORS as exc:
        raise BadFile(f"The file is not a readable zip: {exc}.") from exc
    if "sdn" not in found:
        raise BadFile("The zip holds no SDN file (sdn.csv): an ofac_sdn import takes a zip of sdn.csv, add.csv and "
                      "alt.csv, or sdn.csv alone.")

    def open_member(name: str) -> IO[bytes]:
        try:
            return archive.open(name)
        except ZIP_ERRORS as exc:
            raise BadFile(f"The zip's {name} cannot be read: {exc}.") from exc

    return SdnFiles(open_member, found["sdn"], found.get("add"), found.get("alt"))


class _Unclosed(io.BufferedIOBase):
    """The upload itself, handed to a reader that closes what it reads: left open for the next pass."""

    def __init__(self, binary: IO[bytes]) -> None:
        super().__init__()
        self.binary = binary

    def read(self, size: int | None = -1) -> bytes:
        return self.binary.read(-1 if size is None else size)

    read1 = read

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.binary.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        data = self.binary.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _side_file(files: SdnFiles, member: str | None, columns: tuple[str, ...]) -> dict[str, list[list[str]]]:
    """An address or alias file by entry number. A line of the wrong shape fails the file: nothing is written."""
    found: dict[str, list[list[str]]] = defaultdict(list)
    if member is None:
        return found
    for number, values in files.rows(member, columns):
        if len(values) != len(columns) or not values[0].strip().isdigit():
            raise BadFile(f"Line {number} of {member} has {len(values)} value(s) (expected {len(columns)}: "
                          f"{', '.join(columns)}) or no entry number first.")
        found[values[0].strip()].append([_blank(v) for v in values])
    return found


# --- entries -------------------------------------------------------------------------------------------------


def count(binary: IO[bytes], tick: Callable[[], None] | None = None) -> int:
    """The entries of the SDN file (the job's rows); a bad file or one over IMPORT_MAX_ROWS is a BadFile. The side
    files are read too, so that a broken one fails the job before anything is written."""
    files = open_files(binary)
    _side_file(files, files.add, ADD_COLUMNS)
    _side_file(files, files.alt, ALT_COLUMNS)
    return count_rows(Table("ofac", None, iter(()), plain=files.rows(files.sdn, SDN_COLUMNS)), tick=tick)


def table(binary: IO[bytes]) -> Table:
    """The SDN entries as rows in the API's input shape, each with `__type__` (person or organisation) taken off
    by `take_columns`; a line of the wrong shape is a row with `__error__`."""
    files = open_files(binary)
    addresses = _side_file(files, files.add, ADD_COLUMNS)
    aliases = _side_file(files, files.alt, ALT_COLUMNS)

    def rows() -> Iterator[dict[str, Any]]:
        seen: dict[str, int] = {}
        for number, values in files.rows(files.sdn, SDN_COLUMNS):
            if len(values) != len(SDN_COLUMNS) or not values[0].strip().isdigit():
                yield {"__error__": f"An SDN line has {len(SDN_COLUMNS)} values, the entry number first "
                                    f"({', '.join(SDN_COLUMNS)}); this one has {len(values)}."}
                continue
            entry = dict(zip(SDN_COLUMNS, (_blank(v) for v in values), strict=True))
            if entry["ent_num"] in seen:  # the published list has one such line: another entity, the same number
                yield {"__error__": f"Entry number {entry['ent_num']} is already row {seen[entry['ent_num']]}'s: "
                                    "an entry number names one entry."}
                continue
            seen[entry["ent_num"]] = number
            yield entry_row(entry, addresses.get(entry["ent_num"], []), aliases.get(entry["ent_num"], []))

    return Table("ofac", None, rows())


def listed(binary: IO[bytes]) -> dict[str, tuple[list[str], str]]:
    """Every entry of the file: its number → (programmes, remarks), what the watchlist keeps of it."""
    files = open_files(binary)
    found: dict[str, tuple[list[str], str]] = {}
    for _, values in files.rows(files.sdn, SDN_COLUMNS):
        if len(values) == len(SDN_COLUMNS) and values[0].strip().isdigit():
            entry = dict(zip(SDN_COLUMNS, (_blank(v) for v in values), strict=True))
            found.setdefault(entry["ent_num"], (programmes(entry["program"]), entry_remarks(entry)))
    return found


def entry_remarks(entry: dict[str, str]) -> str:
    """The entry's remarks, with what the vessel and title columns say."""
    extra = [f"{label} {entry[name]}" for name, label in (("title", "Title"), ("vess_type", "Vessel type"),
                                                          ("tonnage", "Tonnage"), ("grt", "GRT"),
                                                          ("vess_owner", "Vessel owner")) if entry[name]]
    return "; ".join([*([entry["remarks"]] if entry["remarks"] else []), *extra])


def entry_row(entry: dict[str, str], addresses: list[list[str]], aliases: list[list[str]]) -> dict[str, Any]:
    person = entry["type"].lower() == "individual"
    name = entry["name"]
    primary = readable_name(name) if person else name
    names = [name] if primary != name else []
    for alias in aliases:
        if alias[3]:
            names.append(readable_name(alias[3]) if person else alias[3])
    row: dict[str, Any] = {"__type__": EntityType.PERSON if person else EntityType.ORGANIZATION,
                           "source_id": entry["ent_num"], "name": primary[:NAME_MAX],
                           "names": list(dict.fromkeys(n[:NAME_MAX] for n in names))[:LIST_MAX],
                           "topics": list(TOPICS)}
    found = _addresses(addresses)
    if found:
        row["addresses"] = found[:LIST_MAX]
    remarks = _remarks(entry["remarks"])
    identifiers = remarks.pop("identifiers", [])
    if person:
        row.update(remarks)
    elif entry["type"].lower() in ("vessel", "aircraft"):
        row["kind"] = OrganizationKind.OTHER
        if flag := country_code(entry["vess_flag"]):
            row["jurisdiction"] = flag
        if entry["call_sign"]:
            identifiers.append(_identifier("other", entry["call_sign"], ""))
    if identifiers := [i for i in identifiers if i is not None]:
        row["identifiers"] = list({(i["scheme"], i["number"]): i for i in identifiers}.values())[:LIST_MAX]
    return row


def _addresses(rows: list[list[str]]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for _, _, street, city, country, _ in rows:
        text = ", ".join(part for part in (street, city) if part) or country
        if text:
            item = {"text": " ".join(text.split())[:ADDRESS_MAX], "country": country_code(country)}
            if item not in found:
                found.append(item)
    return found


def _identifier(scheme: str, number: str, country: str) -> dict[str, str] | None:
    """The identifier as the API stores it, or None when its rules refuse it (a remark is not worth a bad row)."""
    try:
        return validators.normalize_identifier(scheme, number.strip(), country)
    except (validators.InvalidParts, validators.InvalidValue):
        return None


def _remarks(remarks: str) -> dict[str, Any]:
    """What the remarks say dependably of a person: birth date (a full one), place of birth, nationalities,
    gender, identifiers."""
    found: dict[str, Any] = {}
    nationalities: list[str] = []
    identifiers: list[dict[str, str] | None] = []
    for part in (p.strip().rstrip(".") for p in remarks.split(";")):
        lowered = part.lower()
        if lowered.startswith("dob ") and "birth_date" not in found:
            try:
                birth = datetime.datetime.strptime(part[4:].strip(), "%d %b %Y").date()  # a date, no time
            except ValueError:
                continue
            if birth <= datetime.date.today():
                found["birth_date"] = birth.isoformat()
        elif lowered.startswith("pob ") and "birth_place" not in found:
            found["birth_place"] = part[4:].strip()[:PLACE_MAX]
        elif lowered.startswith(("nationality ", "alt. nationality ", "citizen ", "alt. citizen ")):
            if code := country_code(part.split(" ", 2 if lowered.startswith("alt.") else 1)[-1]):
                nationalities.append(code)
        elif lowered in ("gender male", "gender female"):
            found["gender"] = lowered.split()[1]
        elif match := _IDENTIFIER.match(part):
            identifiers.append(_identifier(IDENTIFIER_LABELS[match["label"].lower()], match["number"],
                                           country_code(match["country"] or "")))
        elif lowered.startswith("vessel registration identification imo "):
            identifiers.append(_identifier("other", "IMO" + part.rsplit(" ", 1)[-1], ""))
    if nationalities:
        found["nationalities"] = list(dict.fromkeys(nationalities))[:20]
    found["identifiers"] = identifiers
    return found
