"""The published entity-resolution truth sets as this project's own import files, with their truth as pairs.

    from xref_data import DATASETS, load   (or `python bench/xref_data.py [DIR]` for a summary and the files)
    data = load("senzing")            # csv_example | patstat | senzing
    files = data.write(directory)     # [(kind, source, path)], in import order (entities before links)
    data.truth                        # {(source_id, source_id), ...}, each pair sorted

The sets live in `er/` of the shared data folder (SHARED_DATA_DIR, else `../shared/data` from the project root;
see its README for their sources and licences):

- `csv_example`: dedupe's Chicago early-childhood sites (organisations: site name, address with ZIP, phone);
  truth `True Id`.
- `patstat`: dedupe's patent applicants (organisations: the applicant's name as PATSTAT has it, from
  patstat_reference.csv's `person_name`); truth `leuven_id`.
- `senzing`: Senzing's demo truth set (customers, a watchlist, a reference file of companies and their owners and
  directors: persons and organisations with native-script names, birth dates, passports, national ids, driving
  licences, addresses, phones, emails; ownership and directorship links); truth `actual_truthset_key.csv`.

Mapping rules (what an agency's own loader would do, nothing invented):

- Phones are stored in E.164. A number written with `+` (or `00`) is read as it stands; one without is read in the
  record's own country (its address's or an identifier's) or else the data set's default region, as an agency's
  "default region" setting would: the US for the two US data sets. A number that is still not valid (a 7-digit
  local number without its area code, a foreign number written without its country code) is not stored as a
  phone; it is kept, as written, in the record's notes, so no area code is ever guessed.
- Birth dates: ISO, US month/day/year (day/month when the first part is over 12), `Mar 1 1970`, `24-May-11`;
  a two-digit year is the latest that is not in the future.
- Identifiers keep their country when the number passes that country's check (python-stdnum, as the API checks
  it), else they are kept without the country (e.g. a four-digit SSN fragment, a Chinese id of the wrong length).
- A row the import must refuse (no name at all) is left out and listed in `skipped` with the reason; the truth
  counts only the records that are imported.

This module reads files and writes files; call it after Django is set up (identifier checks use
`entities.validators`).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parseaddr
from itertools import combinations
from pathlib import Path
from typing import Any

import phonenumbers
import pycountry

ROOT = Path(__file__).resolve().parent.parent
Pair = tuple[str, str]


def shared_data_dir() -> Path:
    """SHARED_DATA_DIR if set, else `shared/data` beside the project's checkout."""
    if os.environ.get("SHARED_DATA_DIR"):
        return Path(os.environ["SHARED_DATA_DIR"])
    return ROOT.parent / "shared" / "data"


def er_dir() -> Path:
    return shared_data_dir() / "er"


@dataclass
class ImportFile:
    kind: str  # persons | organizations | links
    source: str  # the import's source label (links resolve their ends by source_id within it)
    rows: list[dict[str, Any]]


@dataclass
class DataSet:
    name: str
    files: list[ImportFile]
    truth: set[Pair]
    clusters: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source_id, why)
    notes: list[str] = field(default_factory=list)  # what the mapping could not carry over

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every person and organisation row (the link rows left out)."""
        return [row for f in self.files if f.kind != "links" for row in f.rows]

    def write(self, directory: Path) -> list[tuple[str, str, Path]]:
        """The import files as JSON lines, in the order they must be imported."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for number, f in enumerate(self.files, 1):
            path = directory / f"{self.name}-{number}-{f.source}-{f.kind}.jsonl"
            with path.open("w", encoding="utf-8") as handle:
                for row in f.rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            written.append((f.kind, f.source, path))
        return written


def truth_pairs(clusters: Iterable[Iterable[str]]) -> set[Pair]:
    """Every pair within each cluster, sorted: (a, b) with a < b."""
    pairs: set[Pair] = set()
    for members in clusters:
        for a, b in combinations(sorted(set(members)), 2):
            pairs.add((a, b))
    return pairs


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle)]


def _clean(value: str | None) -> str:
    return " ".join(str(value or "").split())


