"""`python manage.py load_demo`: the demo data set (all FICTIONAL: only places, countries and commodities are
real), read from ``cases/demo/*.jsonl``: one file a kind of record, one JSON object a line, naming other records
by stable keys (an entity by its agency's code and ``source_id``, a case by its ``key``, a user by username, a
licence by its number). Every record is written by its app's service, as an API write is (rules, audit event,
outbox), in one transaction. Idempotent: a record found by its key is left as it is (edits made while
demonstrating survive a reload); accounts are brought to the state the files describe; a second run writes nothing.
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
USER_FIELDS = ("agency_id", "unit_id", "role", "clearance", "is_staff", "is_superuser", "is_active", "password")


def read(kind: str) -> list[dict[str, Any]]:
    """The records of `kind` (`cases/demo/<kind>.jsonl`)."""
    with (DEMO_DIR / f"{kind}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def typed(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    """JSON values as the model's fields store them (a date; a decimal to its places, as the API parses it)."""
    out = dict(data)
    for field in model._meta.concrete_fields:
        if out.get(field.name) is not None and not field.is_relation:
            out[field.name] = field.to_python(out[field.name])
            if isinstance(field, models.DecimalField):
                out[field.name] = out[field.name].quantize(Decimal(1).scaleb(-field.decimal_places))
    return out


def open_case(*, agency: Agency, data: dict[str, Any], status: str) -> Case:
    """A case as the API makes it: opened (a new case is `open`), then moved on to `status`."""
    case = case_create(agency=agency, actor=None, data=data)
    return case if status == CaseStatus.OPEN else case_update(case=case, actor=None, data={"status": status})


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

    def count(self, label: str, created: bool, before: Any, after: Any) -> None:
        if created or before != after:
            (self.created if created else self.updated)[label] += 1

    def refs(self, code: str, data: dict[str, Any], *entities: str) -> dict[str, Any]:
        """`data` with the records it names by key (the entities of fields `entities`, cases, a licence)."""
        missing = [data[name] for name in entities if data.get(name) and (code, data[name]) not in self.entities]
        if missing:
            raise CommandError(f"demo data names {missing}, which {code}'s master index does not hold")
        out = {**data, **{name: self.entities[code, data[name]] for name in entities if data.get(name)}}
        if "commodity" in out:
            out["commodity_id"] = out.pop("commodity")
        if out.get("case"):
            out["case"] = self.cases[out["case"]]
        if "cases" in out:
            out["cases"] = [self.cases[key] for key in out["cases"]]
        if out.get("licence"):
            out["licence"] = self.licences[code, out["licence"]]
        return out

    def run(self) -> None:
        with transaction.atomic():
            self.accounts()
            self.load("persons", Entity, person_create, ("source", "source_id"))
            self.load("organizations", Entity, organization_create, ("source", "source_id"))
            self.story()
            self.load("links", Link, link_create, ("provenance_source", "provenance_id"), "source", "target")
            self.load("licences", Licence, licence_create, ("number",), "holder", "end_user")
            self.load("shipments", Shipment, shipment_create, ("source", "source_id"), *PARTY_FIELDS)
            self.load("prosecutions", Prosecution, prosecution_create, ("defendant",), "defendant")
            self.load("background_shipments", Shipment, shipment_create, ("source", "source_id"), *PARTY_FIELDS,
                      label="background shipments")

    def load(self, kind: str, model: type[models.Model], service: Callable[..., Any], key: tuple[str, ...],
             *entities: str, label: str = "") -> None:
        """The records of `kind`, each of an agency (`agency`: its code) or of a case (`case`: its key), found by
        `key` and their owner; `entities`: the fields naming entities of the owner's agency by `source_id`."""
        for r in read(kind):
            scope = "agency" if "agency" in r else "case"
            owner: Any = self.agencies[r.pop("agency")] if scope == "agency" else self.cases[r.pop("case")]
            code = owner.code if scope == "agency" else owner.agency.code
            data = typed(model, self.refs(code, r, *entities))
            if "legs" in data:
                data["legs"] = [typed(ShipmentLeg, leg) for leg in data["legs"]]
            obj = self.ensure(label or kind, model, {scope: owner, **{k: data[k] for k in key}}, service,
                              **{scope: owner}, actor=None, data=data)
            if model is Entity:
                self.entities[code, r["source_id"]] = obj
            elif model is Licence:
                self.licences[code, r["number"]] = obj

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
        for r in read("users"):
            before = User.objects.filter(username=r["username"]).values_list(*USER_FIELDS).first()
            try:
                user, created = user_ensure(
                    username=r["username"], agency=self.agencies.get(r["agency"]), role=r["role"],
                    unit=self.units.get((r["agency"], r["unit"])), clearance=r["clearance"], password=DEMO_PASSWORD,
                    is_staff=True, is_superuser=r["superuser"], is_active=True)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.count("users", created, before, tuple(getattr(user, name) for name in USER_FIELDS))
            self.users[user.username] = user

    def story(self) -> None:
        for r in read("cases"):
            agency, commodities = self.agencies[r["agency"]], list(Commodity.objects.filter(code__in=r["commodities"]))
            if len(commodities) != len(r["commodities"]):
                raise CommandError(f"commodities {r['commodities']} are not all seeded; run migrate first")
            data = {**typed(Case, {k: r[k] for k in ("title", "summary", "priority", "classification", "opened_on",
                                                     "tags")}),
                    "unit": self.units[agency.code, r["unit"]], "lead": self.users[r["lead"]],
                    "members": [self.users[name] for name in r["members"]], "commodities": commodities}
            self.cases[r["key"]] = self.ensure("cases", Case, {"agency": agency, "title": r["title"]}, open_case,
                                               agency=agency, data=data, status=r["status"])
        self.load("parties", CaseParty, party_add, ("entity",), "entity", label="case parties")
        for r in read("notes"):
            case, author = self.cases[r["case"]], self.users[r["author"]]
            self.ensure("notes", Note, {"case": case, "author": author, "body": r["body"]}, note_create, case=case,
                        actor=author, data={"body": r["body"]})
        for r in read("shares"):
            case, agency = self.cases[r["case"]], self.agencies[r["agency"]]
            data = {"agency": agency, "unit": self.units.get((agency.code, r["unit"])), "access": r["access"]}
            self.ensure("case shares", CaseShare, {"case": case, "agency": agency, "unit": data["unit"]}, share_create,
                        case=case, actor=self.users[r["shared_by"]], data=data)


