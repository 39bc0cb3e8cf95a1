"""Bad input from the client's side: always a clear 4xx in JSON, never a 500, never a partial write.

Every refused request below is checked to have written nothing: no case, party, note, share, counter
number or audit event, and no change to the record it aimed at.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent, ChainHead
from cases.models import Case, CaseCounter, CaseParty, CaseShare, Note
from entities.models import Organization, Person

from . import factories

CASES = "/api/v1/cases/"


# --- the stage -----------------------------------------------------------------------------------


@pytest.fixture
def stage(world, client_for):
    """Agency A's investigator and supervisor with a case, a party, a note and a share; records of agency B."""
    inv = factories.user(world.a, "investigator", world.a1, username="inv-a1")
    sup = factories.user(world.a, "supervisor", world.a1, username="sup-a")
    inv_b = factories.user(world.b, "investigator", world.b1, username="inv-b1")
    case = factories.case(world.a, world.a1, lead=inv, title="Antimony ring")
    person = factories.person(world.a, "Li Wei")
    org = factories.organization(world.a, "Guangxi Metals Trading")
    party = factories.party(case, person)
    note = factories.note(case, inv, "First note")
    share = factories.share(case, world.b, "read", by=sup)
    return SimpleNamespace(
        world=world, inv=inv, sup=sup, inv_b=inv_b, case=case, person=person, org=org, party=party, note=note,
        share=share, person_b=factories.person(world.b, "Tran Van B"), org_b=factories.organization(world.b, "B Co"),
        api=client_for(inv), sup_api=client_for(sup),
    )


# (name, method, url, who) for every write endpoint of cases and their nested resources.
ENDPOINTS: list[tuple[str, str, Callable[[Any], str], str]] = [
    ("case-create", "post", lambda s: CASES, "api"),
    ("case-update", "patch", lambda s: f"{CASES}{s.case.pk}/", "api"),
    ("party-create", "post", lambda s: f"{CASES}{s.case.pk}/parties/", "api"),
    ("party-update", "patch", lambda s: f"{CASES}{s.case.pk}/parties/{s.party.pk}/", "api"),
    ("note-create", "post", lambda s: f"{CASES}{s.case.pk}/notes/", "api"),
    ("note-update", "patch", lambda s: f"{CASES}{s.case.pk}/notes/{s.note.pk}/", "api"),
    ("share-create", "post", lambda s: f"{CASES}{s.case.pk}/shares/", "sup_api"),
    ("share-update", "patch", lambda s: f"{CASES}{s.case.pk}/shares/{s.share.pk}/", "sup_api"),
]
ENDPOINT_IDS = [e[0] for e in ENDPOINTS]

# A body each endpoint accepts, to which the tests add something wrong.
GOOD: dict[str, dict[str, Any] | Callable[[Any], dict[str, Any]]] = {
    "case": {"title": "Gallium via Vietnam"},
    "party": lambda s: {"entity": {"type": "organization", "id": str(s.org.pk)}, "role": "shell_company"},
    "note": {"body": "Seen at the border."},
    "share": {"agency": "ASB", "access": "write"},
}


def good_body(name: str, s: Any) -> dict[str, Any]:
    body = GOOD[name.split("-")[0]]
    return dict(body(s) if callable(body) else body)


def send(s: Any, method: str, url: str, who: str, body: Any = None, raw: str | bytes | None = None,
         **extra: Any):
    client: APIClient = getattr(s, who)
    if raw is not None:
        return getattr(client, method)(url, raw, content_type="application/json", **extra)
    return getattr(client, method)(url, body, format="json", **extra)


def state() -> dict[str, Any]:
    """Everything a write could leave behind."""
    return {
        "cases": list(Case.objects.order_by("pk").values_list("pk", "version", "title", "status", "unit_id",
                                                              "lead_id", "archived")),
        "members": sorted((str(c), str(u)) for c, u in Case.members.through.objects.values_list("case_id",
                                                                                               "user_id")),
        "commodities": sorted(Case.commodities.through.objects.values_list("case_id", "commodity_id")),
        "parties": list(CaseParty.objects.order_by("pk").values_list("pk", "version", "entity_id", "role")),
        "notes": list(Note.objects.order_by("pk").values_list("pk", "version", "body")),
        "shares": list(CaseShare.objects.order_by("pk").values_list("pk", "version", "agency_id", "unit_id",
                                                                    "access")),
        "persons": Person.objects.count(),
        "organizations": Organization.objects.count(),
        "counters": CaseCounter.objects.aggregate(n=Sum("last"))["n"],
        "audit": AuditEvent.objects.count(),
        "chain_heads": sorted(ChainHead.objects.values_list("chain", "last_seq")),
    }