def _clusters(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """{cluster: [source_id]} from (source_id, cluster) rows."""
    found: dict[str, list[str]] = defaultdict(list)
    for source_id, cluster in rows:
        found[cluster].append(source_id)
    return found


# --- values -------------------------------------------------------------------------------------


COUNTRY_FIXES = {"lichtenstein": "LI", "uk": "GB", "england": "GB"}


def country_code(value: str | None) -> str:
    """ISO alpha-2 of a code (alpha-2 or alpha-3) or a country's name; '' when it is none."""
    text = _clean(value).strip(" .,")
    if not text:
        return ""
    if text.lower() in COUNTRY_FIXES:
        return COUNTRY_FIXES[text.lower()]
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return ""


def address_country(text: str) -> str:
    """The country an address names at its end ("…, 673576, India", "… Phnom Penh Cambodia"), by name only: a
    two- or three-letter ending is a state's abbreviation as often as a country's code (CA, IN, DE, GA)."""
    tail = text.rsplit(",", 1)[-1].strip()
    for candidate in (tail, tail.rsplit(" ", 1)[-1]):
        if len(candidate) > 3 and not any(c.isdigit() for c in candidate):
            found = country_code(candidate)
            if found:
                return found
    return ""


def phone_e164(raw: str, region: str) -> str:
    """E.164 of a phone, read in `region` when written without a country code; '' when it is not a valid number
    there (never completed by a guessed area code)."""
    text = _clean(raw)
    if not re.search(r"\d", text):
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    attempts: list[tuple[str, str | None]] = [(text, None if text.startswith("+") else region or None)]
    if not text.startswith("+") and region:
        # A number that already starts with its region's calling code, written without the +.
        code = str(phonenumbers.country_code_for_region(region))
        digits = re.sub(r"\D", "", text)
        if digits.startswith(code):
            attempts.append(("+" + digits, None))
    for candidate, where in attempts:
        try:
            number = phonenumbers.parse(candidate, where)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return ""


def email_address(raw: str) -> str:
    """The address of `Name <address>` or of a bare address; '' when there is none."""
    address = parseaddr(_clean(raw))[1].strip().lower()
    return address if "@" in address else ""


MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                      "dec"], 1)}


def _year(text: str, today: datetime.date) -> int:
    year = int(text)
    if len(text) <= 2:
        year += 2000 if 2000 + year <= today.year else 1900
    return year


def birth_date(raw: str, today: datetime.date | None = None) -> str:
    """ISO date of a date as written in these files; '' when it cannot be read or is not a real date."""
    today = today or datetime.date.today()
    text = _clean(raw)
    if not text:
        return ""
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
            y, mo, d = int(m[1]), int(m[2]), int(m[3])
        elif m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", text):
            a, b, y = int(m[1]), int(m[2]), _year(m[3], today)
            mo, d = (b, a) if a > 12 else (a, b)  # US month/day unless the first part cannot be a month
        elif m := re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{2}|\d{4})", text):
            d, mo, y = int(m[1]), MONTHS[m[2].lower()], _year(m[3], today)
        elif m := re.fullmatch(r"([A-Za-z]{3})[a-z]* (\d{1,2}),? (\d{4})", text):
            mo, d, y = MONTHS[m[1].lower()], int(m[2]), int(m[3])
        else:
            return ""
        value = datetime.date(y, mo, d)
    except (KeyError, ValueError):
        return ""
    return value.isoformat() if value <= today else ""


def identifier(scheme: str, number: str, country: str) -> dict[str, str] | None:
    """An identifier as the API takes it: with its country when the number passes that country's check, else
    without it; None for a blank number."""
    from entities import validators

    if not _clean(number):
        return None
    country = country_code(country)
    for where in ([country, ""] if country else [""]):
        try:
            return validators.normalize_identifier(scheme, number, where)
        except validators.InvalidParts:
            continue
    return None


def registration(number: str, country: str) -> str:
    """The number when the jurisdiction's register check (if any) accepts it, else ''."""
    from entities import validators

    try:
        return validators.normalize_registration_number(number, country)
    except validators.InvalidValue:
        return ""


