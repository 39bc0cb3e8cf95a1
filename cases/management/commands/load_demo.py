"""`python manage.py load_demo`: the demo data set, read from ``cases/demo/*.jsonl`` and written through the services.

Everything in it is FICTIONAL: the people, companies, registration numbers, phone numbers, cases and events are
invented; any resemblance to real persons or companies is coincidental. Only places, countries and commodities
are real. Two agencies (SSB, ASB) with their units and one user of every role each (password ``DEMO_PASSWORD``)
and an ``admin`` superuser; SSB's "Operation Grey Ore" (an antimony ring: persons, companies, links, licences,
shipments, parties, notes, prosecutions), ASB's gallium case shared read-only with SSB and its "Operation Dark
Crystal"; and 300 background shipments (``background_shipments.jsonl``, with their organisations and licences).

One file per kind of record, one JSON object a line; records name each other by stable keys: an entity by its
agency's code and ``source_id``, a case by its ``key``, a user by username, a licence by its number. Every
record is written by its app's service (which checks its rules, audits it and tells the outbox), all in one
transaction. Idempotent: a record found by its key (``source`` + ``source_id``; a case's agency + title; a
party's case + entity; …) is left as it is, so edits made while demonstrating survive a reload; accounts are
brought to the state the files describe. A second run writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from accounts.models import Agency, Unit, User
from accounts.services import agency_ensure, unit_ensure, user_ensure
from cases.choices import CaseStatus, CustodyStatus
from cases.models import Case, CaseParty, CaseShare, Commodity, Note, Prosecution
from cases.services import case_create, case_update, note_create, party_add, prosecution_create, share_create
from core.rules import RuleViolation
from entities.models import Entity, Link
from entities.services import link_create, organization_create, person_create
from shipments.models import Licence, Shipment, ShipmentLeg
from shipments.services import licence_create, shipment_create

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_PASSWORD = "demo-password-2026"
SOURCE, BACKGROUND_SOURCE = "demo", "demo-background"
PARTY_FIELDS = ("consignor", "consignee", "notify_party", "ordering_party")


def read(kind: str) -> list[dict[str, Any]]:
    """The records of `kind` (`cases/demo/<kind>.jsonl`)."""
    with (DEMO_DIR / f"{kind}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def typed(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    """JSON values as the model's fields store them (a date; a decimal to its places, as the API parses it)."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    out = dict(data)
    for name, value in data.items():
        field = fields.get(name)
        if field is not None and not field.is_relation and value is not None:
            out[name] = field.to_python(value)
            if isinstance(field, models.DecimalField):
                out[name] = out[name].quantize(Decimal(1).scaleb(-field.decimal_places))
    return out