@contextmanager
def nothing_written() -> Iterator[None]:
    before = state()
    yield
    assert state() == before, "a refused request wrote something"


def assert_json_error(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict) and body
    return body


# --- malformed and non-object bodies -------------------------------------------------------------


MALFORMED = [
    '{"title": "unterminated',
    '{"title": "x",}',
    "{'title': 'single quotes'}",
    '{"title": NaN}',
    "   ",
    "\x00",
    b'{"title": "\xff\xfe not utf-8"}',
    "[" * 100_000,  # deeper than any parser's recursion limit
    '{"a":' * 50_000 + "1" + "}" * 50_000,
]
MALFORMED_IDS = ["unterminated", "trailing-comma", "single-quotes", "nan", "blank", "nul", "not-utf8",
                 "deep-array", "deep-object"]


@pytest.mark.parametrize("raw", MALFORMED, ids=MALFORMED_IDS)
@pytest.mark.parametrize("name, method, url, who", ENDPOINTS, ids=ENDPOINT_IDS)
def test_malformed_json_is_400_with_detail(stage, name, method, url, who, raw):
    with nothing_written():
        response = send(stage, method, url(stage), who, raw=raw)
    assert "detail" in assert_json_error(response, 400)


@pytest.mark.parametrize(
    "raw",
    ["[]", '[{"title": "in a list"}]', '"a string"', "42", "true", "null", '["title", "x"]'],
    ids=["empty-array", "array-of-object", "string", "number", "bool", "null", "array-of-strings"],
)
@pytest.mark.parametrize("name, method, url, who", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_that_is_not_an_object_is_400(stage, name, method, url, who, raw):
    with nothing_written():
        response = send(stage, method, url(stage), who, raw=raw)
    assert_json_error(response, 400)


# --- unknown fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, method, url, who", ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_unknown_field_is_400_naming_it(stage, name, method, url, who):
    body = {**good_body(name, stage), "colour": "red", "titel": "typo"}
    with nothing_written():
        response = send(stage, method, url(stage), who, body)
    errors = assert_json_error(response, 400)
    assert set(errors) == {"colour", "titel"}


def test_unknown_and_invalid_fields_are_named_together(stage):
    with nothing_written():
        response = stage.api.post(CASES, {"title": ["x"], "classification": "ultra", "colour": "red"},
                                  format="json")
    assert set(assert_json_error(response, 400)) == {"title", "classification", "colour"}


def test_read_only_fields_are_ignored_not_applied(stage):
    forged_id = str(uuid.uuid4())
    response = stage.api.post(CASES, {"title": "Forged extras", "id": forged_id, "agency": "ASB", "version": 99,
                                      "reference": "FAKE-1", "created_at": "2000-01-01T00:00:00Z",
                                      "archived": True, "closed_on": "2000-01-01"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != forged_id
    assert (body["agency"], body["version"], body["archived"], body["closed_on"]) == ("SSB", 1, False, None)
    assert body["reference"].startswith("SSB-")
    case = Case.objects.get(pk=body["id"])
    assert (case.agency, case.archived, case.reference) == (stage.world.a, False, body["reference"])


# --- wrong types, every bad field named at once --------------------------------------------------


WRONG_TYPES: dict[str, dict[str, Any]] = {
    "case-create": {"title": [1, 2], "classification": "ultra", "opened_on": "yesterday", "members": "inv-a1",
                    "priority": 5, "tags": "smuggling", "commodities": "antimony", "summary": {"a": 1},
                    "lead": ["inv-a1"], "unit": 7},
    "party-create": {"entity": "person", "role": "boss", "custody_status": 3, "notes": ["x"]},
    "note-create": {"body": ["x"]},
    "share-create": {"agency": 5, "access": "admin"},
}
WRONG_TYPES["case-update"] = {**WRONG_TYPES["case-create"], "status": "finished"}
WRONG_TYPES["party-update"] = WRONG_TYPES["party-create"]
WRONG_TYPES["note-update"] = {"body": None}
WRONG_TYPES["share-update"] = {"access": ["read"], "agency": None}


@pytest.mark.parametrize("name, method, url, who", ENDPOINTS, ids=ENDPOINT_IDS)
def test_wrong_types_are_400_naming_every_bad_field(stage, name, method, url, who):
    body = WRONG_TYPES[name]
    with nothing_written():
        response = send(stage, method, url(stage), who, body)
    errors = assert_json_error(response, 400)
    assert set(errors) == set(body), errors


@pytest.mark.parametrize(
    "field, value",
    [
        ("title", True), ("title", None), ("title", {"x": 1}), ("title", ""),
        ("classification", "ultra"), ("classification", 1), ("classification", "SECRET"),
        ("status", "finished"), ("priority", ["high"]),
        ("opened_on", "yesterday"), ("opened_on", "2024-02-30"), ("opened_on", 20240101),
        ("opened_on", "2024-01-01T10:00:00Z"),
        ("members", "inv-a1"), ("members", 7), ("members", [None]), ("members", [1]),
        ("members", ["nobody-at-all"]),
        ("commodities", "antimony"), ("commodities", ["unobtainium"]), ("commodities", [{"code": "antimony"}]),
        ("tags", "a,b"), ("tags", [1, [2]]), ("tags", ["t" * 51]), ("tags", ["t"] * 51), ("tags", [None]),
        ("unit", "no-such-unit"), ("unit", ["econ"]), ("lead", "nobody-at-all"), ("lead", 5),
    ],
)
def test_each_bad_case_field_is_named(stage, field, value):
    for method, url in (("post", CASES), ("patch", f"{CASES}{stage.case.pk}/")):
        body = {"title": "Fine title", field: value} if method == "post" else {field: value}
        with nothing_written():
            response = getattr(stage.api, method)(url, body, format="json")
        errors = assert_json_error(response, 400)
        assert set(errors) == {field}, (method, errors)


@pytest.mark.parametrize(
    "entity",
    [
        "person", 5, [], {}, {"type": "person"}, {"id": "x"}, {"type": "ship", "id": str(uuid.uuid4())},
        {"type": "person", "id": "not-a-uuid"}, {"type": "person", "id": 5}, {"type": "person", "id": None},
        {"type": "person", "id": str(uuid.uuid4())},
    ],
)
def test_a_bad_entity_reference_is_400_on_entity(stage, entity):
    with nothing_written():
        response = stage.api.post(f"{CASES}{stage.case.pk}/parties/", {"entity": entity}, format="json")
    assert set(assert_json_error(response, 400)) == {"entity"}


# --- foreign ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"unit": "ports"}, "unit"),          # a unit of agency B
        ({"lead": "inv-b1"}, "lead"),         # a user of agency B
        ({"members": ["sup-a", "inv-b1"]}, "members"),
    ],
    ids=["unit", "lead", "members"],
)
def test_a_foreign_id_on_a_case_is_400_on_that_field(stage, body, field):
    with nothing_written():
        created = stage.api.post(CASES, {"title": "Foreign refs", **body}, format="json")
        updated = stage.api.patch(f"{CASES}{stage.case.pk}/", body, format="json")
    assert set(assert_json_error(created, 400)) == {field}
    assert set(assert_json_error(updated, 400)) == {field}


def test_an_inactive_user_cannot_be_lead_or_member(stage):
    gone = factories.user(stage.world.a, "investigator", stage.world.a1, username="gone", is_active=False)
    with nothing_written():
        for body in ({"lead": gone.username}, {"members": [gone.username]}):
            response = stage.api.patch(f"{CASES}{stage.case.pk}/", body, format="json")
            assert set(assert_json_error(response, 400)) == set(body)


@pytest.mark.parametrize("kind", ["person", "organization"])
def test_an_entity_of_another_agency_is_400_on_entity(stage, kind):
    foreign = stage.person_b if kind == "person" else stage.org_b
    ref = {"type": kind, "id": str(foreign.pk)}
    with nothing_written():
        created = stage.api.post(f"{CASES}{stage.case.pk}/parties/", {"entity": ref}, format="json")
        updated = stage.api.patch(f"{CASES}{stage.case.pk}/parties/{stage.party.pk}/", {"entity": ref},
                                  format="json")
    assert set(assert_json_error(created, 400)) == {"entity"}
    assert set(assert_json_error(updated, 400)) == {"entity"}


def test_an_entity_seen_through_a_share_is_still_foreign(stage, client_for):
    """B shares a case with A: A sees B's party, but may not make it a party of A's own case."""
    case_b = factories.case(stage.world.b, stage.world.b1)
    factories.party(case_b, stage.person_b)
    factories.share(case_b, stage.world.a, "write")
    ref = {"type": "person", "id": str(stage.person_b.pk)}
    with nothing_written():
        response = stage.api.post(f"{CASES}{stage.case.pk}/parties/", {"entity": ref}, format="json")
    assert set(assert_json_error(response, 400)) == {"entity"}


def test_an_archived_entity_cannot_become_a_party(stage):
    Person.objects.filter(pk=stage.person.pk).update(archived=True)
    with nothing_written():
        response = stage.api.post(f"{CASES}{stage.case.pk}/parties/",
                                  {"entity": {"type": "person", "id": str(stage.person.pk)}}, format="json")
    assert set(assert_json_error(response, 400)) == {"entity"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"agency": "SSB", "access": "read"}, "agency"),               # its own agency
        ({"agency": "NOPE", "access": "read"}, "agency"),
        ({"agency": "ASB", "unit": "econ", "access": "read"}, "unit"),  # a unit of SSB, not of ASB
        ({"agency": "ASB", "unit": "nope", "access": "read"}, "unit"),
    ],
    ids=["own-agency", "unknown-agency", "unit-of-another-agency", "unknown-unit"],
)
def test_a_bad_share_target_is_400_on_that_field(stage, body, field):
    with nothing_written():
        response = stage.sup_api.post(f"{CASES}{stage.case.pk}/shares/", body, format="json")
    assert set(assert_json_error(response, 400)) == {field}


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, method, url, who", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_over_the_limit_is_413_json(stage, settings, name, method, url, who):
    settings.API_MAX_JSON_BODY = 1000
    body = {**good_body(name, stage), "padding": "x" * 2000}
    with nothing_written():
        response = send(stage, method, url(stage), who, body)
    assert "detail" in assert_json_error(response, 413)
    # Just under the limit the same endpoint parses the body (and refuses the unknown field).
    small = {**good_body(name, stage), "padding": "x"}
    with nothing_written():
        response = send(stage, method, url(stage), who, small)
    assert set(assert_json_error(response, 400)) == {"padding"}


