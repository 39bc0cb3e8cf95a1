"""Clean and check the values of the master index: phones, emails, identifiers, countries, names.

Plain functions, so the API serializers, the bulk importer and the admin share one set of rules.
Each raises `InvalidValue` (a ValueError) with a message fit to show a client; list helpers raise
`InvalidParts` naming each bad item by its position (or field).
"""

from __future__ import annotations

import datetime
import functools
import importlib
import re
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from rest_framework import serializers
from stdnum.exceptions import ValidationError as StdnumError

from core.api.validation import CountryField

from .models import IdentifierScheme, _compact


class InvalidValue(ValueError):
    """A value that cannot be stored; the message says why."""


class InvalidParts(ValueError):
    """Some parts of a value are bad: {position in a list, or field of an item: [message]}."""

    def __init__(self, errors: dict[Any, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def identifier_key(number: str) -> str:
    """The form identifier numbers are indexed and searched by (upper-case letters and digits only)."""
    return _compact(number or "")


def clean_items(values: Iterable[Any], clean: Callable[[Any], str]) -> list[str]:
    """Each value cleaned, duplicates and blanks dropped, order kept; every bad item reported at once."""
    cleaned: list[str] = []
    errors: dict[Any, list[str]] = {}
    for position, value in enumerate(values):
        try:
            item = clean(value)
        except InvalidValue as exc:
            errors[position] = [str(exc)]
            continue
        if item and item not in cleaned:
            cleaned.append(item)
    if errors:
        raise InvalidParts(errors)
    return cleaned


# --- countries --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # pure; a few hundred countries, asked for on every imported row
def normalize_country(value: str | None) -> str:
    """ISO 3166-1 alpha-2, upper-cased; '' stays ''. The rule is CountryField's, the API's."""
    if value is None:
        return ""
    try:
        return CountryField(allow_blank=True).run_validation(str(value))
    except serializers.ValidationError as exc:
        raise InvalidValue(_first_message(exc.detail)) from exc


def _first_message(detail: Any) -> str:
    while isinstance(detail, list | dict):
        detail = next(iter(detail.values() if isinstance(detail, dict) else detail), "")
    return str(detail)


# --- names ------------------------------------------------------------------------------------


def normalize_name(value: str | None) -> str:
    """Whitespace collapsed; the script is kept as written (Hanzi stay Hanzi)."""
    return " ".join(str(value or "").split())


def normalize_names(name: str, names: Iterable[str]) -> list[str]:
    """Name variants without blanks, duplicates or a repeat of the primary name."""
    primary = normalize_name(name)
    return [n for n in clean_items(names, normalize_name) if n != primary]


_TOPIC = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*")
TOPIC_MAX = 50


def normalize_topic(value: Any) -> str:
    """A FollowTheMoney topic (`sanction`, `crime.fin`, `role.pep`, …): lower-cased dotted words."""
    topic = str(value or "").strip().lower()
    if topic and (len(topic) > TOPIC_MAX or not _TOPIC.fullmatch(topic)):
        raise InvalidValue(f"{str(value)[:60]!r} is not a topic (lower-case words joined by dots, e.g. sanction, "
                           f"role.pep; at most {TOPIC_MAX} characters).")
    return topic


def normalize_topics(values: Iterable[Any]) -> list[str]:
    return clean_items(values, normalize_topic)


GENDERS = ("male", "female", "other", "unknown")
_GENDER_ALIASES = {"m": "male", "f": "female", "man": "male", "woman": "female", "x": "other", "u": "unknown"}


def normalize_gender(value: str | None) -> str:
    """`male`, `female`, `other`, `unknown` or ''; `M`/`F` and any case are accepted."""
    folded = str(value or "").strip().lower()
    folded = _GENDER_ALIASES.get(folded, folded)
    if folded and folded not in GENDERS:
        raise InvalidValue(f"{value!r} is not one of {', '.join(GENDERS)}.")
    return folded


def check_birth_date(value: datetime.date | None) -> datetime.date | None:
    if value is not None and value > datetime.date.today():
        raise InvalidValue("A birth date cannot be in the future.")
    return value


# --- phones and emails ------------------------------------------------------------------------


def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164 (`+8613800138000`). A number without `+` is read as a number of `region` (ISO alpha-2)."""
    raw = str(value or "").strip()
    if not raw:
        raise InvalidValue("A phone number cannot be blank.")
    if not raw.startswith("+") and raw.startswith("00"):
        raw = "+" + raw[2:]
    if not raw.startswith("+") and not region:
        raise InvalidValue(f"{value!r} has no country code: write it as +<country code> <number>.")
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"{value!r} is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        where = f" in {region.upper()}" if region and not raw.startswith("+") else ""
        raise InvalidValue(f"{value!r} is not a valid phone number{where}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phones(values: Iterable[str], region: str | None = None) -> list[str]:
    return clean_items(values, lambda value: normalize_phone(value, region))


def phone_query(value: str) -> str:
    """A phone as searched for: E.164 when it parses, a `+` before its digits otherwise."""
    try:
        return normalize_phone(value)
    except InvalidValue:
        digits = re.sub(r"\D", "", value or "")
        try:
            return normalize_phone("+" + digits)
        except InvalidValue as exc:
            raise InvalidValue(f"{value!r} is not a phone number in international form (+<country code> …).") \
                from exc


def normalize_email(value: str) -> str:
    """A checked address, lower-cased so that matching ignores case."""
    email = str(value or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise InvalidValue(f"{value!r} is not an email address.") from exc
    return email


def normalize_emails(values: Iterable[str]) -> list[str]:
    return clean_items(values, normalize_email)


_URL = URLValidator(schemes=["http", "https"])


def normalize_website(value: str | None) -> str:
    """An http(s) URL; a bare host (`example.com`) is accepted and kept as written."""
    site = str(value or "").strip()
    if not site:
        return ""
    try:
        _URL(site if "://" in site else f"https://{site}")
    except DjangoValidationError as exc:
        raise InvalidValue(f"{value!r} is not a web address.") from exc
    return site


# --- identifiers ------------------------------------------------------------------------------

# python-stdnum modules that check a scheme's numbers, by country. Several modules for one country
# mean any of them may be meant (a Chinese tax id is a resident id for a person, a USCC for a firm).
NATIONAL_ID_MODULES: dict[str, tuple[str, ...]] = {
    "BE": ("be.nn",), "BG": ("bg.egn",), "BR": ("br.cpf",), "CL": ("cl.rut",), "CN": ("cn.ric",),
    "CZ": ("cz.rc",), "DK": ("dk.cpr",), "DO": ("do.cedula",), "EC": ("ec.ci",), "EE": ("ee.ik",),
    "ES": ("es.dni", "es.nie"), "FI": ("fi.hetu",), "FR": ("fr.nir",), "HR": ("hr.oib",), "ID": ("id.nik",),
    "IL": ("il.idnr",), "IN": ("in_.aadhaar",), "IS": ("is_.kennitala",), "IT": ("it.codicefiscale",),
    "KR": ("kr.rrn",), "LT": ("lt.asmens",), "MU": ("mu.nid",), "MX": ("mx.curp",), "MY": ("my.nric",),
    "NL": ("nl.bsn",), "NO": ("no.fodselsnummer",), "PK": ("pk.cnic",), "PL": ("pl.pesel",),
    "PT": ("pt.cc",), "RO": ("ro.cnp",), "SE": ("se.personnummer",), "SI": ("si.emso",), "SK": ("sk.rc",),
    "TH": ("th.pin",), "TR": ("tr.tckimlik",), "US": ("us.ssn",), "ZA": ("za.idnr",),
}
TAX_ID_MODULES: dict[str, tuple[str, ...]] = {
    "AR": ("ar.cuit",), "AT": ("at.tin",), "AU": ("au.tfn", "au.abn"), "BR": ("br.cpf", "br.cnpj"),
    "CA": ("ca.sin", "ca.bn"), "CL": ("cl.rut",), "CN": ("cn.ric", "cn.uscc"), "CO": ("co.nit",),
    "DE": ("de.idnr", "de.stnr"), "EG": ("eg.tn",), "ES": ("es.nif",), "FR": ("fr.nif", "fr.siren"),
    "GB": ("gb.utr",), "GH": ("gh.tin",), "ID": ("id.npwp",), "IN": ("in_.pan",),
    "IT": ("it.codicefiscale",), "KE": ("ke.pin",), "KR": ("kr.rrn", "kr.brn"), "MX": ("mx.rfc",),
    "NZ": ("nz.ird",), "PE": ("pe.ruc",), "PL": ("pl.nip", "pl.pesel"), "RU": ("ru.inn",),
    "TH": ("th.tin", "th.pin"), "TR": ("tr.vkn", "tr.tckimlik"), "UA": ("ua.rntrc", "ua.edrpou"),
    "US": ("us.tin",), "VN": ("vn.mst",), "ZA": ("za.tin",),
}
# An organisation's registration number, by jurisdiction, where the registry's numbers carry a check.
REGISTRATION_MODULES: dict[str, tuple[str, ...]] = {
    "AL": ("al.nipt",), "AR": ("ar.cuit",), "AU": ("au.acn", "au.abn"), "AZ": ("az.voen",), "BR": ("br.cnpj",),
    "BY": ("by.unp",), "CH": ("ch.uid",), "CL": ("cl.rut",), "CN": ("cn.uscc",), "CO": ("co.nit",),
    "DK": ("dk.cvr",), "DO": ("do.rnc",), "EC": ("ec.ruc",), "EE": ("ee.registrikood",), "ES": ("es.cif",),
    "FI": ("fi.ytunnus",), "FR": ("fr.siren", "fr.siret"), "IL": ("il.hp",), "IS": ("is_.kennitala",),
    "JP": ("jp.cn",), "MA": ("ma.ice",), "MD": ("md.idno",), "MK": ("mk.edb",), "MX": ("mx.rfc",),
    "NO": ("no.orgnr",), "PE": ("pe.ruc",), "RO": ("ro.onrc", "ro.cui"), "RU": ("ru.ogrn", "ru.inn"),
    "SE": ("se.orgnr",), "SG": ("sg.uen",), "SI": ("si.maticna",), "SN": ("sn.ninea",), "TH": ("th.moa",),
    "TW": ("tw.ubn",), "UA": ("ua.edrpou",), "UY": ("uy.rut",), "VE": ("ve.rif",), "VN": ("vn.mst",),
}
_SCHEME_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    IdentifierScheme.NATIONAL_ID.value: NATIONAL_ID_MODULES,
    IdentifierScheme.TAX_ID.value: TAX_ID_MODULES,
}
_SEPARATORS = re.compile(r"[\s\-./]+")


def compact_number(number: str) -> str:
    """A number as given, without spaces, dashes, dots or slashes, upper-cased: `ab 12-34` → `AB1234`."""
    return _SEPARATORS.sub("", str(number or "")).upper()


def _module(path: str) -> ModuleType:
    return importlib.import_module(f"stdnum.{path}")


def check_number(number: str, module_paths: tuple[str, ...], label: str) -> str:
    """The number compacted by the first module that accepts it; InvalidValue when none does."""
    compact = compact_number(number)
    if not compact:
        raise InvalidValue(f"A {label} cannot be blank.")
    if not module_paths:
        return compact
    first_error: Exception | None = None
    for path in module_paths:
        module = _module(path)
        try:
            return str(module.validate(compact))
        except StdnumError as exc:
            first_error = first_error or exc
        except (KeyError, IndexError, ValueError) as exc:  # a module's own bug on an odd number (cn.ric: KeyError)
            first_error = first_error or StdnumError(f"cannot be checked ({type(exc).__name__})")
    names = " or ".join(_module(p).__name__.split(".", 1)[1] for p in module_paths)
    raise InvalidValue(f"{number!r} is not a valid {label} ({names}: {first_error}).")


def normalize_identifier(scheme: str, number: str, country: str = "") -> dict[str, str]:
    """`{"scheme", "number", "country"}` with the number compacted and, where python-stdnum knows the
    scheme for the country, its check digits verified. Raises InvalidParts keyed by field."""
    errors: dict[str, list[str]] = {}
    if scheme not in IdentifierScheme.values:
        errors["scheme"] = [f"{scheme!r} is not one of {', '.join(IdentifierScheme.values)}."]
    try:
        country = normalize_country(country)
    except InvalidValue as exc:
        errors["country"] = [str(exc)]
    if errors:
        raise InvalidParts(errors)
    modules = _SCHEME_MODULES.get(scheme, {}).get(country, ())
    label = f"{country} {scheme.replace('_', ' ')}" if country else scheme.replace("_", " ")
    try:
        compact = check_number(number, modules, label)
    except InvalidValue as exc:
        raise InvalidParts({"number": [str(exc)]}) from exc
    return {"scheme": scheme, "number": compact, "country": country}


def normalize_registration_number(number: str | None, jurisdiction: str = "") -> str:
    """Compacted; checked with python-stdnum where it has a module for the jurisdiction (CN: USCC)."""
    if not str(number or "").strip():
        return ""
    modules = REGISTRATION_MODULES.get((jurisdiction or "").upper(), ())
    label = f"{jurisdiction.upper()} registration number" if jurisdiction else "registration number"
    return check_number(str(number), modules, label)
