"""Plain builders for test data; they write through the ORM, as a clerk's earlier work would have."""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client

from accounts.models import Agency, ApiToken, Unit, User
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from cases.services import case_next_reference
from entities.models import Organization, Person

_seq = itertools.count(1)

PASSWORD = "correct horse battery"  # every factory user's


def admin_client(user) -> Client:
    """A browser client signed in to the admin as `user` (made staff)."""
    user.is_staff = True
    user.save()
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def agency(code: str, name: str | None = None) -> Agency:
    obj, _ = Agency.objects.get_or_create(code=code, defaults={"name": name or f"{code} bureau",
                                                               "contact": f"{code} duty desk"})
    return obj


def unit(agency_obj: Agency, code: str) -> Unit:
    obj, _ = Unit.objects.get_or_create(agency=agency_obj, code=code, defaults={"name": f"Unit {code}"})
    return obj


def user(agency_obj: Agency | None, role: str, unit_obj: Unit | None = None, clearance: str = "secret",
         username: str | None = None, **extra: Any) -> User:
    username = username or f"{role}-{next(_seq)}"
    obj = User.objects.create(username=username, agency=agency_obj, unit=unit_obj, role=role,
                              clearance=clearance, **extra)
    obj.set_password(PASSWORD)
    obj.save()
    return obj


def token(user_obj: User) -> str:
    return ApiToken.issue(user_obj)[1]


def case(agency_obj: Agency, unit_obj: Unit | None = None, classification: str = "restricted",
         lead: User | None = None, members: tuple[User, ...] = (), commodities: tuple[str, ...] = (),
         **extra: Any) -> Case:
    obj = Case.objects.create(agency=agency_obj, unit=unit_obj, classification=classification, lead=lead,
                              reference=case_next_reference(agency=agency_obj),
                              title=extra.pop("title", f"Case {next(_seq)}"), **extra)
    if members:
        obj.members.set(members)
    if commodities:
        obj.commodities.set(list(Commodity.objects.filter(pk__in=commodities)))
    return obj


def person(agency_obj: Agency, name: str | None = None, **extra: Any) -> Person:
    return Person.objects.create(agency=agency_obj, name=name or f"Person {next(_seq)}", **extra)


def organization(agency_obj: Agency, name: str | None = None, **extra: Any) -> Organization:
    return Organization.objects.create(agency=agency_obj, name=name or f"Company {next(_seq)}", **extra)


def party(case_obj: Case, entity: Person | Organization, role: str = "suspect", **extra: Any) -> CaseParty:
    return CaseParty.objects.create(case=case_obj, role=role, entity=entity, **extra)


def note(case_obj: Case, author: User, body: str = "A note") -> Note:
    return Note.objects.create(case=case_obj, author=author, body=body)


def share(case_obj: Case, agency_obj: Agency, access: str = "read", unit_obj: Unit | None = None,
          by: User | None = None) -> CaseShare:
    by = by or User.objects.filter(agency=case_obj.agency).first() or user(case_obj.agency, "supervisor")
    return CaseShare.objects.create(case=case_obj, agency=agency_obj, unit=unit_obj, access=access,
                                    shared_by=by)


def licence(agency_obj: Agency, holder: Person | Organization | None = None, commodity: str = "antimony",
            **extra: Any) -> Any:
    from shipments.models import Licence

    return Licence.objects.create(agency=agency_obj, number=extra.pop("number", f"LIC-{next(_seq)}"),
                                  holder=holder or organization(agency_obj), commodity_id=commodity, **extra)


def shipment(agency_obj: Agency, legs: tuple[dict[str, Any], ...] = (), cases: tuple[Case, ...] = (),
             **extra: Any) -> Any:
    """A shipment with its legs (dicts of ShipmentLeg fields, in order) and derived transit countries."""
    from shipments.models import Shipment, ShipmentLeg

    obj = Shipment(agency=agency_obj, reference=extra.pop("reference", f"BL-{next(_seq)}"), **extra)
    if legs:
        obj.derive_from_legs(list(legs))
    obj.save()
    ShipmentLeg.objects.bulk_create(ShipmentLeg(shipment=obj, seq=i, **leg) for i, leg in enumerate(legs, 1))
    if cases:
        obj.cases.set(cases)
    return obj


def link(agency_obj: Agency, source: Any, target: Any, kind: str = "associate", **extra: Any) -> Any:
    from entities.models import Link

    return Link.objects.create(agency=agency_obj, source=source, target=target, kind=kind, **extra)