def test_a_body_over_the_default_limit_is_413_json(stage):
    with nothing_written():
        response = stage.api.post(CASES, {"title": "Big", "summary": "x" * (3 * 1024 * 1024)}, format="json")
    assert "detail" in assert_json_error(response, 413)
    with nothing_written():
        response = stage.api.post(CASES, "title=Big&summary=" + "x" * (3 * 1024 * 1024),
                                  content_type="application/x-www-form-urlencoded")
    # Not JSON: refused for its media type before its size is looked at.
    assert "detail" in assert_json_error(response, 415)


@pytest.mark.parametrize(
    "name, body, field",
    [
        ("case-create", {"title": "t" * 10_000}, "title"),
        ("case-create", {"title": "t" * 301}, "title"),
        ("case-update", {"title": "t" * 10_000}, "title"),
        ("note-create", {"body": "b" * 100_001}, "body"),
        ("note-update", {"body": "b" * 100_001}, "body"),
        ("party-update", {"role": "r" * 10_000}, "role"),
        ("share-create", {"agency": "ASB", "access": "read", "unit": "u" * 10_000}, "unit"),
    ],
)
def test_huge_strings_are_400(stage, name, body, field):
    _, method, url, who = next(e for e in ENDPOINTS if e[0] == name)
    with nothing_written():
        response = send(stage, method, url(stage), who, body)
    assert set(assert_json_error(response, 400)) == {field}


