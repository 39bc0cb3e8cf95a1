"""`python manage.py load_demo`: the demo data set.

Everything here is FICTIONAL. The people, companies, registration numbers, phone numbers,
cases and events are invented for demonstration; any resemblance to real persons or
companies is coincidental. Only place names, countries and commodities are real.

What it loads:

- two agencies, SSB (State Security Bureau) and ASB (Customs Anti-Smuggling Bureau), with
  their units; one user of every role in each (``demo-<role>`` in SSB/econ, ``asb-<role>``
  in ASB/ports), all staff so they can use the admin, and one ``admin`` superuser without an
  agency; every demo account has the password ``DEMO_PASSWORD``;
- SSB's case "Operation Grey Ore": a family-run antimony smuggling ring led from abroad,
  with its persons and companies in SSB's master index, its parties (eight arrested, the
  ringleader wanted) and the investigator's notes;
- ASB's small case about a gallium shipment intercepted at Qinzhou port, shared read-only with
  SSB. Its consignee and forwarder are ASB's own records of two companies SSB also holds
  (same registration numbers), so cross-referencing has something to find across agencies.

Idempotent: records are looked up by stable keys (username, agency code, unit code, case
title and agency, ``source="demo"`` + ``source_id`` for persons and organisations, the case
and entity for a party, case + author + body for a note, case + agency + unit for a share).
Accounts are brought to the state described here (through ``accounts.services``, which audits
each change); case content that already exists is left as it is, so edits made while
demonstrating survive a reload. Every record created gets its audit event
(``core.services.audit_create``), all in one transaction. A second run writes nothing.

To extend (shipments, links, prosecutions, ...): add a module-level constant holding the data
and a ``load_<part>`` method on ``DemoLoader``, then name it in ``DemoLoader.STEPS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from accounts.choices import Clearance, Role
from accounts.models import Agency, Unit, User
from accounts.services import agency_ensure, unit_ensure, user_ensure
from cases.choices import CaseStatus, CustodyStatus, PartyRole, Priority, ShareAccess
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from cases.services import case_next_reference
from core.services import audit_create
from entities.models import Organization, OrganizationKind, Person

DEMO_PASSWORD = "demo-password-2026"
SOURCE = "demo"

# --- accounts ------------------------------------------------------------------------------

AGENCIES: list[dict[str, Any]] = [
    {
        "code": "SSB",
        "name": "State Security Bureau",
        "contact": "Economic Security Duty Desk, +86 10 5550 0110",
        "units": [("econ", "Economic security"), ("cyber", "Cyber")],
    },
    {
        "code": "ASB",
        "name": "Customs Anti-Smuggling Bureau",
        "contact": "Anti-Smuggling Liaison Desk, +86 20 5550 0220",
        "units": [("ports", "Port enforcement"), ("intel", "Intelligence")],
    },
]

ROLE_CLEARANCE: dict[str, str] = {
    Role.VIEWER: Clearance.RESTRICTED,
    Role.ANALYST: Clearance.CONFIDENTIAL,
    Role.INVESTIGATOR: Clearance.SECRET,
    Role.SUPERVISOR: Clearance.SECRET,
    Role.AUDITOR: Clearance.SECRET,
    Role.AGENCY_ADMIN: Clearance.SECRET,
}

# One user of every role per agency: `<prefix>-<role>`, all in the agency's `unit`.
USER_GROUPS: list[dict[str, str]] = [
    {"agency": "SSB", "prefix": "demo", "unit": "econ"},
    {"agency": "ASB", "prefix": "asb", "unit": "ports"},
]

SUPERUSER = "admin"

# --- the agencies' master indexes ------------------------------------------------------------
# Keyed by agency code; each entry is the model's fields plus `source_id` (source is "demo").

PERSONS: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {
            "source_id": "luo-jianguo",
            "name": "Luo Jianguo",
            "names": ["罗建国", "LUO Jian Guo"],
            "gender": "male",
            "birth_date": date(1969, 3, 18),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "notes": "Ringleader. Lives in Dubai (AE) since 2019. Finances the operation and orders antimony "
                     "from domestic producers through Grand Harvest (HK), Silver Peak (SG) and Gulf Meridian (AE).",
        },
        {
            "source_id": "luo-jianhua",
            "name": "Luo Jianhua",
            "names": ["罗建华"],
            "gender": "male",
            "birth_date": date(1972, 11, 2),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "notes": "Younger brother of Luo Jianguo. Runs the domestic side: places the orders with the "
                     "producers on the shell companies' letterhead and arranges pick-up.",
        },
        {
            "source_id": "luo-meiling",
            "name": "Luo Meiling",
            "names": ["罗美玲"],
            "gender": "female",
            "birth_date": date(1975, 6, 27),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "notes": "Sister of Luo Jianguo. Prepares the export paperwork declaring antimony ingots as lead "
                     "alloy and zinc concentrate, filed through the freight forwarder.",
        },
        {
            "source_id": "chen-xiuying",
            "name": "Chen Xiuying",
            "names": ["陈秀英"],
            "gender": "female",
            "birth_date": date(1971, 9, 9),
            "birth_place": "Changsha, Hunan",
            "nationalities": ["CN"],
            "notes": "Wife of Luo Jianguo. Nominee director of Grand Harvest Trading (HK); receives the "
                     "proceeds in domestic accounts.",
        },
        {
            "source_id": "luo-zhiyong",
            "name": "Luo Zhiyong",
            "names": ["罗志勇"],
            "gender": "male",
            "birth_date": date(1983, 1, 15),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "notes": "Cousin of Luo Jianguo. Drives consignments from Hunan to the Pingxiang border crossing "
                     "(Guangxi) into Vietnam.",
        },
        {
            "source_id": "wu-haifeng",
            "name": "Wu Haifeng",
            "names": ["吴海峰"],
            "gender": "male",
            "birth_date": date(1974, 4, 30),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "notes": "Husband of Luo Meiling (brother-in-law of the ringleader). Organises the transit leg: "
                     "relabelling in Hai Phong (VN) and re-export by sea via Laem Chabang (TH).",
        },
        {
            "source_id": "huang-guoqiang",
            "name": "Huang Guoqiang",
            "names": ["黄国强"],
            "gender": "male",
            "birth_date": date(1966, 12, 5),
            "birth_place": "Shenzhen, Guangdong",
            "nationalities": ["CN"],
            "notes": "Underground banker in Shenzhen. Settles the USD paid to Gulf Meridian Metals (AE) into "
                     "RMB for the producers and the family.",
        },
        {
            "source_id": "zhou-peng",
            "name": "Zhou Peng",
            "names": ["周鹏"],
            "gender": "male",
            "birth_date": date(1988, 7, 21),
            "birth_place": "Hechi, Guangxi",
            "nationalities": ["CN"],
            "notes": "Truck driver; second courier on the Hechi-Pingxiang route.",
        },
        {
            "source_id": "sun-li",
            "name": "Sun Li",
            "names": ["孙丽"],
            "gender": "female",
            "birth_date": date(1990, 2, 14),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "notes": "Customs declaration clerk at Nanning Jiayuan International Freight Forwarding; filed the "
                     "mis-declared export declarations.",
        },
    ],
    "ASB": [
        {
            "source_id": "deng-kaiwen",
            "name": "Deng Kaiwen",
            "names": ["邓凯文"],
            "gender": "male",
            "birth_date": date(1985, 8, 3),
            "birth_place": "Beihai, Guangxi",
            "nationalities": ["CN"],
            "notes": "General manager of Beihai Xinrui Metal Materials Trading; signed the export declaration.",
        },
    ],
}

ORGANIZATIONS: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {
            "source_id": "grand-harvest-hk",
            "name": "Grand Harvest Trading Limited",
            "names": ["宏丰贸易有限公司"],
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "HK",
            "registration_number": "3187452",
            "incorporated_on": date(2022, 5, 10),
            "notes": "Shell company; buyer of record on the producers' export contracts. Nominee director: "
                     "Chen Xiuying.",
        },
        {
            "source_id": "silver-peak-sg",
            "name": "Silver Peak Resources Pte. Ltd.",
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "SG",
            "registration_number": "202437715C",
            "incorporated_on": date(2024, 9, 23),
            "notes": "Shell company incorporated a week after antimony export licensing took effect "
                     "(2024-09-15); consignee of the re-exported goods.",
        },
        {
            "source_id": "gulf-meridian-ae",
            "name": "Gulf Meridian Metals FZE",
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "AE",
            "registration_number": "FZE-214387",
            "incorporated_on": date(2021, 11, 3),
            "notes": "Free-zone company in Jebel Ali; receives the final buyers' payments.",
        },
        {
            "source_id": "hunan-yuanfeng",
            "name": "Hunan Yuanfeng Antimony Smelting Co., Ltd.",
            "names": ["湖南源丰锑冶炼有限公司"],
            "kind": OrganizationKind.PRODUCER,
            "jurisdiction": "CN",
            "registration_number": "91431381MA4T2Y7K53",
            "incorporated_on": date(2008, 4, 22),
            "notes": "Antimony smelter in Lengshuijiang; sold ingots to Grand Harvest (HK).",
        },
        {
            "source_id": "guangxi-jinshan",
            "name": "Guangxi Hechi Jinshan Nonferrous Metals Co., Ltd.",
            "names": ["广西河池金山有色金属有限公司"],
            "kind": OrganizationKind.PRODUCER,
            "jurisdiction": "CN",
            "registration_number": "91451200MA5N8Q3L2U",
            "incorporated_on": date(2012, 10, 8),
            "notes": "Producer of antimony trioxide in Hechi; sold to Silver Peak (SG).",
        },
        {
            "source_id": "nanning-jiayuan",
            "name": "Nanning Jiayuan International Freight Forwarding Co., Ltd.",
            "names": ["南宁嘉远国际货运代理有限公司"],
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "CN",
            "registration_number": "91450100MA5P6W4R9T",
            "incorporated_on": date(2016, 3, 14),
            "notes": "Freight forwarder that filed the export declarations and booked the border trucks.",
        },
    ],
    "ASB": [
        {
            "source_id": "beihai-xinrui",
            "name": "Beihai Xinrui Metal Materials Trading Co., Ltd.",
            "names": ["北海鑫瑞金属材料贸易有限公司"],
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "CN",
            "registration_number": "91450500MA5R2D8J49",
            "incorporated_on": date(2024, 1, 9),
            "notes": "Exporter of record (consignor) of the intercepted shipment.",
        },
        # ASB's own records of two companies SSB also holds (same registration numbers).
        {
            "source_id": "silver-peak-sg",
            "name": "Silver Peak Resources Pte Ltd",
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "SG",
            "registration_number": "202437715C",
            "notes": "Consignee of the intercepted shipment.",
        },
        {
            "source_id": "nanning-jiayuan",
            "name": "Nanning Jiayuan Intl Freight Forwarding Co Ltd",
            "names": ["南宁嘉远国际货运代理有限公司"],
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "CN",
            "registration_number": "91450100MA5P6W4R9T",
            "notes": "Forwarder that filed the export declaration.",
        },
    ],
}

# --- cases ---------------------------------------------------------------------------------
# Keyed by a demo-internal key; looked up in the database by (agency, title).

GREY_ORE = "grey-ore"
GALLIUM_PORT = "gallium-port"

CASES: dict[str, dict[str, Any]] = {
    GREY_ORE: {
        "agency": "SSB",
        "title": "Operation Grey Ore: family-run antimony smuggling ring",
        "summary": (
            "A family-run network led from abroad by Luo Jianguo (resident in Dubai) bought antimony ingots "
            "and trioxide from two domestic producers through shell companies in Hong Kong, Singapore and the "
            "UAE, without export licences. His brother, sister, wife, cousin and brother-in-law moved the goods "
            "overland to Hai Phong (VN) and by sea via Laem Chabang (TH), declared as lead alloy and zinc "
            "concentrate, before final delivery to buyers abroad; an underground banker in Shenzhen settled "
            "the payments. Eight suspects were arrested on 2026-09-09; the ringleader is wanted."
        ),
        "unit": "econ",
        "lead": "demo-investigator",
        "members": ["demo-analyst"],
        "classification": Clearance.CONFIDENTIAL,
        "priority": Priority.HIGH,
        "status": CaseStatus.INVESTIGATING,
        "commodities": ["antimony"],
        "tags": ["antimony", "family-ring", "third-country-transit", "shell-companies", "mis-declaration"],
        "opened_on": date(2026, 2, 16),
    },
    GALLIUM_PORT: {
        "agency": "ASB",
        "title": "Gallium shipment intercepted at Qinzhou port",
        "summary": (
            "1.2 t of 4N gallium metal declared as aluminium alloy scrap (HS 760200), consigned by Beihai Xinrui "
            "Metal Materials Trading to Silver Peak Resources (SG) via Hai Phong (VN); intercepted on container "
            "inspection at Qinzhou port on 2026-10-20. Shared read-only with SSB: the consignee is a shell "
            "company in SSB's Operation Grey Ore."
        ),
        "unit": "ports",
        "lead": "asb-investigator",
        "members": ["asb-analyst"],
        "classification": Clearance.RESTRICTED,
        "priority": Priority.MEDIUM,
        "status": CaseStatus.INVESTIGATING,
        "commodities": ["gallium"],
        "tags": ["gallium", "port-interception", "mis-declaration"],
        "opened_on": date(2026, 10, 21),
    },
}

_P, _O = "person", "organization"
_NA = CustodyStatus.NOT_APPLICABLE

# Case key -> (entity kind, source_id, role, custody status, notes). Entities are the case agency's.
PARTIES: dict[str, list[tuple[str, str, str, str, str]]] = {
    GREY_ORE: [
        (_P, "luo-jianguo", PartyRole.RINGLEADER, CustodyStatus.WANTED,
         "Abroad (Dubai); finances the ring and orders through the shell companies."),
        (_P, "luo-jianhua", PartyRole.ORGANISER, CustodyStatus.ARRESTED, "Brother; domestic procurement."),
        (_P, "luo-meiling", PartyRole.FACILITATOR, CustodyStatus.ARRESTED, "Sister; mis-declared export papers."),
        (_P, "chen-xiuying", PartyRole.FACILITATOR, CustodyStatus.ARRESTED,
         "Wife; nominee director, receives proceeds."),
        (_P, "luo-zhiyong", PartyRole.COURIER, CustodyStatus.ARRESTED, "Cousin; border runs to Vietnam."),
        (_P, "wu-haifeng", PartyRole.ORGANISER, CustodyStatus.ARRESTED,
         "Brother-in-law; transit via Hai Phong (VN) and Laem Chabang (TH)."),
        (_P, "huang-guoqiang", PartyRole.FINANCIER, CustodyStatus.ARRESTED, "Underground banker, Shenzhen."),
        (_P, "zhou-peng", PartyRole.COURIER, CustodyStatus.ARRESTED, "Truck driver."),
        (_P, "sun-li", PartyRole.FACILITATOR, CustodyStatus.ARRESTED, "Declaration clerk at the forwarder."),
        (_O, "grand-harvest-hk", PartyRole.SHELL_COMPANY, _NA, "Buyer of record on the export contracts."),
        (_O, "silver-peak-sg", PartyRole.SHELL_COMPANY, _NA, "Consignee of the re-exports."),
        (_O, "gulf-meridian-ae", PartyRole.SHELL_COMPANY, _NA, "Receives the final buyers' payments."),
        (_O, "hunan-yuanfeng", PartyRole.PRODUCER, _NA, "Antimony ingots."),
        (_O, "guangxi-jinshan", PartyRole.PRODUCER, _NA, "Antimony trioxide."),
        (_O, "nanning-jiayuan", PartyRole.FACILITATOR, _NA, "Freight forwarder."),
    ],
    GALLIUM_PORT: [
        (_P, "deng-kaiwen", PartyRole.SUSPECT, CustodyStatus.DETAINED, "Signed the export declaration."),
        (_O, "beihai-xinrui", PartyRole.SUSPECT, _NA, "Consignor."),
        (_O, "silver-peak-sg", PartyRole.BUYER, _NA, "Consignee; see SSB's Operation Grey Ore."),
        (_O, "nanning-jiayuan", PartyRole.FACILITATOR, _NA, "Forwarder."),
    ],
}

# Case key -> (author username, body).
NOTES: dict[str, list[tuple[str, str]]] = {
    GREY_ORE: [
        ("demo-investigator",
         "Hunan Yuanfeng's sales ledger shows 212 t of antimony ingots invoiced to Grand Harvest Trading (HK) "
         "between 2024-10 and 2026-06. No export licence application on file for any of them."),
        ("demo-investigator",
         "Extraction of Luo Jianhua's phone: a family chat group with the ringleader, his sister, cousin and "
         "brother-in-law. Orders are placed by Luo Jianguo from Dubai and confirmed by Jianhua with the "
         "producers. Translation filed as evidence."),
        ("demo-investigator",
         "Coordinated arrests on 2026-09-09 in Lengshuijiang, Nanning, Hechi and Pingxiang: eight suspects. "
         "Wanted notice for Luo Jianguo drafted for supervisor review."),
    ],
    GALLIUM_PORT: [
        ("asb-investigator",
         "X-ray anomaly on container inspection; 48 drums of gallium ingots under a layer of aluminium scrap. "
         "Consignee matches a shell company in an SSB case: case shared with SSB read-only."),
    ],
}

# Case key -> shares: {agency, unit (None: the whole agency), access, shared_by}.
SHARES: dict[str, list[dict[str, Any]]] = {
    GALLIUM_PORT: [
        {"agency": "SSB", "unit": None, "access": ShareAccess.READ, "shared_by": "asb-supervisor"},
    ],
}


# --- the loader ----------------------------------------------------------------------------


class DemoLoader:
    """Loads the parts in STEPS order; each step may use what earlier steps loaded."""

    STEPS = (
        "load_agencies",
        "load_users",
        "load_persons",
        "load_organizations",
        "load_cases",
        "load_parties",
        "load_notes",
        "load_shares",
    )

    def __init__(self) -> None:
        self.created: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.agencies: dict[str, Agency] = {}
        self.units: dict[tuple[str, str], Unit] = {}
        self.users: dict[str, User] = {}
        self.entities: dict[tuple[str, str, str], Person | Organization] = {}
        self.cases: dict[str, Case] = {}

    def run(self) -> None:
        with transaction.atomic():
            for step in self.STEPS:
                getattr(self, step)()

    # --- helpers -------------------------------------------------------------------------

    def _ensure(
        self,
        model: type[models.Model],
        lookup: dict[str, Any],
        values: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        *,
        m2m: dict[str, list[Any]] | None = None,
        audit_action: str = "create",
    ) -> Any:
        """The record matching `lookup`, else a new one (validated, audited); existing ones are left alone."""
        obj = model._default_manager.filter(**lookup).order_by("created_at").first()
        if obj is not None:
            return obj
        fields = values() if callable(values) else (values or {})
        obj = model(**lookup, **fields)
        try:
            obj.full_clean()
        except ValidationError as exc:
            raise CommandError(f"demo data for {model._meta.verbose_name} {lookup}: {exc}") from exc
        obj.save()
        for name, items in (m2m or {}).items():
            getattr(obj, name).set(items)
        audit_create(obj, action=audit_action)
        self.created[str(model._meta.verbose_name_plural)] += 1
        return obj

    def _user(self, username: str) -> User:
        if username not in self.users:
            raise CommandError(f"demo data names an unknown demo user {username!r}")
        return self.users[username]

    def _ensure_user(self, username: str, *, agency: Agency | None, unit: Unit | None, role: str,
                     clearance: str, superuser: bool = False) -> User:
        wanted = {"agency_id": agency.pk if agency else None, "unit_id": unit.pk if unit else None,
                  "role": role, "clearance": clearance, "is_staff": True, "is_superuser": superuser,
                  "is_active": True}
        user = User.objects.filter(username=username).first()
        if user is not None and all(getattr(user, k) == v for k, v in wanted.items()) \
                and user.check_password(DEMO_PASSWORD):
            return user  # already as described: no write, no audit event
        try:
            user, created = user_ensure(username=username, agency=agency, unit=unit, role=role,
                                        clearance=clearance, password=DEMO_PASSWORD, is_staff=True,
                                        is_superuser=superuser, is_active=True)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        (self.created if created else self.updated)["users"] += 1
        return user

    # --- steps ---------------------------------------------------------------------------

    def load_agencies(self) -> None:
        for spec in AGENCIES:
            existing = Agency.objects.filter(code=spec["code"]).first()
            agency, created = agency_ensure(code=spec["code"], name=spec["name"], contact=spec["contact"])
            if created:
                self.created["agencies"] += 1
            elif existing is not None and (existing.name, existing.contact) != (agency.name, agency.contact):
                self.updated["agencies"] += 1
            self.agencies[agency.code] = agency
            for code, name in spec["units"]:
                before = Unit.objects.filter(agency=agency, code=code).values_list("name", flat=True).first()
                unit, created = unit_ensure(agency=agency, code=code, name=name)
                if created:
                    self.created["units"] += 1
                elif before != name:
                    self.updated["units"] += 1
                self.units[agency.code, code] = unit

    def load_users(self) -> None:
        for group in USER_GROUPS:
            agency = self.agencies[group["agency"]]
            unit = self.units[agency.code, group["unit"]]
            for role in Role.values:
                username = f"{group['prefix']}-{role}"
                self.users[username] = self._ensure_user(
                    username, agency=agency, unit=unit, role=role, clearance=ROLE_CLEARANCE[role]
                )
        self.users[SUPERUSER] = self._ensure_user(
            SUPERUSER, agency=None, unit=None, role=Role.AGENCY_ADMIN, clearance=Clearance.SECRET,
            superuser=True,
        )

    def _load_entities(self, model: type[Person | Organization], kind: str,
                       data: dict[str, list[dict[str, Any]]]) -> None:
        for code, specs in data.items():
            agency = self.agencies[code]
            for spec in specs:
                fields = dict(spec)
                source_id = fields.pop("source_id")
                self.entities[code, kind, source_id] = self._ensure(
                    model, {"agency": agency, "source": SOURCE, "source_id": source_id}, fields
                )

    def load_persons(self) -> None:
        self._load_entities(Person, _P, PERSONS)

    def load_organizations(self) -> None:
        self._load_entities(Organization, _O, ORGANIZATIONS)

    def load_cases(self) -> None:
        for key, spec in CASES.items():
            agency = self.agencies[spec["agency"]]
            codes = spec["commodities"]
            commodities = list(Commodity.objects.filter(code__in=codes))
            if len(commodities) != len(codes):
                raise CommandError(f"commodities {codes} are not all seeded; run migrate first")

            def values(spec: dict[str, Any] = spec, agency: Agency = agency) -> dict[str, Any]:
                # Only called for a new case, so a reference number is never used up for nothing.
                return {
                    "reference": case_next_reference(agency=agency, year=spec["opened_on"].year),
                    "summary": spec["summary"],
                    "status": spec["status"],
                    "priority": spec["priority"],
                    "classification": spec["classification"],
                    "unit": self.units[agency.code, spec["unit"]],
                    "lead": self._user(spec["lead"]),
                    "opened_on": spec["opened_on"],
                    "tags": spec["tags"],
                }

            self.cases[key] = self._ensure(
                Case, {"agency": agency, "title": spec["title"]}, values,
                m2m={"members": [self._user(u) for u in spec["members"]], "commodities": commodities},
            )

    def load_parties(self) -> None:
        for key, parties in PARTIES.items():
            case = self.cases[key]
            for kind, source_id, role, custody, notes in parties:
                entity = self.entities.get((case.agency.code, kind, source_id))
                if entity is None:
                    raise CommandError(f"party {kind} {source_id!r} of {key} is not in the demo data")
                self._ensure(CaseParty, {"case": case, "entity": entity},
                             {"role": role, "custody_status": custody, "notes": notes})

    def load_notes(self) -> None:
        for key, notes in NOTES.items():
            for author, body in notes:
                self._ensure(Note, {"case": self.cases[key], "author": self._user(author), "body": body})

    def load_shares(self) -> None:
        for key, shares in SHARES.items():
            case = self.cases[key]
            for spec in shares:
                agency = self.agencies[spec["agency"]]
                unit = self.units[agency.code, spec["unit"]] if spec["unit"] else None
                self._ensure(CaseShare, {"case": case, "agency": agency, "unit": unit},
                             {"access": spec["access"], "shared_by": self._user(spec["shared_by"])},
                             audit_action="share")


# --- the command ---------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Load the demo data set (fictional): two agencies, their users, two cases. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        loader = DemoLoader()
        loader.run()
        self.summary(loader)

    def summary(self, loader: DemoLoader) -> None:
        out = self.stdout
        if loader.created or loader.updated:
            done = []
            for verb, counts in (("created", loader.created), ("updated", loader.updated)):
                if counts:
                    done.append(f"{verb} " + ", ".join(f"{n} {label}" for label, n in counts.items()))
            out.write(self.style.SUCCESS("Demo data loaded (all names fictional): " + "; ".join(done) + "."))
        else:
            out.write(self.style.SUCCESS("Demo data already loaded: nothing changed (all names fictional)."))
        out.write("\nAgencies:")
        for code, agency in loader.agencies.items():
            units = ", ".join(u for (a, u) in loader.units if a == code)
            out.write(f"  {code}  {agency.name} (units: {units}; contact: {agency.contact})")
        out.write(f"\nUsers (password for all: {DEMO_PASSWORD}):")
        for group in USER_GROUPS:
            names = ", ".join(f"{group['prefix']}-{role}" for role in Role.values)
            out.write(f"  {group['agency']}/{group['unit']}: {names}")
        out.write(f"  {SUPERUSER}: superuser, no agency")
        out.write("\nCases:")
        for case in loader.cases.values():
            arrested = case.parties.filter(custody_status=CustodyStatus.ARRESTED).count()
            shared = ", ".join(f"{s.agency.code} ({s.access})" for s in case.shares.filter(archived=False))
            extra = f"; {arrested} arrested" if arrested else ""
            extra += f"; shared with {shared}" if shared else ""
            out.write(f"  {case.reference}  {case.title} [{case.classification}, {case.status}{extra}]")
        out.write("\nAn API token:")
        out.write("  python manage.py issue_token demo-investigator")
        out.write('  curl -H "Authorization: Token <key>" http://127.0.0.1:8000/api/v1/cases/')