class Phones:
    """Phones of a data set's records, with the counts of what could not be stored."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.stored = 0
        self.kept_in_notes: list[tuple[str, str]] = []  # (source_id, number as written)

    def add(self, row: dict[str, Any], raw: str, region: str = "") -> None:
        if not _clean(raw):
            return
        number = phone_e164(raw, region or self.default_region)
        if number:
            if number not in row.setdefault("phones", []):
                row["phones"].append(number)
            self.stored += 1
        else:
            self.kept_in_notes.append((row["source_id"], _clean(raw)))
            _note(row, f"phone as given, not a valid number in {region or self.default_region}: {_clean(raw)}")

    def summary(self) -> str:
        return (f"phones: {self.stored} stored in E.164 (default region {self.default_region}); "
                f"{len(self.kept_in_notes)} not valid there (no area code, or a foreign number without its "
                f"country code) kept in notes only")


def _note(row: dict[str, Any], text: str) -> None:
    row["notes"] = f"{row['notes']}\n{text}" if row.get("notes") else text


def _address(row: dict[str, Any], text: str, country: str) -> None:
    text = _clean(text).strip(" ,")
    if text:
        item = {"text": text, "country": country}
        if item not in row.setdefault("addresses", []):
            row["addresses"].append(item)


# --- dedupe csv_example -------------------------------------------------------------------------


def csv_example() -> DataSet:
    """3,337 Chicago early-childhood sites: name, address (the ZIP joined on), phone; all in the US."""
    rows = _read(er_dir() / "dedupe" / "csv_example_input_with_true_ids.csv")
    phones = Phones("US")
    records, membership = [], []
    for r in rows:
        row: dict[str, Any] = {"source_id": r["Id"], "name": _clean(r["Site name"])}
        address, zip_code = _clean(r["Address"]), _clean(r["Zip"])
        if zip_code and zip_code not in address:
            address = f"{address} {zip_code}".strip()
        _address(row, address, "US")
        phones.add(row, r["Phone"])
        records.append(row)
        membership.append((r["Id"], r["True Id"]))
    clusters = _clusters(membership)
    return DataSet("csv_example", [ImportFile("organizations", "dedupe-csv-example", records)],
                   truth_pairs(clusters.values()), len(clusters),
                   notes=[phones.summary(),
                          "addresses: street and ZIP as given (no city), country US (the data set is Chicago's)"])


# --- dedupe patstat -----------------------------------------------------------------------------


def patstat() -> DataSet:
    """2,379 patent applicants (Dutch companies), named as PATSTAT has them."""
    inputs = _read(er_dir() / "dedupe" / "patstat_input.csv")
    reference = {r["person_id"]: r for r in _read(er_dir() / "dedupe" / "patstat_reference.csv")}
    records, membership = [], []
    for r in inputs:
        ref = reference[r["person_id"]]
        records.append({"source_id": r["person_id"], "name": _clean(ref["person_name"])})
        membership.append((r["person_id"], ref["leuven_id"]))
    clusters = _clusters(membership)
    return DataSet("patstat", [ImportFile("organizations", "dedupe-patstat", records)],
                   truth_pairs(clusters.values()), len(clusters),
                   notes=["names as PATSTAT has them (patstat_reference.csv person_name); the input file's "
                          "co-inventors, patent classes and coordinates have no field in our records"])


# --- Senzing truth set --------------------------------------------------------------------------


SENZING_FILES = (("customers.csv", "senzing-customers"), ("watchlist.csv", "senzing-watchlist"),
                 ("reference.csv", "senzing-reference"))
ORG_ID_TYPES = {"UEN"}  # a national id of an organisation that is its register's number


def _senzing_id(r: dict[str, str]) -> str:
    return f"{r['DATA_SOURCE']}-{r['RECORD_ID']}"


def _senzing_row(r: dict[str, str], phones: Phones) -> tuple[str, dict[str, Any]] | str:
    """(kind, row) of one Senzing record, or why it cannot be imported."""
    g = r.get
    is_org = (g("RECORD_TYPE") or "").upper() == "ORGANIZATION"
    row: dict[str, Any] = {"source_id": _senzing_id(r)}
    native = _clean(g("NATIVE_NAME_FULL"))
    if is_org:
        name = _clean(g("PRIMARY_NAME_ORG")) or _clean(g("PRIMARY_NAME_FULL"))
    else:
        name = _clean(g("PRIMARY_NAME_FULL")) or _clean(" ".join(
            _clean(g(k)) for k in ("PRIMARY_NAME_FIRST", "PRIMARY_NAME_MIDDLE", "PRIMARY_NAME_LAST")))
    names = [n for n in (native, _clean(g("SECONDARY_NAME_ORG"))) if n]
    if not name and names:
        name = names.pop(0)
    if not name:
        return "no name (the import requires one)"
    row["name"] = name
    if names:
        row["names"] = names
    if not is_org:
        if g("GENDER"):
            row["gender"] = _clean(g("GENDER"))
        if born := birth_date(g("DATE_OF_BIRTH") or ""):
            row["birth_date"] = born
        elif g("DATE_OF_BIRTH"):
            _note(row, f"date of birth as given: {g('DATE_OF_BIRTH')}")

    identifiers: list[dict[str, str]] = []

    def add_id(scheme: str, number: str | None, country: str | None) -> dict[str, str] | None:
        item = identifier(scheme, number or "", country or "")
        if item and item not in identifiers:
            identifiers.append(item)
        return item

    add_id("passport", g("PASSPORT_NUMBER"), g("PASSPORT_COUNTRY"))
    if g("DRIVERS_LICENSE_NUMBER"):  # US states' licences
        add_id("other", g("DRIVERS_LICENSE_NUMBER"), "US")
    add_id("national_id", g("SSN_NUMBER"), "US")
    if is_org and (g("NATIONAL_ID_TYPE") or "").upper() in ORG_ID_TYPES and g("NATIONAL_ID_NUMBER"):
        jurisdiction = country_code(g("NATIONAL_ID_COUNTRY"))
        number = registration(g("NATIONAL_ID_NUMBER") or "", jurisdiction)
        if number:
            row["registration_number"], row["jurisdiction"] = number, jurisdiction
        else:
            add_id("other", g("NATIONAL_ID_NUMBER"), g("NATIONAL_ID_COUNTRY"))
    else:
        add_id("national_id", g("NATIONAL_ID_NUMBER"), g("NATIONAL_ID_COUNTRY"))
    tax = add_id("tax_id", g("TAX_ID_NUMBER"), g("TAX_ID_COUNTRY"))
    if is_org and tax and "jurisdiction" not in row and country_code(g("TAX_ID_COUNTRY")):
        row["jurisdiction"] = country_code(g("TAX_ID_COUNTRY"))
    add_id("other", g("LEI_NUMBER"), "")
    if identifiers:
        row["identifiers"] = identifiers

    text = _clean(g("ADDR_FULL"))
    if not text:
        line = _clean(g("ADDR_LINE1")).strip(" ,")
        state_zip = " ".join(_clean(g(k)) for k in ("ADDR_STATE", "ADDR_POSTAL_CODE") if _clean(g(k)))
        # A first line that already holds the city (or state and ZIP) does not get them twice.
        text = ", ".join([line, *(p for p in (_clean(g("ADDR_CITY")), state_zip) if p and p.lower() not in
                                   line.lower())]).strip(" ,")
    country = country_code(g("ADDR_COUNTRY")) or address_country(text)
    _address(row, text, country)
    id_country = next((i["country"] for i in identifiers if i["country"]), "")
    phones.add(row, g("PHONE_NUMBER") or "", country or id_country)
    if email := email_address(g("EMAIL_ADDRESS") or ""):
        row["emails"] = [email]
    for label, key in (("employer", "EMPLOYER"), ("category", "CATEGORY"), ("status", "STATUS")):
        if g(key):
            _note(row, f"{label}: {_clean(g(key))}")
    return ("organizations" if is_org else "persons"), row


def _senzing_links(rows: list[dict[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Links of REL_POINTER_KEY records to the record holding that REL_ANCHOR_KEY: `Owns N%` an ownership with
    its share; `Global Parent` the anchor owning the pointer's organisation; any other role a directorship."""
    anchors = {r["REL_ANCHOR_KEY"]: _senzing_id(r) for r in rows if r.get("REL_ANCHOR_KEY")}
    links, problems = [], []
    for r in rows:
        pointer = r.get("REL_POINTER_KEY") or ""
        if not pointer:
            continue
        if pointer not in anchors:
            problems.append(f"{_senzing_id(r)} points at {pointer}, which no record anchors")
            continue
        me, other, role = _senzing_id(r), anchors[pointer], _clean(r.get("REL_POINTER_ROLE"))
        link: dict[str, Any] = {"source_id": f"{me}>{other}"}
        if m := re.fullmatch(r"owns (\d+(?:\.\d+)?)%", role, re.IGNORECASE):
            link.update(kind="ownership", source=me, target=other, share_pct=m[1])
        elif role.lower() == "global parent":
            link.update(kind="ownership", source=other, target=me, subtype="parent")
        else:
            link.update(kind="directorship", source=me, target=other, subtype=role)
        links.append(link)
    return links, problems