def test_a_title_at_the_limit_is_accepted(stage):
    response = stage.api.post(CASES, {"title": "t" * 300}, format="json")
    assert response.status_code == 201


# --- characters PostgreSQL cannot store ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, body",
    [
        ("case-create", {"title": "nul \x00 byte"}),
        ("case-create", {"title": "ok", "summary": "\x00"}),
        ("case-create", {"title": "ok", "tags": ["a\x00"]}),
        ("case-create", {"title": "ok", "lead": "inv\x00"}),
        ("case-create", {"title": "ok", "unit": "\x00"}),
        ("case-create", {"title": "ok", "members": ["\x00"]}),
        ("case-create", {"title": "ok", "commodities": ["anti\x00mony"]}),
        ("case-update", {"title": "\x00"}),
        ("case-update", {"lead": "\x00"}),
        ("note-create", {"body": "\x00"}),
        ("party-create", {"entity": {"type": "person", "id": "\x00"}}),
        ("party-update", {"notes": "\x00"}),
        ("share-create", {"agency": "A\x00SB", "access": "read"}),
        ("share-create", {"agency": "ASB", "access": "read", "unit": "\x00"}),
    ],
)
def test_nul_characters_are_400(stage, name, body):
    _, method, url, who = next(e for e in ENDPOINTS if e[0] == name)
    with nothing_written():
        response = send(stage, method, url(stage), who, body)
    assert_json_error(response, 400)