class Command(BaseCommand):
    help = "Load the demo data set (fictional): two agencies, their users, three cases, background shipments."

    def handle(self, *args: Any, **options: Any) -> None:
        loader, write = Loader(), self.stdout.write
        loader.run()
        done = "; ".join(f"{verb} " + ", ".join(f"{n} {label}" for label, n in counts.items())
                         for verb, counts in (("created", loader.created), ("updated", loader.updated)) if counts)
        write(self.style.SUCCESS(f"Demo data loaded (all names fictional): {done}." if done else
                                 "Demo data already loaded: nothing changed (all names fictional)."))
        write("\nAgencies:")
        for code, agency in loader.agencies.items():
            units = ", ".join(u for (a, u) in loader.units if a == code and u)
            write(f"  {code}  {agency.name} (units: {units}; contact: {agency.contact})")
        write(f"\nUsers (password for all: {DEMO_PASSWORD}):")
        groups: dict[str, list[str]] = {}
        for u in loader.users.values():
            group = f"{u.agency.code}/{u.unit.code}" if u.agency and u.unit else u.username
            groups.setdefault(group, []).append("superuser, no agency" if u.is_superuser else u.username)
        write("\n".join(f"  {group}: {', '.join(names)}" for group, names in groups.items()))
        write("\nCases:")
        for case in loader.cases.values():
            arrested = case.parties.filter(custody_status=CustodyStatus.ARRESTED).count()
            shared = ", ".join(f"{s.agency.code} ({s.access})" for s in case.shares.filter(archived=False))
            extra = (f"; {arrested} arrested" if arrested else "") + (f"; shared with {shared}" if shared else "")
            write(f"  {case.reference}  {case.title} [{case.classification}, {case.status}{extra}]\n"
                  f"      {case.shipments.count()} shipments, {case.prosecutions.count()} prosecutions, "
                  f"{case.links.count()} links")
        background = Shipment.objects.filter(source=BACKGROUND_SOURCE).count()
        agencies = ", ".join(dict.fromkeys(r["agency"] for r in read("background_shipments")))
        write(f"\nBackground: {background} shipments (source {BACKGROUND_SOURCE!r}) in {agencies}.")
        write("\nAn API token:\n  python manage.py issue_token demo-investigator\n"
              '  curl -H "Authorization: Token <key>" http://127.0.0.1:8000/api/v1/cases/')
