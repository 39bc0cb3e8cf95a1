"""Access matrix over the master index and what hangs off cases (issue 3), after tests/test_access_matrix.py.

Each cell is one test (list membership: one test per caller and list, which shows every relation at once); its
expected outcome is read off the tables below, meant to be checked line by line against API.md § Access. Five
matrices:

- caller x an agency record's relation to the caller x operation (list membership, retrieve, PATCH, DELETE), for
  persons, organisations, links, shipments and licences;
- caller x resource: creating a record of the master index;
- caller x the case's relation to the caller x operation, for prosecutions and evidence (case-owned records follow
  their case; the case relations and their visibility are tests/test_access_matrix.py's own tables);
- caller x search query: the ids found are exactly the visible records the query names;
- caller x graph query: every node is a record the caller sees, and the records it must show are there.

Then references across agencies: a record naming another agency's record is a 400 on that field, even where the
caller sees the other record through a shared case.

The general rules are tests/test_access_matrix.py's: anonymous → 401; a record the caller does not see → 404 (never
403) and absent from lists; a record the caller sees but may not change this way → 403, changing nothing; otherwise
the operation's success code. Where API.md is open, a comment marked "reading" says which reading a table takes.

The data is built once per module inside a transaction rolled back at the end; each test runs in a savepoint of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Model

from cases.models import Case, CustodyEntry, Evidence, Prosecution
from entities.models import Entity, Link, Person
from shipments.models import Licence, Shipment

from . import factories
from .access_routes import Route
from .stages import built_once
from .test_access_matrix import (
    ACCESS,
    ACCESS_COLUMN,
    CALLERS,
    EVERYONE,
    INVESTIGATORS,
    NOBODY,
    RELATIONS,
    ROLES,
    SEES,
    N,
    Stage,
    Y,
    base_stage,
    listed_ids,
)

pytestmark = pytest.mark.django_db

ANALYSTS = frozenset({"analyst", *INVESTIGATORS})

# --- agency records: how each stands to the caller -----------------------------------------
# Every caller sits in agency SSB, unit a1. An agency record is owned by one agency and linked to one case (a key of
# tests/test_access_matrix.py's RELATIONS): persons and organisations as parties of it, a link through its `case`,
# a shipment through its `cases`, a licence through the cases of a shipment that carries it.
#   relation:            (owner, the case it is linked through)
RECORD_RELATIONS: dict[str, tuple[str, str]] = {
    # reading: an agency record is its agency's whatever the case: an own record linked to a case of another unit
    # (one a viewer does not see) is still visible to every user of the agency.
    "own":               ("a", "other_unit"),
    "other_agency":      ("b", "other_agency"),
    "shared_read":       ("b", "shared_read"),
    "shared_write":      ("b", "shared_write"),
    "shared_other_unit": ("b", "shared_other_unit"),  # shared with SSB's unit a2 only
}

# API.md § Access, Agency records: "visible to every user of the owning agency; to another agency only where linked
# to a case shared with it, read-only".
#                      viewer analyst investigator supervisor auditor agency_admin
RECORD_SEES: dict[str, tuple[bool, ...]] = {
    "own":               (Y,    Y,      Y,           Y,         Y,      Y),
    "other_agency":      (N,    N,      N,           N,         N,      N),
    "shared_read":       (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_write":      (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_other_unit": (N,    N,      N,           N,         N,      N),
}
# A read-write share opens the case's content to writing, not the other agency's master index.
RECORD_ACCESS = {"own": "own", "shared_read": "shared", "shared_write": "shared",
                 "other_agency": "none", "shared_other_unit": "none"}

RECORD_RESOURCES = ("persons", "organizations", "links", "shipments", "licences")
# API.md § Access, Writes: analyst writes links (not persons, organisations, shipments, licences); investigator and
# up "everything of their agency's master index"; viewer and auditor nothing.
RECORD_WRITERS: dict[str, frozenset[str]] = {
    "persons":       INVESTIGATORS,
    "organizations": INVESTIGATORS,
    "links":         ANALYSTS,
    "shipments":     INVESTIGATORS,
    "licences":      INVESTIGATORS,
    "alerts":        ANALYSTS,  # "analyst: … alert status" (tests/test_access_matrix_alerts.py)
}
WRITERS = frozenset({"<the resource's RECORD_WRITERS>"})  # a placeholder in the table below

#   op          own agency's record   another agency's, seen through a shared case   success
RECORD_RULES: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
    "list":     (EVERYONE,             EVERYONE,                                      200),  # test_record_list
    "retrieve": (EVERYONE,             EVERYONE,                                      200),
    "patch":    (WRITERS,              NOBODY,                                        200),
    # reading: archiving a record of the master index is editing it (as archiving a party or a note is editing the
    # case's parties or notes in tests/test_access_matrix.py); the supervisors' "archiving" is the case's own.
    "archive":  (WRITERS,              NOBODY,                                        204),
    "put":      (WRITERS,              NOBODY,                                        200),  # a whole record: put_body
}
RECORD_COLUMN = {"own": 0, "shared": 1}

RECORD_MODELS: dict[str, type[Model]] = {"persons": Entity, "organizations": Entity, "links": Link,
                                         "shipments": Shipment, "licences": Licence}
RECORD_PATCH: dict[str, dict[str, Any]] = {
    "persons":       {"notes": "Seen at the border crossing."},
    "organizations": {"notes": "Registered agent changed."},
    "links":         {"description": "Signs the company's bills of lading."},
    "shipments":     {"seizure_location": "Haiphong port"},
    "licences":      {"destination_country": "VN"},
}


def record_expected(caller: str, resource: str, relation: str, op: str) -> int:
    success = RECORD_RULES[op][2]
    if caller == "anonymous":
        return 401
    if caller == "superuser":  # "Superusers see and do everything."
        return success
    if not RECORD_SEES[relation][ROLES.index(caller)]:
        return 404
    allowed = RECORD_RULES[op][RECORD_COLUMN[RECORD_ACCESS[relation]]]
    assert isinstance(allowed, frozenset)  # one of the two role columns, not the status
    allowed = RECORD_WRITERS[resource] if allowed is WRITERS else allowed
    return success if caller in allowed else 403


def create_expected(caller: str, resource: str) -> int:
    if caller == "anonymous":
        return 401
    return 201 if caller == "superuser" or caller in RECORD_WRITERS[resource] else 403


# --- case-owned records: prosecutions and evidence -------------------------------------------
# The case relations of tests/test_access_matrix.py (its SEES says who sees the case, its ACCESS what the caller's
# agency holds on it); "lead" and "member" are cases' own business, covered there.
CHILD_RELATIONS = ("own_unit", "other_unit", "other_agency", "shared_read", "shared_write")

# API.md § Access: case-owned records follow their case; investigators write "the cases they see (… prosecutions,
# notes, evidence …)"; a read-write share lets the other agency write the case's content.
#   op           own agency's case  shared read-write  shared read-only  success
CHILD_RULES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], int]] = {
    "list":     (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "retrieve": (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "download": (EVERYONE,          EVERYONE,          EVERYONE,         200),  # evidence only
    "create":   (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           201),
    "patch":    (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),
    "archive":  (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           204),
    "put":      (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),
}
CHILD_OPS: dict[str, tuple[str, ...]] = {
    "prosecutions": ("list", "retrieve", "create", "patch", "put", "archive"),
    "evidence":     ("list", "retrieve", "download", "create", "patch", "put", "archive"),
}


def child_expected(caller: str, resource: str, relation: str, op: str) -> int:
    success = CHILD_RULES[op][3]
    if caller == "anonymous":
        return 401
    if caller == "superuser":
        return success
    sees = SEES[relation][ROLES.index(caller)]
    # reading: a prosecution names its case in the body (`POST /prosecutions/ {"case": id}`), so a case the caller
    # may not add prosecutions to — unseen or read-only — is a 400 on `case`, as the committed
    # tests/test_prosecutions.py has it; a role that may create no prosecution at all is refused first (403).
    case_in_body = resource == "prosecutions" and op == "create"
    if case_in_body and caller not in INVESTIGATORS:
        return 403
    if not sees:
        return 400 if case_in_body else 404
    allowed = CHILD_RULES[op][ACCESS_COLUMN[ACCESS[relation]]]
    assert isinstance(allowed, frozenset)  # one of the three role columns, not the status
    if caller in allowed:
        return success
    return 400 if case_in_body else 403


# The routes (tests/access_routes.py) this module exercises: by an operation of RECORD_RULES for the master index's
# details (test_record_matrix crosses it with every caller and RECORD_RELATIONS), of CHILD_RULES for the case-owned
# records (test_case_owned_matrix: every caller and CHILD_RELATIONS), or by the test named.
RECORD_ROUTE_NAMES = {"persons": "person", "organizations": "organization", "links": "link", "shipments": "shipment",
                      "licences": "licence"}
ROUTES: dict[Route, str] = {
    **{(f"{name}-list", "GET"): "test_record_list" for name in RECORD_ROUTE_NAMES.values()},
    **{(f"{name}-list", "POST"): "test_create_record" for name in RECORD_ROUTE_NAMES.values()},
    **{(f"{name}-detail", method): op for name in RECORD_ROUTE_NAMES.values()
       for method, op in (("GET", "retrieve"), ("PATCH", "patch"), ("PUT", "put"), ("DELETE", "archive"))},
    ("prosecution-list", "GET"): "test_prosecution_list", ("prosecution-list", "POST"): "create",
    ("case-evidence-list", "GET"): "list", ("case-evidence-list", "POST"): "create",
    **{(f"{name}-detail", method): op for name in ("prosecution", "case-evidence")
       for method, op in (("GET", "retrieve"), ("PATCH", "patch"), ("PUT", "put"), ("DELETE", "archive"))},
    ("case-evidence-download", "GET"): "download",
    ("search", "GET"): "test_search", ("graph", "GET"): "test_graph", ("graph-path", "GET"): "test_graph",
}


# --- the stage -------------------------------------------------------------------------------


@dataclass
class IndexStage(Stage):
    by_relation: dict[str, Case] = field(default_factory=dict)  # one case per relation, the same for every caller
    records: dict[tuple[str, str], Any] = field(default_factory=dict)  # (resource, relation) → record
    children: dict[tuple[str, str], Any] = field(default_factory=dict)  # (resource, case relation) → record
    extra: dict[str, Any] = field(default_factory=dict)  # the shared records' hidden neighbours
    # Every record and case search or the graph may show: id → ("record", record relation) or ("case", relation).
    universe: dict[str, tuple[str, str]] = field(default_factory=dict)

    def tag(self, obj: Any, kind: str, relation: str) -> None:
        self.universe[str(obj.pk)] = (kind, relation)

    def sees(self, caller: str, pk: str) -> bool:
        if caller == "superuser":
            return True
        kind, relation = self.universe[pk]
        table = RECORD_SEES if kind == "record" else SEES
        return table[relation][ROLES.index(caller)]


# The case each case relation's party person counts as linked through, as a record relation.
CASE_PERSON_RELATION = {"own_unit": "own", "other_unit": "own", "other_agency": "other_agency",
                        "shared_read": "shared_read", "shared_write": "shared_write",
                        "shared_other_unit": "shared_other_unit"}


def build_stage() -> IndexStage:
    stage = base_stage(IndexStage)

    for relation in (*CHILD_RELATIONS, "shared_other_unit"):
        unit, _, shared = RELATIONS[relation]
        case = stage.add_case(unit, shared=shared)
        stage.by_relation[relation] = case
        stage.tag(case, "case", relation)
        stage.universe[stage.refs[case.pk]["person"]] = ("record", CASE_PERSON_RELATION[relation])

    for relation, (owner, via) in RECORD_RELATIONS.items():
        agency, case = stage.agencies[owner], stage.by_relation[via]
        person = factories.person(agency, f"Matrixperson {relation}")
        org = factories.organization(agency, f"Matrixorg {relation} Trading Co., Ltd.")
        factories.party(case, person)
        factories.party(case, org, role="shell_company")
        link = factories.link(agency, person, org, kind="employment", case=case)
        licence = factories.licence(agency, holder=org, number=f"LIC-MX-{relation}")
        shipment = factories.shipment(
            agency, reference=f"MXS-{relation}", commodity_id="antimony", consignor=person, consignee=org,
            licence=licence, cases=(case,), origin_country="CN", destination_country="US",
            legs=({"from_country": "CN", "to_country": "VN", "mode": "road"},
                  {"from_country": "VN", "to_country": "US", "mode": "sea"}),
        )
        for resource, obj in (("persons", person), ("organizations", org), ("links", link),
                              ("shipments", shipment), ("licences", licence)):
            stage.records[resource, relation] = obj
            stage.tag(obj, "record", relation)

    # The records ASB shares with SSB lead on to ASB records it does not: a person on no shared case (joined to the
    # shared person by a link without a case, and by one in an unshared case), an unshared shipment the shared
    # person sent, the shared person as a party of the unshared case. Search and the graph must stop at the share.
    theirs, hidden_case = stage.agencies["b"], stage.by_relation["other_agency"]
    shared_person = stage.records["persons", "shared_read"]
    stranger = factories.person(theirs, "Matrixperson stranger")
    factories.party(hidden_case, stranger)
    factories.party(hidden_case, shared_person, role="courier")
    hidden_links = (factories.link(theirs, shared_person, stranger, kind="family", subtype="sibling"),
                    factories.link(theirs, shared_person, stranger, kind="associate", case=hidden_case))
    hidden_shipment = factories.shipment(theirs, reference="MXS-hidden", consignor=shared_person,
                                         cases=(hidden_case,))
    stage.extra.update(stranger=stranger, hidden_shipment=hidden_shipment, hidden_links=hidden_links)
    for obj in (stranger, hidden_shipment, *hidden_links):
        stage.tag(obj, "record", "other_agency")

    for relation in CHILD_RELATIONS:
        case = stage.by_relation[relation]
        uploader = stage.users[f"sup-{case.agency.code.lower()}"]
        defendant = Person.objects.get(pk=stage.refs[case.pk]["person"])
        stage.children["prosecutions", relation] = factories.prosecution(
            case, defendant, charges=(("Criminal Law art. 151", "Smuggling of controlled metals"),))
        stage.children["evidence", relation] = factories.evidence(case, uploader,
                                                                  content=b"manifest " + relation.encode())
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker, tmp_path_factory):
    with built_once(django_db_blocker, build_stage, str(tmp_path_factory.mktemp("media"))) as built:
        yield built


def ref(entity: Any) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


def fingerprint(obj: Any) -> tuple:
    """What a refused write must leave as it was."""
    return type(obj)._default_manager.values_list("version", "archived", "updated_at").get(pk=obj.pk)


# --- the matrix: caller x agency record's relation x operation ----------------------------------

# List membership is one cell per caller and resource below (one request shows every relation at once).
RECORD_MATRIX = [pytest.param(caller, resource, relation, op, id=f"{caller}-{resource}-{relation}-{op}")
                 for caller in CALLERS for resource in RECORD_RESOURCES for relation in RECORD_RELATIONS
                 for op in RECORD_RULES if op != "list"]


@pytest.mark.parametrize(("caller", "resource", "relation", "op"), RECORD_MATRIX)
def test_record_matrix(stage, caller, resource, relation, op):
    obj = stage.records[resource, relation]
    want = record_expected(caller, resource, relation, op)
    client = stage.client(caller)
    url = f"/api/v1/{resource}/{obj.pk}/"
    before = fingerprint(obj)

    if op == "retrieve":
        response = client.get(url)
    elif op == "patch":
        response = client.patch(url, RECORD_PATCH[resource], format="json")
    elif op == "put":
        response = client.put(url, put_body(resource, obj), format="json")
    else:
        response = client.delete(url)

    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400:
        assert "detail" in response.json()
    if op == "retrieve" and want == 200:
        assert response.json()["id"] == str(obj.pk)
        assert response["ETag"] == f'"{before[0]}"'
    if op in ("patch", "put") and want == 200:
        assert fingerprint(obj)[0] == before[0] + 1
    if op == "archive" and want == 204:
        assert type(obj)._default_manager.get(pk=obj.pk).archived
    if want >= 400 and op != "retrieve":
        assert fingerprint(obj) == before, "a refused write changed something"


@pytest.mark.parametrize("resource", RECORD_RESOURCES)
@pytest.mark.parametrize("caller", CALLERS)
def test_record_list(stage, caller, resource):
    """The whole list, unfiltered: each of the matrix's records is in it exactly when the caller sees it.

    A list never refuses; it leaves out what the caller may not see."""
    response = stage.client(caller).get(f"/api/v1/{resource}/", {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    listed = {relation: str(stage.records[resource, relation].pk) in ids for relation in RECORD_RELATIONS}
    assert listed == {relation: record_expected(caller, resource, relation, "list") == 200
                      for relation in RECORD_RELATIONS}
    hidden = {pk for pk in ids if pk in stage.universe and not stage.sees(caller, pk)}
    assert not hidden, "the list shows records the caller may not see"


def put_body(resource: str, obj: Any) -> dict[str, Any]:
    """A whole record for PUT, naming only the record's own agency's records (what it names already)."""
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "persons":       lambda: {"name": "Li Mei", "nationalities": ["CN"]},
        "organizations": lambda: {"name": "Red River Metals Co., Ltd.", "jurisdiction": "VN"},
        "links":         lambda: {"kind": "employment", "source": ref(obj.source), "target": ref(obj.target),
                                   "description": "Signs the payroll."},
        "shipments":     lambda: {"reference": obj.reference, "consignee": ref(obj.consignee),
                                   "seizure_location": "Lao Cai"},
        "licences":      lambda: {"number": obj.number, "holder": ref(obj.holder), "commodity": "antimony",
                                   "destination_country": "DE"},
    }
    return bodies[resource]()


# --- creating records of the master index --------------------------------------------------------


def create_body(stage: IndexStage, resource: str) -> dict[str, Any]:
    own_person, own_org = stage.records["persons", "own"], stage.records["organizations", "own"]
    other_own_person = Person.objects.get(pk=stage.refs[stage.by_relation["own_unit"].pk]["person"])
    bodies: dict[str, dict[str, Any]] = {
        "persons":       {"name": "Li Mei", "nationalities": ["CN"]},
        "organizations": {"name": "Red River Metals Co., Ltd.", "jurisdiction": "VN"},
        "links":         {"kind": "associate", "source": ref(own_person), "target": ref(other_own_person)},
        "shipments":     {"reference": "MXS-new", "consignee": ref(own_org),
                          "cases": [str(stage.by_relation["own_unit"].pk)]},
        "licences":      {"number": "LIC-MX-new", "holder": ref(own_org), "commodity": "antimony"},
    }
    return bodies[resource]


@pytest.mark.parametrize("resource", RECORD_RESOURCES)
@pytest.mark.parametrize("caller", CALLERS)
def test_create_record(stage, caller, resource):
    model = RECORD_MODELS[resource]
    before = model._default_manager.count()
    response = stage.client(caller).post(f"/api/v1/{resource}/", create_body(stage, resource), format="json")
    want = create_expected(caller, resource)
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 201:
        assert response.json()["agency"] == "SSB"
        stored = model._default_manager.filter(pk=response.json()["id"]).values_list("agency_id", flat=True).get()
        assert stored == stage.agencies["a"].pk
    else:
        assert model._default_manager.count() == before


# --- the matrix: caller x case relation x operation, for case-owned records ----------------------

# The prosecutions' list membership is one cell per caller below (one request shows every relation at once).
CHILD_MATRIX = [pytest.param(caller, resource, relation, op, id=f"{caller}-{resource}-{relation}-{op}")
                for caller in CALLERS for resource in CHILD_OPS for relation in CHILD_RELATIONS
                for op in CHILD_OPS[resource] if (resource, op) != ("prosecutions", "list")]


def send_child(stage: IndexStage, caller: str, resource: str, relation: str, op: str):
    client = stage.client(caller)
    case = stage.by_relation[relation]
    obj = stage.children[resource, relation]
    if resource == "prosecutions":
        url = f"/api/v1/prosecutions/{obj.pk}/"
        if op == "create":
            defendant = {"type": "person", "id": stage.refs[case.pk]["person"]}  # a party of the case, its agency's
            return client.post("/api/v1/prosecutions/", {"case": str(case.pk), "defendant": defendant,
                                                         "charges": [{"statute": "Customs Law art. 82"}]},
                               format="json")
        body: dict[str, Any] = {"court": "Intermediate People's Court"}
        if op == "put":
            body.update(case=str(case.pk), defendant={"type": "person", "id": stage.refs[case.pk]["person"]})
    else:
        base = f"/api/v1/cases/{case.pk}/evidence/"
        url = f"{base}{obj.pk}/"
        if op == "list":
            return client.get(base, {"page_size": 500})
        if op == "download":
            response = client.get(f"{url}download/")
            if response.status_code == 200:
                b"".join(response.streaming_content)  # type: ignore[attr-defined]  # consumed: the file is closed
            return response
        if op == "create":
            upload = SimpleUploadedFile("seizure-photo.jpg", b"\xff\xd8\xff photo", "image/jpeg")
            return client.post(base, {"file": upload, "title": "Seizure photo", "kind": "photo"}, format="multipart")
        body = {"title": "Bill of lading, certified copy"}
    if op == "retrieve":
        return client.get(url)
    if op == "patch":
        return client.patch(url, body, format="json")
    if op == "put":
        return client.put(url, {**body, "kind": "document"}, format="json") if resource == "evidence" else \
            client.put(url, body, format="json")
    return client.delete(url)


def child_fingerprint(stage: IndexStage, resource: str, relation: str) -> tuple:
    obj = stage.children[resource, relation]
    model = type(obj)
    siblings = model._default_manager.filter(case=obj.case_id).count()
    custody = CustodyEntry.objects.filter(evidence=obj).count() if model is Evidence else 0
    return (fingerprint(obj), siblings, custody)


@pytest.mark.parametrize(("caller", "resource", "relation", "op"), CHILD_MATRIX)
def test_case_owned_matrix(stage, caller, resource, relation, op):
    want = child_expected(caller, resource, relation, op)
    obj = stage.children[resource, relation]
    before = child_fingerprint(stage, resource, relation)

    response = send_child(stage, caller, resource, relation, op)

    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400 and op != "download":
        body = response.json()
        assert ("case" if want == 400 else "detail") in body, body
    after = child_fingerprint(stage, resource, relation)
    if op == "list" and want == 200:
        assert str(obj.pk) in listed_ids(response)
    elif op == "retrieve" and want == 200:
        assert response.json()["id"] == str(obj.pk)
        assert response["ETag"] == f'"{before[0][0]}"'
    elif op == "download" and want == 200:
        assert after[2] == before[2] + 1, "a download enters the custody log"
    elif op == "create" and want == 201:
        assert after[1] == before[1] + 1
        assert response.json()["case"] == str(stage.by_relation[relation].pk)
    elif op in ("patch", "put") and want == 200:
        assert after[0][0] == before[0][0] + 1
    elif op == "archive" and want == 204:
        assert type(obj)._default_manager.get(pk=obj.pk).archived
    if want >= 400:
        assert after == before, "a refused request changed something"


@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "by_case"])
@pytest.mark.parametrize("caller", CALLERS)
def test_prosecution_list(stage, caller, filtered):
    """Each of the matrix's prosecutions is listed exactly when the caller sees its case; filtering by a case the
    caller does not see shows nothing (scoping comes before any filter)."""
    client = stage.client(caller)
    responses = {relation: client.get("/api/v1/prosecutions/", {"case": str(stage.by_relation[relation].pk)})
                 for relation in CHILD_RELATIONS} if filtered else {}
    if not filtered:
        whole = client.get("/api/v1/prosecutions/", {"page_size": 500})
        responses = dict.fromkeys(CHILD_RELATIONS, whole)
    if caller == "anonymous":
        assert {response.status_code for response in responses.values()} == {401}
        return
    listed = {relation: str(stage.children["prosecutions", relation].pk) in listed_ids(response)
              for relation, response in responses.items()}
    assert listed == {relation: child_expected(caller, "prosecutions", relation, "list") == 200
                      for relation in CHILD_RELATIONS}


# --- search: never another agency's record that is not linked to a shared case ----------------------

# query: (the type of result it names, the records of the universe it names: a predicate on the record)
SEARCHES: dict[str, tuple[str, Any]] = {
    "Matrixperson": ("person", lambda obj: isinstance(obj, Entity) and obj.name.startswith("Matrixperson")),
    "Matrixorg":    ("organization", lambda obj: isinstance(obj, Entity) and obj.name.startswith("Matrixorg")),
    "MXS-":         ("shipment", lambda obj: isinstance(obj, Shipment) and obj.reference.startswith("MXS-")),
    "Case":         ("case", lambda obj: isinstance(obj, Case)),  # every case's title is "Case <n>"
}


def universe_objects(stage: IndexStage) -> list[Any]:
    objs: list[Any] = [*stage.by_relation.values(), *stage.extra["hidden_links"], stage.extra["stranger"],
                       stage.extra["hidden_shipment"]]
    objs += [obj for (resource, _), obj in stage.records.items() if resource != "licences"]
    objs += list(Entity.objects.filter(pk__in=[stage.refs[case.pk]["person"] for case in stage.by_relation.values()]))
    return objs


@pytest.mark.parametrize("query", SEARCHES)
@pytest.mark.parametrize("caller", CALLERS)
def test_search(stage, caller, query):
    response = stage.client(caller).get("/api/v1/search/", {"q": query, "page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["next"] is None
    found = {hit["id"] for hit in body["results"]}
    result_type, named = SEARCHES[query]
    named_ids = {str(obj.pk) for obj in universe_objects(stage) if named(obj)}
    assert named_ids, "the query names no record of the stage"
    assert found & named_ids == {pk for pk in named_ids if stage.sees(caller, pk)}
    leaked = {pk for pk in found if pk in stage.universe and not stage.sees(caller, pk)}
    assert not leaked, "search shows records the caller may not see"
    assert {hit["type"] for hit in body["results"] if hit["id"] in named_ids} <= {result_type}


# --- the graph: only visible records, and the visible ones are there ----------------------------------


def _node(stage: IndexStage, key: str) -> Any:
    """'persons/shared_read' → a record of the matrix; 'case/shared_read' → a case; 'stranger' etc. → the extras."""
    kind, _, relation = key.partition("/")
    if kind == "case":
        return stage.by_relation[relation]
    if relation:
        return stage.records[kind, relation]
    return stage.extra[kind]


def node_ref(stage: IndexStage, key: str) -> str:
    obj = _node(stage, key)
    kind = obj.type if isinstance(obj, Entity) else "case" if isinstance(obj, Case) else "shipment"
    return f"{kind}:{obj.pk}"


# name: (path, parameters ({key} → a record's `<type>:<id>`, or its id in a path), whether the start is hidden from
#        every role (404; the superuser still gets 200), the records the answer must show to exactly those who see them)
GRAPHS: dict[str, tuple[str, dict[str, str], bool, tuple[str, ...]]] = {
    # The shared person leads on, for the superuser only, to a stranger, an unshared shipment and an unshared case.
    "around_shared_person": (
        "/api/v1/graph/", {"entity": "{persons/shared_read}", "depth": "3"}, False,
        ("persons/shared_read", "organizations/shared_read", "shipments/shared_read", "case/shared_read",
         "stranger", "hidden_shipment", "case/other_agency"),
    ),
    # The own person is a party of a case of SSB's other unit: shown to those who see that case.
    "around_own_person": (
        "/api/v1/graph/", {"entity": "{persons/own}", "depth": "3"}, False,
        ("persons/own", "organizations/own", "shipments/own", "case/other_unit"),
    ),
    "around_unshared_person": (
        "/api/v1/graph/", {"entity": "{persons/other_agency}", "depth": "2"}, True,
        ("persons/other_agency", "organizations/other_agency", "case/other_agency"),
    ),
    "around_shared_shipment": (
        "/api/v1/graph/", {"entity": "{shipments/shared_write}", "depth": "3"}, False,
        ("shipments/shared_write", "persons/shared_write", "organizations/shared_write", "case/shared_write"),
    ),
    "around_unit_shared_shipment": (  # shared with SSB's other unit only
        "/api/v1/graph/", {"entity": "{shipments/shared_other_unit}", "depth": "1"}, True,
        ("shipments/shared_other_unit", "persons/shared_other_unit"),
    ),
    "path_within_share": (
        "/api/v1/graph/path/", {"from": "{persons/shared_read}", "to": "{organizations/shared_read}"}, False,
        ("persons/shared_read", "organizations/shared_read"),
    ),
    "path_out_of_share": (
        "/api/v1/graph/path/", {"from": "{persons/shared_read}", "to": "{stranger}"}, True,
        ("persons/shared_read", "stranger"),
    ),
    "shared_case": (
        "/api/v1/cases/{case/shared_read}/graph/", {"depth": "3"}, False,
        ("case/shared_read", "persons/shared_read", "organizations/shared_read", "shipments/shared_read",
         "case/other_agency", "stranger"),
    ),
    "unshared_case": (
        "/api/v1/cases/{case/other_agency}/graph/", {"depth": "1"}, True,
        ("case/other_agency", "persons/other_agency", "shipments/other_agency"),
    ),
}


def _fill_refs(stage: IndexStage, text: str) -> str:
    while "{" in text:
        head, _, rest = text.partition("{")
        key, _, tail = rest.partition("}")
        value = str(_node(stage, key).pk) if head.endswith("/cases/") else node_ref(stage, key)
        text = f"{head}{value}{tail}"
    return text


@pytest.mark.parametrize("query", GRAPHS)
@pytest.mark.parametrize("caller", CALLERS)
def test_graph(stage, caller, query):
    path, params, start_hidden, shown = GRAPHS[query]
    response = stage.client(caller).get(_fill_refs(stage, path),
                                        {k: _fill_refs(stage, v) for k, v in params.items()})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    if start_hidden and caller != "superuser":
        assert response.status_code == 404, response.json()
        assert "detail" in response.json()
        return
    assert response.status_code == 200, response.json()
    body = response.json()
    nodes = {node["id"] for node in body["nodes"]}
    leaked = {pk for pk in nodes if pk in stage.universe and not stage.sees(caller, pk)}
    assert not leaked, "the graph shows records the caller may not see"
    unknown = nodes - stage.universe.keys()
    assert not unknown, "the graph reached records the stage does not know"
    required = {pk for pk in (str(_node(stage, key).pk) for key in shown) if stage.sees(caller, pk)}
    assert required <= nodes, required - nodes
    for edge in body["edges"]:
        assert {edge["source"], edge["target"]} <= nodes


# --- references across agencies: a 400 on the field ---------------------------------------------------
# API.md § Access: "A record references only records of its own agency (a shipment's consignee, a link's ends, a case
# party): a foreign or invisible id is a 400 on that field." Foreign ones are tried both seen (through a share) and
# unseen; nothing is written.

FOREIGN = ("shared_write", "other_agency")


@pytest.mark.parametrize("seen", FOREIGN)
@pytest.mark.parametrize("field_name", ["consignor", "consignee", "notify_party", "ordering_party"])
def test_shipment_naming_another_agencys_party_is_a_400_on_that_field(stage, field_name, seen):
    client = stage.client("investigator")
    theirs = stage.records["organizations", seen]
    count = Shipment.objects.count()
    response = client.post("/api/v1/shipments/", {"reference": "MXS-x", field_name: ref(theirs)}, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field_name]
    assert Shipment.objects.count() == count

    own = stage.records["shipments", "own"]
    before = fingerprint(own)
    response = client.patch(f"/api/v1/shipments/{own.pk}/", {field_name: ref(theirs)}, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field_name]
    assert fingerprint(own) == before


@pytest.mark.parametrize("seen", FOREIGN)
def test_shipment_naming_another_agencys_licence_or_case_is_a_400_on_that_field(stage, seen):
    client = stage.client("investigator")
    count = Shipment.objects.count()
    for field_name, value in (("licence", str(stage.records["licences", seen].pk)),
                              ("cases", [str(stage.by_relation[seen].pk)])):
        response = client.post("/api/v1/shipments/", {"reference": "MXS-x", field_name: value}, format="json")
        assert response.status_code == 400, response.json()
        assert list(response.json()) == [field_name]
    assert Shipment.objects.count() == count


@pytest.mark.parametrize("seen", FOREIGN)
def test_link_between_another_agencys_entity_and_mine_is_a_400(stage, seen):
    client = stage.client("investigator")
    mine, theirs = stage.records["persons", "own"], stage.records["persons", seen]
    count = Link.objects.count()
    for body, bad in (({"source": ref(mine), "target": ref(theirs)}, {"target"}),
                      ({"source": ref(theirs), "target": ref(mine)}, {"source"}),
                      ({"source": ref(mine), "target": ref(stage.extra["stranger"]), "case": None}, {"target"})):
        response = client.post("/api/v1/links/", {"kind": "associate", **body}, format="json")
        assert response.status_code == 400, response.json()
        assert set(response.json()) == bad
    # Between two of mine, but naming another agency's case as provenance: a 400 on `case`.
    other_mine = Person.objects.get(pk=stage.refs[stage.by_relation["own_unit"].pk]["person"])
    response = client.post("/api/v1/links/", {"kind": "associate", "source": ref(mine), "target": ref(other_mine),
                                              "case": str(stage.by_relation[seen].pk)}, format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()) == {"case"}
    assert Link.objects.count() == count
    # Nor can an edit swing a link of mine to their end.
    link = stage.records["links", "own"]
    before = fingerprint(link)
    response = client.patch(f"/api/v1/links/{link.pk}/", {"source": ref(theirs)}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"source"}, response.json()
    assert fingerprint(link) == before


@pytest.mark.parametrize("seen", FOREIGN)
def test_prosecution_naming_another_agencys_defendant_is_a_400(stage, seen):
    client = stage.client("investigator")
    own_case = stage.by_relation["own_unit"]
    count = Prosecution.objects.count()
    response = client.post("/api/v1/prosecutions/", {"case": str(own_case.pk),
                                                     "defendant": ref(stage.records["persons", seen])}, format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()) == {"defendant"}
    # On a case ASB shares read-write, the defendant must be ASB's: one of mine is as foreign there.
    response = client.post("/api/v1/prosecutions/", {"case": str(stage.by_relation["shared_write"].pk),
                                                     "defendant": ref(stage.records["persons", "own"])},
                           format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()) == {"defendant"}
    assert Prosecution.objects.count() == count
    prosecution = stage.children["prosecutions", "own_unit"]
    before = fingerprint(prosecution)
    response = client.patch(f"/api/v1/prosecutions/{prosecution.pk}/",
                            {"defendant": ref(stage.records["persons", seen])}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"defendant"}, response.json()
    assert fingerprint(prosecution) == before


@pytest.mark.parametrize("seen", FOREIGN)
@pytest.mark.parametrize("field_name", ["holder", "end_user"])
def test_licence_naming_another_agencys_entity_is_a_400_on_that_field(stage, field_name, seen):
    client = stage.client("investigator")
    body: dict[str, Any] = {"number": "LIC-MX-x", "holder": ref(stage.records["organizations", "own"]),
                            "commodity": "antimony", field_name: ref(stage.records["organizations", seen])}
    count = Licence.objects.count()
    response = client.post("/api/v1/licences/", body, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field_name]
    assert Licence.objects.count() == count
