"""Every page of the admin at a number of queries that does not grow with its rows.

Each model registered with the admin (`admin.site._registry`: a model registered later is covered, and fails
here until it has a maker below) is measured as a clerk meets it: its change list with a few rows and with many,
and the change form of a record with one row in each of its inlines and of one with several. The counts must be
equal. A change form's select lists must not grow with the records of the agency either (a relation field offered
as a list of every record is an autocomplete instead). Both as a superuser and, where the admin lets agency
users in, as an investigator.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.db.models import Model
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import Agency, Unit, User
from accounts.services import unit_ensure, user_ensure
from audit.models import AuditEvent
from cases import services as case_services
from cases.models import Case
from watchlists.models import Watchlist, WatchlistEntry
from xref.models import DeconflictionHit

from . import factories

FEW, MANY = 2, 20  # rows of a change list
ONE, SEVERAL = 1, 5  # rows of each inline of a change form


@dataclass
class Stage:
    a: Agency
    b: Agency
    a1: Unit
    investigator: User
    supervisor: User
    root: User
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def n(self) -> int:
        return next(self.seq)


@pytest.fixture
def stage(world, media) -> Stage:
    return Stage(a=world.a, b=world.b, a1=world.a1,
                 investigator=factories.user(world.a, "investigator", world.a1, is_staff=True),
                 supervisor=factories.user(world.a, "supervisor", world.a1, is_staff=True),
                 root=factories.user(None, "agency_admin", is_superuser=True, is_staff=True))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


# --- one record of each model, through its services; and one whose inlines hold `rows` rows each ---------------


def _case(s: Stage) -> Case:
    return factories.opened_case(s.a, s.investigator)


def _case_with(s: Stage, rows: int) -> Case:
    case = _case(s)
    for _ in range(rows):
        case_services.party_add(case=case, actor=s.investigator,
                                data={"entity": factories.new_person(s.a, s.investigator), "role": "suspect"})
        case_services.note_create(case=case, actor=s.investigator, data={"body": f"Note {s.n()}"})
        case_services.share_create(case=case, actor=s.supervisor,
                                   data={"agency": factories.agency(f"S{s.n():03d}"), "access": "read"})
    return case


def _evidence_with(s: Stage, rows: int) -> Any:
    from cases.services import evidence_record_download

    evidence = factories.evidence(_case(s), s.investigator)  # its custody opens with the upload
    for _ in range(rows - 1):
        evidence_record_download(evidence=evidence, actor=s.investigator)
    return evidence


def _shipment(s: Stage, legs: int = 1) -> Any:
    return factories.new_shipment(s.a, s.investigator, legs=legs,
                                  consignor=factories.new_organization(s.a, s.investigator),
                                  consignee=factories.new_organization(s.a, s.investigator),
                                  licence=factories.new_licence(s.a, s.investigator))


def _event(s: Stage) -> AuditEvent:
    person = factories.new_person(s.a, s.investigator)
    return AuditEvent.objects.get(object_id=str(person.pk), action="create")


def _hit(s: Stage) -> DeconflictionHit:
    mine = factories.new_person(s.a, s.investigator)
    factories.hits(mine, factories.new_person(s.b))
    return DeconflictionHit.objects.get(entity=mine)


def _watchlist(s: Stage) -> Watchlist:
    source = f"list-{s.n()}"
    factories.listed(s.a, f"Listed Trading {s.n()}", source=source)
    return Watchlist.objects.get(agency=s.a, source=source)


def _entry(s: Stage) -> WatchlistEntry:
    return WatchlistEntry.objects.get(entity=factories.listed(s.a, f"Listed Trading {s.n()}"))


def _alert(s: Stage) -> Any:
    related = ({"type": "person", "id": str(factories.new_person(s.a).pk), "label": f"Kin {s.n()}"},)
    return factories.alert(_shipment(s), case=_case(s), related=related)


MAKERS: dict[str, Callable[[Stage], Model]] = {
    "auth.group": lambda s: factories.group(),
    "accounts.agency": lambda s: factories.agency(f"AG{s.n():03d}"),
    "accounts.unit": lambda s: unit_ensure(agency=s.a, code=f"unit{s.n()}", name="Unit")[0],
    "accounts.user": lambda s: user_ensure(username=f"clerk-{s.n()}", agency=s.a, role="investigator",
                                           unit=s.a1)[0],
    "accounts.apitoken": lambda s: factories.api_token(s.investigator),
    "audit.auditevent": _event,
    "entities.entity": lambda s: factories.new_person(s.a, s.investigator),
    "entities.person": lambda s: factories.new_person(s.a, s.investigator, nationalities=["CN"]),
    "entities.organization": lambda s: factories.new_organization(s.a, s.investigator, jurisdiction="HK"),
    "entities.link": lambda s: factories.new_link(s.a, s.investigator, case=_case(s)),
    "cases.case": _case,
    "cases.commodity": lambda s: factories.commodity(),
    "cases.prosecution": lambda s: factories.new_prosecution(_case(s), s.investigator),
    "cases.evidence": lambda s: _evidence_with(s, 1),
    "shipments.shipment": _shipment,
    "shipments.licence": lambda s: factories.new_licence(s.a, s.investigator,
                                                         end_user=factories.new_organization(s.a, s.investigator)),
    "imports.importjob": lambda s: factories.import_job(s.a, s.investigator, good_rows=1, bad_rows=1),
    "xref.match": lambda s: factories.match(factories.new_person(s.a), factories.new_person(s.a)),
    "xref.xrefrun": lambda s: factories.xref_run(s.a, s.supervisor),
    "xref.deconflictionhit": _hit,
    "watchlists.watchlist": _watchlist,
    "watchlists.watchlistentry": _entry,
    "alerts.alert": _alert,
}

# A record whose every inline holds `rows` rows (the models with inlines; the others have none to grow).
WITH_ROWS: dict[str, Callable[[Stage, int], Model]] = {
    "cases.case": _case_with,
    "cases.prosecution": lambda s, rows: factories.new_prosecution(_case(s), s.investigator, charges=rows),
    "cases.evidence": _evidence_with,
    "shipments.shipment": lambda s, rows: _shipment(s, legs=rows),
    "imports.importjob": lambda s, rows: factories.import_job(s.a, s.investigator, bad_rows=rows),
}

REGISTERED = sorted(model._meta.label_lower for model in admin.site._registry)

# The pages an investigator (a clerk of an agency) may open; the others are the superuser's and admins'.
INVESTIGATOR_PAGES = {
    "accounts.agency", "accounts.unit", "accounts.user", "entities.entity", "entities.person",
    "entities.organization", "entities.link",
    "cases.case", "cases.commodity", "cases.prosecution", "cases.evidence", "shipments.shipment",
    "shipments.licence", "imports.importjob", "xref.match", "xref.xrefrun", "xref.deconflictionhit",
    "watchlists.watchlist", "watchlists.watchlistentry", "alerts.alert",
}


# --- measuring ---------------------------------------------------------------------------------------------


def _model_admin(label: str) -> admin.ModelAdmin:
    return next(a for m, a in admin.site._registry.items() if m._meta.label_lower == label)


def _may_view(user: User, label: str, obj: Model | None = None) -> bool:
    request = RequestFactory().get("/admin/")
    request.user = user
    return _model_admin(label).has_view_permission(request, obj)


@dataclass
class Page:
    queries: int
    options: int  # <option> elements: the select lists' size
    response: Any


def _get(client: Client, url: str, status: int = 200) -> Page:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == status, (url, response.content.decode()[:2000])
    body = response.content.decode()
    return Page(len(captured), len(re.findall(r"<option\b", body)), response)


def _url(label: str, obj: Model | None = None) -> str:
    app, model = label.split(".")
    return f"/admin/{app}/{model}/" + (f"{obj.pk}/change/" if obj is not None else "")


def _user(s: Stage, who: str) -> User:
    return s.root if who == "superuser" else s.investigator


def _viewers(s: Stage, label: str) -> dict[str, Client]:
    users = {"superuser": s.root}
    if label in INVESTIGATOR_PAGES:
        users["investigator"] = s.investigator
    return {who: factories.admin_client(user) for who, user in users.items()}


def test_every_registered_model_has_a_maker_and_the_investigators_pages_are_as_listed(stage):
    assert set(REGISTERED) == set(MAKERS)
    assert {label for label in REGISTERED if _may_view(stage.investigator, label)} == INVESTIGATOR_PAGES


@pytest.mark.parametrize("label", REGISTERED)
def test_a_change_list_takes_as_many_queries_for_many_rows_as_for_few(stage, label):
    make = MAKERS[label]
    for _ in range(FEW):
        make(stage)
    clients = _viewers(stage, label)
    few = {}
    for who, client in clients.items():
        client.get(_url(label))  # warm-up: caches filled once a process
        few[who] = _get(client, _url(label))
    made = [make(stage) for _ in range(MANY - FEW)]
    for who, client in clients.items():
        many = _get(client, _url(label))
        cl, before = many.response.context["cl"], few[who].response.context["cl"].result_count
        if _may_view(_user(stage, who), label, made[-1]):
            assert cl.result_count >= before + MANY - FEW, (label, who)  # makers may add more rows than one
        else:
            assert cl.result_count == before, (label, who)  # an investigator sees only their agency's own
        assert len(cl.result_list) == min(cl.result_count, cl.list_per_page), (label, who)
        assert many.queries == few[who].queries, (label, who)


@pytest.mark.parametrize("label", REGISTERED)
def test_a_change_form_takes_as_many_queries_for_many_inline_rows_and_records_as_for_few(stage, label):
    with_rows = WITH_ROWS.get(label, lambda s, rows: MAKERS[label](s))
    one, several = with_rows(stage, ONE), with_rows(stage, SEVERAL)
    status = 302 if label == "entities.entity" else 200  # an entity is edited on its person's or company's page
    clients = {who: client for who, client in _viewers(stage, label).items()
               if _may_view(_user(stage, who), label, one)}
    assert "superuser" in clients
    first = {}
    for who, client in clients.items():
        client.get(_url(label, one))  # warm-up
        first[who] = _get(client, _url(label, one), status)
        assert _get(client, _url(label, several), status).queries == first[who].queries, (label, who)
    for _ in range(MANY):
        MAKERS[label](stage)
    for who, client in clients.items():
        again = _get(client, _url(label, one), status)
        assert again.queries == first[who].queries, (label, who)
        assert again.options == first[who].options, (label, who)


# The heaviest pages, at the exact number of queries they take (a case's form took 88 and more, growing with its
# parties, notes and shares; the users' list 33 for two users and 87 for twenty).
HEAVIEST = {
    ("accounts.user", "superuser"): 20,
    ("cases.case", "superuser"): 36,
    ("cases.case", "investigator"): 36,
    ("imports.importjob", "investigator"): 19,
}


def test_the_heaviest_pages_take_the_queries_recorded(stage):
    measured = {}
    for label, who in HEAVIEST:
        client = _viewers(stage, label)[who]
        if label == "accounts.user":
            for _ in range(MANY):
                MAKERS[label](stage)
            url = _url(label)
        else:
            url = _url(label, WITH_ROWS[label](stage, SEVERAL))
        client.get(url)  # warm-up
        measured[label, who] = _get(client, url).queries
    assert measured == HEAVIEST