@pytest.mark.parametrize("name", ["case-create", "note-create"])
def test_lone_surrogates_are_400(stage, name):
    field = "title" if name == "case-create" else "body"
    _, method, url, who = next(e for e in ENDPOINTS if e[0] == name)
    with nothing_written():
        response = send(stage, method, url(stage), who, raw=f'{{"{field}": "\\ud800 half a pair"}}')
    assert set(assert_json_error(response, 400)) == {field}


# --- no 500 whatever the values ------------------------------------------------------------------


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
CASE_FIELDS = ["title", "summary", "status", "priority", "classification", "unit", "lead", "members",
               "commodities", "opened_on", "tags"]


@hsettings(max_examples=150, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(CASE_FIELDS), JSON_VALUES, max_size=5))
def test_no_case_body_is_a_500(stage, body):
    for method, url in (("post", CASES), ("patch", f"{CASES}{stage.case.pk}/")):
        response = getattr(stage.api, method)(url, body, format="json")
        assert response.status_code in (200, 201, 400, 403, 409), (method, body, response.content[:300])
        assert response["Content-Type"].startswith("application/json")


@hsettings(max_examples=80, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(["entity", "role", "custody_status", "notes"]), JSON_VALUES,
                            max_size=4))
def test_no_party_body_is_a_500(stage, body):
    response = stage.api.post(f"{CASES}{stage.case.pk}/parties/", body, format="json")
    assert response.status_code in (201, 400), (body, response.content[:300])


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/nope/"),
        ("get", "/api/v1/nope"),
        ("post", "/api/v1/nope/"),
        ("get", "/api/v1/cases/not-a-uuid/"),
        ("patch", "/api/v1/cases/not-a-uuid/"),
        ("get", "/api/v1/cases/{random}/"),
        ("patch", "/api/v1/cases/{random}/"),
        ("delete", "/api/v1/cases/{random}/"),
        ("get", "/api/v1/cases/{case}/nope/"),
        ("get", "/api/v1/cases/{random}/notes/"),
        ("post", "/api/v1/cases/{random}/notes/"),
        ("get", "/api/v1/cases/{dashes}/notes/"),
        ("get", "/api/v1/cases/{zeros}/parties/"),
        ("get", "/api/v1/cases/{case}/notes/{random}/"),
        ("get", "/api/v1/cases/{case}/notes/not-a-uuid/"),
        ("patch", "/api/v1/cases/{case}/parties/{random}/"),
        ("get", "/api/v1/cases/{other}/"),
        ("get", "/api/v1/cases/{other}/notes/"),
        ("get", "/api/v1/audit/999999/"),
        ("get", "/api/v2/cases/"),
    ],
)
def test_unknown_urls_are_404_json(stage, method, path):
    other = factories.case(stage.world.b, stage.world.b1)  # not shared with A: not visible, so not there
    url = path.format(random=uuid.uuid4(), case=stage.case.pk, dashes="-" * 36, zeros="0" * 36, other=other.pk)
    client = stage.sup_api if "audit" in path else stage.api
    with nothing_written():
        response = getattr(client, method)(url, {"title": "x"} if method in ("post", "patch") else None,
                                           format="json")
    if response.status_code == 301:  # APPEND_SLASH: the slashed form must be a JSON 404 too
        response = getattr(client, method)(response["Location"])
    assert "detail" in assert_json_error(response, 404)


def test_unknown_urls_are_404_json_without_credentials(world):
    response = APIClient().get("/api/v1/nope/")
    assert_json_error(response, 404)