class Loader:
    def __init__(self) -> None:
        self.created: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.agencies: dict[str, Agency] = {}
        self.units: dict[tuple[str, str | None], Unit | None] = {}
        self.users: dict[str, User] = {}
        self.entities: dict[tuple[str, str], Entity] = {}
        self.cases: dict[str, Case] = {}
        self.licences: dict[tuple[str, str], Licence] = {}

    def ensure(self, label: str, model: type[models.Model] | None, lookup: dict[str, Any],
               service: Callable[..., Any], **arguments: Any) -> Any:
        """The `model` record `lookup` finds (None: none to look for), else the one `service(**arguments)` writes."""
        found = model._default_manager.filter(**lookup).order_by("created_at").first() if model else None
        if found is not None:
            return found
        try:
            obj = service(**arguments)
        except (RuleViolation, ValueError) as exc:
            raise CommandError(f"demo {label} {lookup}: {exc}") from exc
        self.created[label] += 1
        return obj

    def refs(self, code: str, data: dict[str, Any], *entities: str) -> dict[str, Any]:
        """`data` with the records it names by key (entities in fields `entities`, cases, a licence) in their place."""
        out = dict(data)
        for name in entities:
            if out.get(name):
                if (code, out[name]) not in self.entities:
                    raise CommandError(f"demo data names {out[name]!r}, which {code}'s master index does not hold")
                out[name] = self.entities[code, out[name]]
        if "commodity" in out:
            out["commodity_id"] = out.pop("commodity")
        if "case" in out:
            out["case"] = self.cases[out["case"]] if out["case"] else None
        if "cases" in out:
            out["cases"] = [self.cases[key] for key in out["cases"]]
        if out.get("licence"):
            out["licence"] = self.licences[code, out["licence"]]
        return out

    def run(self) -> None:
        with transaction.atomic():
            self.accounts()
            for kind, create in (("persons", person_create), ("organizations", organization_create)):
                for r in read(kind):
                    code, agency = r["agency"], self.agencies[r.pop("agency")]
                    key = {"agency": agency, "source": r["source"], "source_id": r["source_id"]}
                    self.entities[code, r["source_id"]] = self.ensure(kind, Entity, key, create, agency=agency,
                                                                      actor=None, data=r)
            self.story()
            for r in read("links"):
                agency = self.agencies[r["agency"]]
                data = {**self.refs(r.pop("agency"), r, "source", "target"), "provenance_source": SOURCE}
                key = {"agency": agency, "provenance_source": SOURCE, "provenance_id": r["provenance_id"]}
                self.ensure("links", Link, key, link_create, agency=agency, actor=None, data=data)
            for r in read("licences"):
                code, agency = r["agency"], self.agencies[r.pop("agency")]
                self.licences[code, r["number"]] = self.ensure(
                    "licences", Licence, {"agency": agency, "number": r["number"]}, licence_create, agency=agency,
                    actor=None, data=typed(Licence, self.refs(code, r, "holder", "end_user")))
            self.shipments("shipments", read("shipments"))
            for r in read("prosecutions"):
                case = self.cases[r.pop("case")]
                data = typed(Prosecution, self.refs(case.agency.code, r, "defendant"))
                self.ensure("prosecutions", Prosecution, {"case": case, "defendant": data["defendant"]},
                            prosecution_create, case=case, actor=None, data=data)
            self.shipments("background shipments", read("background_shipments"))

    def accounts(self) -> None:
        for r in read("agencies"):
            before = Agency.objects.filter(code=r["code"]).values_list("name", "contact").first()
            agency, created = agency_ensure(code=r["code"], name=r["name"], contact=r["contact"])
            self.count("agencies", created, before, (agency.name, agency.contact))
            self.agencies[agency.code] = agency
            for u in r["units"]:
                name = Unit.objects.filter(agency=agency, code=u["code"]).values_list("name", flat=True).first()
                self.units[agency.code, u["code"]], created = unit_ensure(agency=agency, code=u["code"], name=u["name"])
                self.count("units", created, name, u["name"])
        self.units.update({(code, None): None for code in self.agencies})
        fields = ("agency_id", "unit_id", "role", "clearance", "is_staff", "is_superuser", "is_active", "password")
        for r in read("users"):
            before = User.objects.filter(username=r["username"]).values_list(*fields).first()
            try:
                user, created = user_ensure(
                    username=r["username"], agency=self.agencies.get(r["agency"]), role=r["role"],
                    unit=self.units.get((r["agency"], r["unit"])), clearance=r["clearance"], password=DEMO_PASSWORD,
                    is_staff=True, is_superuser=r["superuser"], is_active=True)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.count("users", created, before, tuple(getattr(user, name) for name in fields))
            self.users[user.username] = user

    def count(self, label: str, created: bool, before: Any, after: Any) -> None:
        if created:
            self.created[label] += 1
        elif before != after:
            self.updated[label] += 1

    def story(self) -> None:
        for r in read("cases"):
            agency = self.agencies[r["agency"]]
            commodities = list(Commodity.objects.filter(code__in=r["commodities"]))
            if len(commodities) != len(r["commodities"]):
                raise CommandError(f"commodities {r['commodities']} are not all seeded; run migrate first")
            data = {**typed(Case, {k: r[k] for k in ("title", "summary", "priority", "classification", "opened_on",
                                                     "tags")}),
                    "unit": self.units[agency.code, r["unit"]], "lead": self.users[r["lead"]],
                    "members": [self.users[name] for name in r["members"]], "commodities": commodities}
            self.cases[r["key"]] = self.ensure("cases", Case, {"agency": agency, "title": r["title"]}, open_case,
                                               agency=agency, data=data, status=r["status"])
        for r in read("parties"):
            case = self.cases[r.pop("case")]
            data = self.refs(case.agency.code, r, "entity")
            self.ensure("case parties", CaseParty, {"case": case, "entity": data["entity"]}, party_add, case=case,
                        actor=None, data=data)
        for r in read("notes"):
            case, author = self.cases[r["case"]], self.users[r["author"]]
            self.ensure("notes", Note, {"case": case, "author": author, "body": r["body"]}, note_create, case=case,
                        actor=author, data={"body": r["body"]})
        for r in read("shares"):
            case, agency = self.cases[r["case"]], self.agencies[r["agency"]]
            data = {"agency": agency, "unit": self.units[agency.code, r["unit"]], "access": r["access"]}
            self.ensure("case shares", CaseShare, {"case": case, "agency": agency, "unit": data["unit"]}, share_create,
                        case=case, actor=self.users[r["shared_by"]], data=data)

    def shipments(self, label: str, records: list[dict[str, Any]]) -> None:
        """Shipments with their legs and cases; those stored already found in one query (a few hundred)."""
        stored = set(Shipment.objects.filter(source__in={r["source"] for r in records})
                     .values_list("agency__code", "source", "source_id"))
        for r in records:
            code = r.pop("agency")
            if (code, r["source"], r["source_id"]) not in stored:
                data = typed(Shipment, self.refs(code, r, *PARTY_FIELDS))
                data["legs"] = [typed(ShipmentLeg, leg) for leg in data["legs"]]
                self.ensure(label, None, r, shipment_create, agency=self.agencies[code], actor=None, data=data)