def senzing() -> DataSet:
    """Senzing's demo truth set: customers, a watchlist and a reference file, with ownership and directorships."""
    folder = er_dir() / "senzing"
    phones = Phones("US")
    files: list[ImportFile] = []
    skipped: list[tuple[str, str]] = []
    imported: set[str] = set()
    notes: list[str] = []
    for filename, source in SENZING_FILES:
        rows = _read(folder / filename)
        by_kind: dict[str, list[dict[str, Any]]] = {"organizations": [], "persons": []}
        for r in rows:
            made = _senzing_row(r, phones)
            if isinstance(made, str):
                skipped.append((_senzing_id(r), made))
                continue
            by_kind[made[0]].append(made[1])
            imported.add(made[1]["source_id"])
        files += [ImportFile(kind, source, found) for kind, found in by_kind.items() if found]
        links, problems = _senzing_links(rows)
        if links:
            files.append(ImportFile("links", source, links))
        notes += problems
    key = _read(folder / "actual_truthset_key.csv")
    membership = [(f"{k['DATA_SOURCE']}-{k['RECORD_ID']}", k["CLUSTER_ID"]) for k in key]
    clusters = _clusters((sid, c) for sid, c in membership if sid in imported)
    notes.insert(0, phones.summary())
    notes.append("employer names, watchlist categories and statuses kept in notes (no record to link them to)")
    return DataSet("senzing", files, truth_pairs(clusters.values()), len(_clusters(membership)), skipped=skipped,
                   notes=notes)