@pytest.mark.parametrize("params", [
    {"opened_after": "yesterday"}, {"status": "finished"}, {"person": "not-a-uuid"}, {"page": "abc"},
    {"page": "999"}, {"page_size": "-1"}, {"page_size": "abc"}, {"ordering": "nonexistent"}, {"q": "\x00"},
    {"lead": "\x00"}, {"unit": "\x00"}, {"created_after": "2024-13-01"}, {"include_archived": "true"},
])
def test_bad_list_parameters_are_never_a_500(stage, params):
    with nothing_written():
        response = stage.api.get(CASES, params)
    assert response.status_code in (200, 400, 403, 404), (params, response.content[:300])
    assert response["Content-Type"].startswith("application/json")


def test_an_unsupported_content_type_is_415_json(stage):
    with nothing_written():
        response = stage.api.post(CASES, "<case><title>x</title></case>", content_type="application/xml")
    assert "detail" in assert_json_error(response, 415)


@pytest.mark.parametrize("path", [CASES, "/api/v1/persons/", "/api/v1/auth/tokens/"])
def test_a_form_body_to_a_json_operation_is_415_json(stage, path):
    with nothing_written():
        form = stage.api.post(path, "title=Form&name=Form&username=x&password=y",
                              content_type="application/x-www-form-urlencoded")
        multipart = stage.api.post(path, {"title": "Form", "name": "Form"}, format="multipart")
    assert assert_json_error(form, 415) == {
        "detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}
    assert assert_json_error(multipart, 415)["detail"].startswith('Unsupported media type "multipart/form-data')
    # The same fields as JSON are taken.
    if path == CASES:
        assert stage.api.post(path, {"title": "Form"}, format="json").status_code == 201


def test_an_upload_endpoint_takes_multipart_only(stage):
    with nothing_written():
        response = stage.api.post("/api/v1/imports/", {"kind": "persons", "file": "name\nx\n"}, format="json")
    assert assert_json_error(response, 415) == {"detail": 'Unsupported media type "application/json" in request.'}


def test_a_method_not_allowed_is_405_json(stage):
    with nothing_written():
        response = stage.api.put("/api/v1/auth/me/", {}, format="json")
    assert "detail" in assert_json_error(response, 405)


# --- list cost does not grow with the page ------------------------------------------------------


def test_case_list_queries_do_not_grow_with_page_size(stage, client_for):
    world = stage.world
    staff = [factories.user(world.a, "investigator", unit, username=f"staff-{i}")
             for i, unit in enumerate([world.a1, world.a2] * 3)]
    for i in range(30):
        case = factories.case(world.a, [world.a1, world.a2][i % 2], lead=staff[i % len(staff)],
                              members=(staff[(i + 1) % len(staff)], staff[(i + 2) % len(staff)]),
                              created_by=staff[(i + 3) % len(staff)], classification="confidential", tags=[f"t{i}"])
        # Commodity pks are codes; the stubs allow only a model or an int in set().
        case.commodities.set(["antimony", "gallium"] if i % 3 else ["tungsten"])  # type: ignore[list-item]
        factories.party(case, factories.person(world.a))
    client = client_for(stage.sup)
    assert client.get(CASES, {"page_size": 1}).status_code == 200  # first use of the token writes last_used_at

    def measure(page_size: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(CASES, {"page_size": page_size})
        assert response.status_code == 200
        results = response.json()["results"]
        assert len(results) == page_size
        assert all(r["members"] and r["commodities"] and r["lead"] and r["unit"] for r in results
                   if r["title"] != "Antimony ring")
        return len(queries)

    small, large = measure(5), measure(30)
    assert small == large, f"page_size=5 took {small} queries, page_size=30 took {large}"
    assert large <= 10


def test_tokens_are_unaffected_by_bad_requests(stage):
    """A stream of bad requests neither locks nor revokes the caller's token."""
    for raw in MALFORMED[:3]:
        stage.api.post(CASES, raw, content_type="application/json")
    assert stage.api.get("/api/v1/auth/me/").status_code == 200
    assert ApiToken.objects.filter(user=stage.inv, revoked_at__isnull=True).count() == 1


def test_json_errors_are_utf8_json(stage):
    response = stage.api.post(CASES, json.dumps({"title": "x", "classification": "絶密"}),
                              content_type="application/json")
    errors = assert_json_error(response, 400)
    assert "classification" in errors
