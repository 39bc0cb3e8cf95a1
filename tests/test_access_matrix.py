"""Access matrix over every endpoint that exists (API.md § Access), after NetBox's base API tests.

Each cell is one test. Two matrices:

- caller (six roles, superuser, anonymous) x the case's relation to the caller x operation;
- caller's clearance x the case's classification (x how the caller comes to the case).

The expected outcome of every cell is read off the tables below, which are meant to be checked
line by line against API.md:

- anonymous → 401;
- a case the caller does not see → 404 (never 403), and the case is absent from lists;
- a case the caller sees, an operation neither their role nor their agency's access allows → 403;
- otherwise the operation's own success code (409 for a move the status machine forbids).

Where API.md is open, a comment marked "reading" says which reading the table takes: the one
granting least, unless a committed test has already settled it.

The data is built once per module inside a transaction rolled back at the end; each test runs in
a savepoint of it (pytest-django's `db`), so no test's writes reach another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from rest_framework.test import APIClient

from accounts.models import Agency, Unit, User
from audit.models import AuditEvent
from audit.services import chain_of, record
from cases.models import Case, CaseParty, CaseShare, Note
from entities.models import Person

from . import factories
from .access_routes import Route
from .stages import built_once

pytestmark = pytest.mark.django_db

Y, N = True, False

ROLES = ("viewer", "analyst", "investigator", "supervisor", "auditor", "agency_admin")
CALLERS = (*ROLES, "superuser", "anonymous")

# --- who sees which case -------------------------------------------------------------------
# Every caller sits in agency SSB, unit a1. How each case of the matrix stands to them:
#   relation:             (case's unit, caller's tie, shared with the caller's agency: (unit, access))
RELATIONS: dict[str, tuple[str, str | None, tuple[str | None, str] | None]] = {
    "own_unit":          ("a1", None,     None),
    "other_unit":        ("a2", None,     None),
    "lead":              ("a2", "lead",   None),
    "member":            ("a2", "member", None),
    "other_agency":      ("b1", None,     None),
    "shared_read":       ("b1", None,     (None, "read")),
    "shared_write":      ("b1", None,     (None, "write")),
    "shared_my_unit":    ("b1", None,     ("a1", "write")),
    "shared_other_unit": ("b1", None,     ("a2", "write")),
}

# API.md § Access, Cases. The matrix's cases are `secret` and every caller is cleared `secret`,
# except the superuser: cleared `unclassified`, a mere viewer, it must still see and do everything.
#                      viewer analyst investigator supervisor auditor agency_admin
SEES: dict[str, tuple[bool, ...]] = {
    "own_unit":          (Y,    Y,      Y,           Y,         Y,      Y),
    "other_unit":        (N,    N,      N,           Y,         Y,      Y),
    "lead":              (Y,    Y,      Y,           Y,         Y,      Y),
    "member":            (Y,    Y,      Y,           Y,         Y,      Y),
    "other_agency":      (N,    N,      N,           N,         N,      N),
    "shared_read":       (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_write":      (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_my_unit":    (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_other_unit": (N,    N,      N,           N,         N,      N),
}

# What the caller's agency holds on a case it sees ("none": only a superuser sees it at all).
ACCESS = {
    "own_unit": "own", "other_unit": "own", "lead": "own", "member": "own",
    "shared_read": "read", "shared_write": "write", "shared_my_unit": "write",
    "other_agency": "none", "shared_other_unit": "none",
}

# --- who may do what on a case they see ----------------------------------------------------
EVERYONE = frozenset(ROLES)
NOTE_WRITERS = frozenset({"analyst", "investigator", "supervisor", "agency_admin"})
INVESTIGATORS = frozenset({"investigator", "supervisor", "agency_admin"})
SUPERVISORS = frozenset({"supervisor", "agency_admin"})
NOBODY: frozenset[str] = frozenset()

# API.md § Access, Writes: viewer/auditor write nothing; analyst notes; investigator creates and
# edits cases, parties, notes, status up to `referred`; supervisor (and agency_admin) also close,
# reopen, archive, share. A read-write share lets the other agency write content, not close,
# reopen, archive or share (those stay with the owning agency's supervisors).
#   op                own agency's case  shared read-write  shared read-only  success
RULES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], int]] = {
    "retrieve":      (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "list":          (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "parties":       (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "notes":         (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "timeline":      (EVERYONE,          EVERYONE,          EVERYONE,         200),
    # reading: "/shares/ … (supervisors)" covers reading them too, and only the owning agency's.
    "shares":        (SUPERVISORS,       NOBODY,            NOBODY,           200),
    "patch":         (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),
    "start":         (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),  # open → investigating
    "refer":         (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),  # investigating → referred
    "skip":          (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           409),  # open → referred
    "close":         (SUPERVISORS,       NOBODY,            NOBODY,           200),  # investigating → closed
    "reopen":        (SUPERVISORS,       NOBODY,            NOBODY,           200),  # closed → investigating
    "archive":       (SUPERVISORS,       NOBODY,            NOBODY,           204),
    "party_add":     (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           201),
    "party_edit":    (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),
    # reading: archiving a party or a note is editing the case's parties or notes, as the committed
    # tests/test_cases.py has it; the supervisors' "archiving" is the case's own.
    "party_archive": (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           204),
    "note_add":      (NOTE_WRITERS,      NOTE_WRITERS,      NOBODY,           201),
    "note_archive":  (NOTE_WRITERS,      NOTE_WRITERS,      NOBODY,           204),
    "share_add":     (SUPERVISORS,       NOBODY,            NOBODY,           201),
    "share_revoke":  (SUPERVISORS,       NOBODY,            NOBODY,           204),
    "put":           (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),  # as "patch", the whole body
    "party_get":     (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "party_put":     (INVESTIGATORS,     INVESTIGATORS,     NOBODY,           200),
    "note_get":      (EVERYONE,          EVERYONE,          EVERYONE,         200),
    "note_edit":     (NOTE_WRITERS,      NOTE_WRITERS,      NOBODY,           200),
    "note_put":      (NOTE_WRITERS,      NOTE_WRITERS,      NOBODY,           200),
    "share_get":     (SUPERVISORS,       NOBODY,            NOBODY,           200),  # as "shares"
    "share_edit":    (SUPERVISORS,       NOBODY,            NOBODY,           200),
    "share_put":     (SUPERVISORS,       NOBODY,            NOBODY,           200),
    "graph":         (EVERYONE,          EVERYONE,          EVERYONE,         200),
}
ACCESS_COLUMN = {"own": 0, "write": 1, "read": 2}

# How each operation is sent: method, path under /api/v1/cases/{case}/, body, status set before.
# {party}, {note}, {share}, {person} are the case's own records (see Stage); {bystander} is an
# agency neither SSB nor ASB.
OPS: dict[str, tuple[str, str, dict[str, Any] | None, str | None]] = {
    "retrieve":      ("get",    "",                  None, None),
    "list":          ("get",    "",                  None, None),  # GET /cases/?q=<reference>
    "parties":       ("get",    "parties/",          None, None),
    "notes":         ("get",    "notes/",            None, None),
    "timeline":      ("get",    "timeline/",         None, None),
    "shares":        ("get",    "shares/",           None, None),
    "patch":         ("patch",  "",                  {"title": "Renamed"}, None),
    "start":         ("patch",  "",                  {"status": "investigating"}, "open"),
    "refer":         ("patch",  "",                  {"status": "referred"}, "investigating"),
    "skip":          ("patch",  "",                  {"status": "referred"}, "open"),
    "close":         ("patch",  "",                  {"status": "closed"}, "investigating"),
    "reopen":        ("patch",  "",                  {"status": "investigating"}, "closed"),
    "archive":       ("delete", "",                  None, None),
    "party_add":     ("post",   "parties/",          {"entity": {"type": "person", "id": "{person}"},
                                                      "role": "courier"}, None),
    "party_edit":    ("patch",  "parties/{party}/",  {"custody_status": "detained"}, None),
    "party_archive": ("delete", "parties/{party}/",  None, None),
    "note_add":      ("post",   "notes/",            {"body": "Seen at the port."}, None),
    "note_archive":  ("delete", "notes/{note}/",     None, None),
    "share_add":     ("post",   "shares/",           {"agency": "{bystander}", "access": "read"}, None),
    "share_revoke":  ("delete", "shares/{share}/",   None, None),
    "put":           ("put",    "",                  {"title": "Renamed"}, None),
    "party_get":     ("get",    "parties/{party}/",  None, None),
    "party_put":     ("put",    "parties/{party}/",  {"entity": {"type": "person", "id": "{person}"},
                                                      "role": "financier"}, None),
    "note_get":      ("get",    "notes/{note}/",     None, None),
    "note_edit":     ("patch",  "notes/{note}/",     {"body": "Seen at the port, twice."}, None),
    "note_put":      ("put",    "notes/{note}/",     {"body": "Seen at the airport."}, None),
    "share_get":     ("get",    "shares/{share}/",   None, None),
    "share_edit":    ("patch",  "shares/{share}/",   {"access": "write"}, None),
    "share_put":     ("put",    "shares/{share}/",   {"agency": "{bystander}", "access": "write"}, None),
    "graph":         ("get",    "graph/",            None, None),
}
assert OPS.keys() == RULES.keys()

# The routes (tests/access_routes.py) this module exercises, each by an operation of OPS (crossed with every caller
# and every relation by test_case_matrix) or by the test named.
ROUTES: dict[Route, str] = {
    ("case-list", "GET"): "list", ("case-list", "POST"): "test_create_case",
    ("case-detail", "GET"): "retrieve", ("case-detail", "PATCH"): "patch", ("case-detail", "PUT"): "put",
    ("case-detail", "DELETE"): "archive", ("case-timeline", "GET"): "timeline", ("case-graph", "GET"): "graph",
    ("case-party-list", "GET"): "parties", ("case-party-list", "POST"): "party_add",
    ("case-party-detail", "GET"): "party_get", ("case-party-detail", "PATCH"): "party_edit",
    ("case-party-detail", "PUT"): "party_put", ("case-party-detail", "DELETE"): "party_archive",
    ("case-note-list", "GET"): "notes", ("case-note-list", "POST"): "note_add",
    ("case-note-detail", "GET"): "note_get", ("case-note-detail", "PATCH"): "note_edit",
    ("case-note-detail", "PUT"): "note_put", ("case-note-detail", "DELETE"): "note_archive",
    ("case-share-list", "GET"): "shares", ("case-share-list", "POST"): "share_add",
    ("case-share-detail", "GET"): "share_get", ("case-share-detail", "PATCH"): "share_edit",
    ("case-share-detail", "PUT"): "share_put", ("case-share-detail", "DELETE"): "share_revoke",
    ("audit-list", "GET"): "test_audit", ("audit-verify", "GET"): "test_audit",
    ("audit-detail", "GET"): "test_audit_event",
}


def matrix_status(caller: str, sees: tuple[bool, ...], success: int, allowed_roles: Callable[[], object]) -> int:
    """What the access rules answer `caller`: 401 anonymous; `success` for a superuser; 404 for a role that does
    not see the object (`sees`, one flag per role of ROLES); else `success` if the role is among `allowed_roles()`
    (asked only then: a relation no role sees has no access column), 403 if not."""
    if caller == "anonymous":
        return 401
    if caller == "superuser":  # "Superusers see and do everything."
        return success
    if not sees[ROLES.index(caller)]:
        return 404
    allowed = allowed_roles()
    assert isinstance(allowed, frozenset)  # one of the role columns of a rules table, not its status
    return success if caller in allowed else 403


def expected_status(caller: str, relation: str, op: str) -> int:
    return matrix_status(caller, SEES[relation], RULES[op][3], lambda: RULES[op][ACCESS_COLUMN[ACCESS[relation]]])


# --- clearance x classification ------------------------------------------------------------
CLASSIFICATIONS = ("unclassified", "restricted", "confidential", "secret")
#                 case: unclassified restricted confidential secret
CLEARS: dict[str, tuple[bool, ...]] = {
    "unclassified":      (Y,           N,         N,           N),
    "restricted":        (Y,           Y,         N,           N),
    "confidential":      (Y,           Y,         Y,           N),
    "secret":            (Y,           Y,         Y,           Y),
}
# How a caller of each clearance comes to the case: (caller's role, case's unit, shared read to SSB).
CLEARANCE_PATHS = {
    "own_unit":    ("investigator", "a1", False),
    "agency_wide": ("supervisor",   "a2", False),
    "shared_read": ("investigator", "b1", True),
}

# --- endpoints that do not hang off one case -----------------------------------------------
CASE_CREATORS = INVESTIGATORS
ARCHIVE_LISTERS = SUPERVISORS
AUDIT_READERS = frozenset({"supervisor", "auditor", "agency_admin"})


# --- the stage -----------------------------------------------------------------------------


@dataclass
class Stage:
    agencies: dict[str, Agency]
    units: dict[str, Unit]
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    refs: dict[Any, dict[str, str]] = field(default_factory=dict)  # case pk → its records' ids

    def client(self, caller: str) -> APIClient:
        client = APIClient()
        if caller != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[caller]}")
        return client

    def add_user(self, key: str, agency: str, role: str, unit: str | None, clearance: str = "secret",
                 **extra: Any) -> User:
        user = factories.user(self.agencies[agency], role, self.units[unit] if unit else None,
                              clearance=clearance, username=key, **extra)
        self.users[key] = user
        self.tokens[key] = factories.token(user)
        return user

    def add_case(self, unit: str, classification: str = "secret", lead: User | None = None,
                 members: tuple[User, ...] = (), shared: tuple[str | None, str] | None = None) -> Case:
        unit_obj = self.units[unit]
        agency = unit_obj.agency
        owner = self.users[f"sup-{agency.code.lower()}"]
        case = factories.case(agency, unit_obj, classification, lead=lead, members=members)
        if shared is not None:
            share_unit, access = shared
            factories.share(case, self.agencies["a"], access,
                            unit_obj=self.units[share_unit] if share_unit else None, by=owner)
        person = factories.person(agency)
        self.refs[case.pk] = {
            "person": str(person.pk),
            "party": str(factories.party(case, person).pk),
            "note": str(factories.note(case, owner).pk),
            "share": str(factories.share(case, self.agencies["c"], "read", by=owner).pk),
            "bystander": self.agencies["c"].code,
        }
        return case


S = TypeVar("S", bound=Stage)


def base_stage(stage_class: type[S]) -> S:
    """Three agencies, four units, a caller of each role in SSB/econ, and the supervisors who share."""
    agencies = {"a": factories.agency("SSB", "State Security Bureau"),
                "b": factories.agency("ASB", "Anti-Smuggling Bureau"),
                "c": factories.agency("CGX", "Coast Guard")}
    units = {"a1": factories.unit(agencies["a"], "econ"), "a2": factories.unit(agencies["a"], "cyber"),
             "b1": factories.unit(agencies["b"], "ports"), "b2": factories.unit(agencies["b"], "intel")}
    stage = stage_class(agencies, units)
    stage.add_user("sup-ssb", "a", "supervisor", "a2")
    stage.add_user("sup-asb", "b", "supervisor", "b1")
    for role in ROLES:
        stage.add_user(role, "a", role, "a1")
    # Everything a superuser may do must come from being one: the lowest role and clearance.
    stage.add_user("superuser", "a", "viewer", "a1", clearance="unclassified", is_superuser=True)
    return stage


def build_stage() -> Stage:
    stage = base_stage(Stage)

    for caller in (*ROLES, "superuser"):
        user = stage.users[caller]
        for relation, (unit, tie, shared) in RELATIONS.items():
            stage.cases[caller, relation] = stage.add_case(
                unit, lead=user if tie == "lead" else None, members=(user,) if tie == "member" else (),
                shared=shared,
            )
    for relation in RELATIONS:  # anonymous knocks on the viewer's doors
        stage.cases["anonymous", relation] = stage.cases["viewer", relation]

    for clearance in CLASSIFICATIONS:
        for role in ("investigator", "supervisor"):
            stage.add_user(f"{role}-{clearance}", "a", role, "a1", clearance=clearance)
        for classification in CLASSIFICATIONS:
            for path, (_, unit, shared_read) in CLEARANCE_PATHS.items():
                key = (f"{path}-{clearance}", classification)
                stage.cases[key] = stage.add_case(unit, classification, shared=(None, "read") if shared_read else None)

    # One event in each agency's audit chain, so scoping of /audit/ shows.
    for code in ("a", "b"):
        some_case = Case.objects.filter(agency=stage.agencies[code]).first()
        assert some_case is not None
        record(action="view", obj=some_case, agency=stage.agencies[code], case_id=some_case.pk)
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build_stage) as built:
        yield built


# --- helpers -------------------------------------------------------------------------------


def _fill(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**refs)
    if isinstance(value, dict):
        return {k: _fill(v, refs) for k, v in value.items()}
    return value


def prepare(op: str, case: Case) -> None:
    status_before = OPS[op][3]
    if status_before is not None:
        Case.objects.filter(pk=case.pk).update(status=status_before)


def send(client: APIClient, op: str, case: Case, refs: dict[str, str]):
    method, path, body, _ = OPS[op]
    if op == "list":  # narrowed to the one case by its reference; scoping comes before any filter
        return client.get("/api/v1/cases/", {"q": case.reference})
    url = f"/api/v1/cases/{case.pk}/{_fill(path, refs)}"
    return getattr(client, method)(url, _fill(body, refs), format="json") if body else getattr(client, method)(url)


def fingerprint(case: Case) -> tuple:
    """Everything a refused write must leave as it was."""
    row = Case.objects.values_list("version", "status", "archived", "title").get(pk=case.pk)
    children = [tuple(model.objects.filter(case=case).order_by("pk").values_list("pk", "version", "archived"))
                for model in (CaseParty, Note, CaseShare)]
    return (row, *children)


def listed_ids(response) -> set[str]:
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["next"] is None, "the list outgrew one page; raise page_size"
    return {item["id"] for item in body["results"]}


def check_listed(stage: Stage, caller: str, url: str, objects: dict[str, Any], shown: Callable[[str], bool]) -> None:
    """The whole list at `url`, unfiltered: each of `objects` (by relation) is in it exactly when `shown(relation)`;
    anonymous is 401."""
    response = stage.client(caller).get(url, {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    assert {relation: str(obj.pk) in ids for relation, obj in objects.items()} == {
        relation: shown(relation) for relation in objects}


# --- the matrix: caller x relation x operation ---------------------------------------------

MATRIX = [pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
          for caller in CALLERS for relation in RELATIONS for op in OPS]


@pytest.mark.parametrize(("caller", "relation", "op"), MATRIX)
def test_case_matrix(stage, caller, relation, op):
    case = stage.cases[caller, relation]
    refs = stage.refs[case.pk]
    want = expected_status(caller, relation, op)
    prepare(op, case)
    refused_write = want >= 400 and OPS[op][0] != "get"
    before = fingerprint(case) if refused_write else None

    response = send(stage.client(caller), op, case, refs)

    if op == "list" and want != 401:
        # A list never refuses; it leaves out what the caller may not see.
        assert (str(case.pk) in listed_ids(response)) is (want == 200), (caller, relation)
        return
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400:
        assert "detail" in response.json()
    if refused_write:
        assert fingerprint(case) == before, "a refused write changed something"


@pytest.mark.parametrize("caller", CALLERS)
def test_unfiltered_list(stage, caller):
    """The whole list, unfiltered: each of the caller's matrix cases is in it exactly when visible."""
    response = stage.client(caller).get("/api/v1/cases/", {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    listed = {relation: str(stage.cases[caller, relation].pk) in ids for relation in RELATIONS}
    assert listed == {relation: expected_status(caller, relation, "list") == 200 for relation in RELATIONS}


# --- the matrix: clearance x classification ------------------------------------------------

CLEARANCE_MATRIX = [
    pytest.param(path, clearance, classification, op, id=f"{path}-{clearance}-reads-{classification}-{op}")
    for path in CLEARANCE_PATHS for clearance in CLASSIFICATIONS for classification in CLASSIFICATIONS
    for op in ("retrieve", "list")
]


@pytest.mark.parametrize(("path", "clearance", "classification", "op"), CLEARANCE_MATRIX)
def test_clearance_matrix(stage, path, clearance, classification, op):
    role = CLEARANCE_PATHS[path][0]
    case = stage.cases[f"{path}-{clearance}", classification]
    cleared = CLEARS[clearance][CLASSIFICATIONS.index(classification)]
    response = send(stage.client(f"{role}-{clearance}"), op, case, stage.refs[case.pk])
    if op == "list":
        assert (str(case.pk) in listed_ids(response)) is cleared
    else:
        assert response.status_code == (200 if cleared else 404)


CLEARANCE_WRITES = [
    pytest.param(clearance, classification, how, id=f"{clearance}-{how}-{classification}")
    for clearance in CLASSIFICATIONS for classification in CLASSIFICATIONS for how in ("create", "reclassify")
]


@pytest.mark.parametrize(("clearance", "classification", "how"), CLEARANCE_WRITES)
def test_nobody_writes_a_case_above_their_clearance(stage, clearance, classification, how):
    """A case classified above the writer's clearance would vanish from them: 400 on the field."""
    cleared = CLEARS[clearance][CLASSIFICATIONS.index(classification)]
    client = stage.client(f"investigator-{clearance}")
    if how == "create":
        response = client.post("/api/v1/cases/", {"title": "New", "classification": classification}, format="json")
        success = 201
    else:
        case = stage.cases[f"own_unit-{clearance}", "unclassified"]
        response = client.patch(f"/api/v1/cases/{case.pk}/", {"classification": classification}, format="json")
        success = 200
    if cleared:
        assert response.status_code == success, response.json()
        assert response.json()["classification"] == classification
    else:
        assert response.status_code == 400
        assert "classification" in response.json()


# --- endpoints beside the case ------------------------------------------------------------


def _role_outcome(caller: str, allowed: frozenset[str], success: int = 200) -> int:
    if caller == "anonymous":
        return 401
    return success if caller == "superuser" or caller in allowed else 403


@pytest.mark.parametrize("caller", CALLERS)
def test_create_case(stage, caller):
    response = stage.client(caller).post("/api/v1/cases/", {"title": "Gallium trail"}, format="json")
    assert response.status_code == _role_outcome(caller, CASE_CREATORS, 201), response.json()
    if response.status_code == 201:
        assert response.json()["agency"] == "SSB"


@pytest.mark.parametrize("caller", CALLERS)
def test_include_archived(stage, caller):
    case = stage.cases["superuser", "own_unit"]  # own unit: every SSB caller in a1 sees it
    Case.objects.filter(pk=case.pk).update(archived=True)
    client = stage.client(caller)
    response = client.get("/api/v1/cases/", {"include_archived": "true", "page_size": 500})
    assert response.status_code == _role_outcome(caller, ARCHIVE_LISTERS)
    if response.status_code == 200:
        assert str(case.pk) in listed_ids(response)
        assert str(case.pk) not in listed_ids(client.get("/api/v1/cases/", {"page_size": 500}))


@pytest.mark.parametrize("endpoint", ["/api/v1/audit/", "/api/v1/audit/verify/"])
@pytest.mark.parametrize("caller", CALLERS)
def test_audit(stage, caller, endpoint):
    response = stage.client(caller).get(endpoint)
    assert response.status_code == _role_outcome(caller, AUDIT_READERS)
    if response.status_code != 200:
        return
    body = response.json()
    if endpoint.endswith("verify/"):
        assert (body["ok"], body["first_bad_seq"]) == (True, None)
        assert body["checked"] >= 1
    else:
        agencies = {event["agency"] for event in body["results"]}
        assert agencies == {"SSB"}, "the audit trail is the caller's agency's only"


@pytest.mark.parametrize("caller", CALLERS)
def test_me(stage, caller):
    response = stage.client(caller).get("/api/v1/auth/me/")
    if caller == "anonymous":
        assert response.status_code == 401
        return
    user = stage.users[caller]
    assert response.status_code == 200
    assert response.json() == {"username": user.username, "agency": "SSB", "unit": "econ",
                               "role": user.role, "clearance": user.clearance}


@pytest.mark.parametrize("relation", ["own", "other_agency"])
@pytest.mark.parametrize("caller", CALLERS)
def test_audit_event(stage, caller, relation):
    """One event by its `seq`: the caller's agency's chain only. Another agency's event is one whose seq the caller's
    chain has not reached: 404 to a reader, as a seq past the end is; a role that reads no audit trail is 403 first.
    reading: a superuser signed in as an agency's user reads that agency's chain, as the list gives it."""
    mine, theirs = (stage.agencies[code] for code in ("a", "b"))
    last = {agency: AuditEvent.objects.filter(chain=chain_of(agency)).order_by("-seq").values_list("seq", flat=True)
            .first() or 0 for agency in (mine, theirs)}
    their_case = Case.objects.filter(agency=theirs).first()
    assert their_case is not None
    for _ in range(last[mine] - last[theirs] + 1):  # their chain runs past mine
        record(action="view", obj=their_case, agency=theirs, case_id=their_case.pk)
    event = AuditEvent.objects.filter(chain=chain_of(mine if relation == "own" else theirs)).order_by("-seq").first()
    assert event is not None

    response = stage.client(caller).get(f"/api/v1/audit/{event.seq}/")

    reads = caller == "superuser" or caller in AUDIT_READERS
    want = 401 if caller == "anonymous" else 403 if not reads else 200 if relation == "own" else 404
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 200:
        assert (response.json()["hash"], response.json()["agency"]) == (event.hash, "SSB")
    else:
        assert "detail" in response.json()


# --- references and read-only fields ------------------------------------------------------


def test_party_naming_another_agencys_person_is_a_400_on_entity(stage):
    client = stage.client("investigator")
    own = stage.cases["investigator", "own_unit"]
    shared = stage.cases["investigator", "shared_write"]
    # An ASB person SSB can even see (a party of a case ASB shared with it) is still foreign.
    visible_foreign = stage.refs[shared.pk]["person"]
    unseen_foreign = stage.refs[stage.cases["investigator", "other_agency"].pk]["person"]
    own_person = stage.refs[own.pk]["person"]
    for case, person in ((own, visible_foreign), (own, unseen_foreign), (shared, own_person)):
        before = CaseParty.objects.filter(case=case).count()
        response = client.post(f"/api/v1/cases/{case.pk}/parties/",
                               {"entity": {"type": "person", "id": person}, "role": "courier"}, format="json")
        assert response.status_code == 400, response.json()
        assert list(response.json()) == ["entity"]
        assert CaseParty.objects.filter(case=case).count() == before
    assert Person.objects.filter(pk=own_person, agency__code="SSB").exists()


def test_read_only_fields_sent_by_a_client_are_ignored(stage):
    client = stage.client("investigator")
    other = stage.users["sup-asb"]
    forged = {"agency": "ASB", "version": 42, "reference": "ASB-1999-0001", "created_by": other.username,
              "id": "00000000-0000-0000-0000-000000000001", "closed_on": "2001-01-01"}
    created = client.post("/api/v1/cases/", {"title": "Tungsten", **forged}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["agency"] == "SSB"
    assert body["version"] == 1
    assert body["reference"].startswith("SSB-") and body["reference"] != forged["reference"]
    assert body["id"] != forged["id"]
    assert body["closed_on"] is None
    assert body["created_by"] == "investigator"
    case = Case.objects.get(pk=body["id"])
    assert case.created_by == stage.users["investigator"]
    assert case.agency.code == "SSB"

    updated = client.patch(f"/api/v1/cases/{case.pk}/", {"title": "Tungsten ring", **forged}, format="json")
    assert updated.status_code == 200, updated.json()
    case.refresh_from_db()
    assert (case.agency.code, case.version, case.reference, case.created_by, case.closed_on) == (
        "SSB", 2, body["reference"], stage.users["investigator"], None)

    note = client.post(f"/api/v1/cases/{case.pk}/notes/", {"body": "x", "author": other.username}, format="json")
    assert note.status_code == 201, note.json()
    assert note.json()["author"] == "investigator"