def prosecution(case_obj: Case, defendant: Person | Organization, charges: tuple[tuple[str, str], ...] = (),
                **extra: Any) -> Any:
    """A prosecution with its charges, given as (statute, description) in order."""
    from cases.models import Charge, Prosecution

    obj = Prosecution.objects.create(case=case_obj, defendant=defendant, **extra)
    Charge.objects.bulk_create(Charge(prosecution=obj, seq=i, statute=statute, description=description)
                               for i, (statute, description) in enumerate(charges, 1))
    return obj


def evidence(case_obj: Case, by: User, content: bytes = b"exhibit", name: str = "exhibit.txt", **extra: Any) -> Any:
    """Evidence stored through the service, custody opened (tests point MEDIA_ROOT at a temporary directory)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cases.services import evidence_create

    return evidence_create(case=case_obj, upload=SimpleUploadedFile(name, content, "text/plain"),
                           title=extra.pop("title", f"Exhibit {next(_seq)}"), kind=extra.pop("kind", "document"),
                           actor=by)


def match(left: Any, right: Any, score: float = 0.9, status: str = "pending", **extra: Any) -> Any:
    """A cross-referencing match between two entities (put in the pair's order), as a worker would have found it."""
    from xref.models import Match

    left, right = sorted((left, right), key=lambda entity: entity.pk)
    extra.setdefault("features", {"name": 0.94, "birth_date": 1.0})
    extra.setdefault("explanation", f"name 0.94 ({left.name} ↔ {right.name}), same birth date")
    return Match.objects.create(left=left, right=right, left_agency_id=left.agency_id,
                                right_agency_id=right.agency_id, entity_type=left.type, score=score, status=status,
                                **extra)


def confirmed(left: Any, right: Any, by: User | None = None, **extra: Any) -> Any:
    """A confirmed match and the identity cluster it makes (each entity in no cluster before)."""
    import uuid

    from django.utils import timezone

    from xref.models import IdentityMember

    obj = match(left, right, status="confirmed", decided_by=by, decided_at=timezone.now(), **extra)
    cluster = uuid.uuid4()
    IdentityMember.objects.bulk_create([IdentityMember(entity_id=left.pk, cluster=cluster),
                                        IdentityMember(entity_id=right.pk, cluster=cluster)])
    return obj


def hits(mine: Any, theirs: Any, score: float = 0.9, **extra: Any) -> Any:
    """A match between records of two agencies and its deconfliction hit on each side, as cross-referencing makes
    them (`xref.services.hits_sync`); returns the match."""
    from xref.services import hits_sync

    obj = match(mine, theirs, score=score, **extra)
    hits_sync([obj.pk])
    return obj


def run(agency_obj: Agency, by: User | None = None, **extra: Any) -> Any:
    from xref.models import XrefRun

    return XrefRun.objects.create(agency=agency_obj, created_by=by, **extra)


def alert(subject: Any, rule: str = "unlicensed_export", severity: str = "high", case: Case | None = None,
          related: tuple[dict[str, Any], ...] = (), explanation: str | None = None, **extra: Any) -> Any:
    """The alert `rule` raises on `subject` (a shipment, person or organisation), written as the rules write it
    (`alerts.services.settle`); `extra` then set on the row as stored (status, archived, …)."""
    from alerts.models import Alert
    from alerts.services import Finding, label_of, settle, subject_field

    finding = Finding(rule, severity, explanation or f"{rule} on {label_of(subject)}", list(related),
                      case_id=case.pk if case is not None else None)
    settle([subject], [rule], {subject.pk: [finding]})
    obj = Alert.objects.get(rule=rule, **{subject_field(subject): subject})
    if extra:
        Alert.objects.filter(pk=obj.pk).update(**extra)
        obj.refresh_from_db()
    return obj


def listed(agency_obj: Agency, name: str, source: str = "ofac-sdn", programmes: tuple[str, ...] = ("SDGT",),
           entity_type: str = "organization", **extra: Any) -> Any:
    """An entry of a watchlist (the list made if new): a listed person or organisation with its programmes."""
    from django.utils import timezone

    from entities.models import Entity
    from watchlists.models import Watchlist, WatchlistEntry

    watchlist, _ = Watchlist.objects.get_or_create(agency=agency_obj, source=source, defaults={"kind": "ofac_sdn"})
    entity = Entity.objects.create(agency=agency_obj, type=entity_type, name=name, lists=[source],
                                   topics=extra.pop("topics", ["sanction"]), **extra)
    WatchlistEntry.objects.create(watchlist=watchlist, entity=entity, programmes=list(programmes),
                                  listed_at=timezone.now())
    return entity


# --- records made through their services, as the admin's and the API's writes make them ----------------------


def group(name: str | None = None) -> Any:
    """A permission group (Django's own model, which no service of the project writes)."""
    from django.contrib.auth.models import Group

    return Group.objects.create(name=name or f"Group {next(_seq)}")


def commodity(code: str | None = None) -> Any:
    """A controlled commodity besides the seeded ones (the list is reference data, seeded without a service)."""
    from cases.models import Commodity

    code = code or f"mineral_{next(_seq)}"
    return Commodity.objects.create(code=code, name=code.replace("_", " ").title(), hs_codes=["811299"])


def api_token(owner: User) -> ApiToken:
    from accounts.services import token_issue

    return token_issue(user=owner)[0]


def opened_case(agency_obj: Agency, by: User, **data: Any) -> Case:
    """A case opened by `by` (in their unit, led by them) through `cases.services.case_create`."""
    from cases.services import case_create

    return case_create(agency=agency_obj, actor=by, data={"title": f"Case {next(_seq)}", **data})


def new_person(agency_obj: Agency, by: User | None = None, **data: Any) -> Person:
    from entities.services import person_create

    return person_create(agency=agency_obj, actor=by, data={"name": f"Person {next(_seq)}", **data})


def new_organization(agency_obj: Agency, by: User | None = None, **data: Any) -> Organization:
    from entities.services import organization_create

    return organization_create(agency=agency_obj, actor=by, data={"name": f"Company {next(_seq)}", **data})


def new_link(agency_obj: Agency, by: User | None = None, **data: Any) -> Any:
    from entities.services import link_create

    data.setdefault("source", new_person(agency_obj, by))
    data.setdefault("target", new_organization(agency_obj, by))
    return link_create(agency=agency_obj, actor=by, data={"kind": "employment", **data})


def new_shipment(agency_obj: Agency, by: User | None = None, legs: int = 1, **data: Any) -> Any:
    """A shipment with `legs` legs (CN → VN → … → AE) through `shipments.services.shipment_create`."""
    from shipments.services import shipment_create

    return shipment_create(agency=agency_obj, actor=by, data={
        "reference": f"BL-{next(_seq)}", "commodity_id": "antimony", "origin_country": "CN",
        "destination_country": "AE", "legs": route(legs), **data})


def route(legs: int) -> list[dict[str, Any]]:
    """`legs` legs of a route, one a week from 2026-03-02, through transit ports of their own."""
    import datetime

    countries = ["CN", *(["VN", "TH", "MY", "SG", "IN", "OM", "PK", "LK"][:legs - 1]), "AE"]
    start = datetime.date(2026, 3, 2)
    return [{"from_country": a, "to_country": b, "mode": "sea", "departed_on": start + datetime.timedelta(weeks=i)}
            for i, (a, b) in enumerate(itertools.pairwise(countries))]


def new_licence(agency_obj: Agency, by: User | None = None, **data: Any) -> Any:
    from shipments.services import licence_create

    data.setdefault("holder", new_organization(agency_obj, by))
    return licence_create(agency=agency_obj, actor=by, data={"number": f"LIC-{next(_seq)}",
                                                            "commodity_id": "antimony", **data})


def new_prosecution(case_obj: Case, by: User, charges: int = 1, **data: Any) -> Any:
    from cases.services import prosecution_create

    data.setdefault("defendant", new_person(case_obj.agency, by))
    return prosecution_create(case=case_obj, actor=by, data={
        "charges": [{"statute": f"Customs Law Art. {82 + i}", "description": "Smuggling"} for i in range(charges)],
        **data})


def xref_run(agency_obj: Agency, by: User | None = None) -> Any:
    """A queued cross-referencing run (its work is left in the outbox)."""
    from xref.services import run_create

    return run_create(agency=agency_obj, user=by)


def import_job(agency_obj: Agency, by: User, bad_rows: int = 0, good_rows: int = 0, source: str = "test") -> Any:
    """A persons import uploaded through `imports.services.job_create` and run: `good_rows` rows written and
    `bad_rows` rows refused, each with one error (a birth date that is not a date)."""
    import csv
    import io

    from django.core.files.base import ContentFile

    from imports.services import job_create, run_job

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["source_id", "name", "birth_date"])
    batch = next(_seq)
    for i in range(good_rows):
        writer.writerow([f"g{batch}-{i}", f"Imported Person {batch}-{i}", "1970-01-01"])
    for i in range(bad_rows):
        writer.writerow([f"b{batch}-{i}", f"Bad Row {batch}-{i}", "not-a-date"])
    upload = ContentFile(out.getvalue().encode(), name="persons.csv")
    job = job_create(agency=agency_obj, actor=by, upload=upload, kind="persons", source=source, run=False)
    return run_job(job.pk)