def open_case(*, agency: Agency, data: dict[str, Any], status: str) -> Case:
    """A case as the API makes it: opened (a new case is `open`), then moved on to `status`."""
    case = case_create(agency=agency, actor=None, data=data)
    return case if status == CaseStatus.OPEN else case_update(case=case, actor=None, data={"status": status})


class Command(BaseCommand):
    help = ("Load the demo data set (fictional): two agencies, their users, three cases, background shipments. "
            "Idempotent.")

    def handle(self, *args: Any, **options: Any) -> None:
        loader = Loader()
        loader.run()
        out, done = self.stdout, []
        for verb, counts in (("created", loader.created), ("updated", loader.updated)):
            if counts:
                done.append(f"{verb} " + ", ".join(f"{n} {label}" for label, n in counts.items()))
        if done:
            out.write(self.style.SUCCESS("Demo data loaded (all names fictional): " + "; ".join(done) + "."))
        else:
            out.write(self.style.SUCCESS("Demo data already loaded: nothing changed (all names fictional)."))
        out.write("\nAgencies:")
        for code, agency in loader.agencies.items():
            units = ", ".join(u for (a, u) in loader.units if a == code and u)
            out.write(f"  {code}  {agency.name} (units: {units}; contact: {agency.contact})")
        out.write(f"\nUsers (password for all: {DEMO_PASSWORD}):")
        groups: dict[str, list[str]] = {}
        for r in read("users"):
            group = f"{r['agency']}/{r['unit']}" if r["agency"] else None
            groups.setdefault(group or r["username"], []).append(r["username"] if group else "superuser, no agency")
        for group, names in groups.items():
            out.write(f"  {group}: {', '.join(names)}")
        out.write("\nCases:")
        for case in loader.cases.values():
            arrested = case.parties.filter(custody_status=CustodyStatus.ARRESTED).count()
            shared = ", ".join(f"{s.agency.code} ({s.access})" for s in case.shares.filter(archived=False))
            extra = (f"; {arrested} arrested" if arrested else "") + (f"; shared with {shared}" if shared else "")
            out.write(f"  {case.reference}  {case.title} [{case.classification}, {case.status}{extra}]")
            out.write(f"      {case.shipments.count()} shipments, {case.prosecutions.count()} prosecutions, "
                      f"{case.links.count()} links")
        background = Shipment.objects.filter(source=BACKGROUND_SOURCE)
        agencies = dict.fromkeys(r["agency"] for r in read("background_shipments"))
        out.write(f"\nBackground: {background.count()} shipments (source {BACKGROUND_SOURCE!r}) in "
                  f"{', '.join(agencies)}.")
        out.write("\nAn API token:")
        out.write("  python manage.py issue_token demo-investigator")
        out.write('  curl -H "Authorization: Token <key>" http://127.0.0.1:8000/api/v1/cases/')