DATASETS: dict[str, Callable[[], DataSet]] = {"csv_example": csv_example, "patstat": patstat, "senzing": senzing}


def load(name: str) -> DataSet:
    return DATASETS[name]()


def import_dataset(data: DataSet, agency: Any, directory: Path) -> list[Any]:
    """Import the data set's files into `agency` through the real import path (a job per file, run here, in
    order); the finished jobs."""
    from django.core.files import File

    from imports.services import job_create, run_job

    jobs = []
    for kind, source, path in data.write(directory):
        with path.open("rb") as handle:
            job = job_create(agency=agency, actor=None, upload=File(handle, name=path.name), kind=kind,
                             source=source, run=False)
        jobs.append(run_job(job.pk))
    return jobs


def row_errors(jobs: Iterable[Any]) -> list[str]:
    """Each failed row of these jobs as `file row N field: message`, and each job that did not succeed."""
    from imports.models import ImportRowError

    found = []
    for job in jobs:
        if job.status != "succeeded":
            found.append(f"{job.file.name}: {job.status} {job.error}")
        for error in ImportRowError.objects.filter(job=job):
            found.append(f"{job.file.name} row {error.row} {error.field}: {error.message}")
    return found


def available() -> bool:
    """Whether the shared data's ER sets are here."""
    return (er_dir() / "dedupe").is_dir() and (er_dir() / "senzing").is_dir()


def main() -> None:
    """`python bench/xref_data.py [DIR]`: each set's records, clusters, true pairs and mapping notes; with DIR,
    its import files written there (for `manage.py import_file PATH --kind KIND --agency CODE`)."""
    import sys

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    if not available():
        raise SystemExit(f"the ER data sets are not at {er_dir()}: set SHARED_DATA_DIR")
    for name in DATASETS:
        data = load(name)
        print(f"{name}: {len(data.records):,} records, {data.clusters:,} clusters, {len(data.truth):,} true pairs")
        for source_id, why in data.skipped:
            print(f"   left out: {source_id} ({why})")
        for note in data.notes:
            print(f"   {note}")
        if len(sys.argv) > 1:
            for kind, source, path in data.write(Path(sys.argv[1])):
                print(f"   {path} (--kind {kind}, source {source})")


if __name__ == "__main__":
    main()
