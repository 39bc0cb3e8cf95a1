"""Idempotency-Key on every POST, Location on every creation, If-None-Match on every detail (API.md § Basics),
from the client's side."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import date
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.urls import get_resolver

from cases.models import Case, CaseCounter, CaseParty, CaseShare, Note
from core.idempotency import purge
from core.models import IdempotentResponse
from entities.models import Organization, Person
from imports.models import ImportJob
from shipments.models import Licence, Shipment

from . import factories
from .access_routes import _walk, api_routes

KEY = "Idempotency-Key"
POST_ROUTES = sorted((name, pattern) for (name, method), pattern in api_routes().items() if method == "POST")
# Sign-in has no user to key a request by, and its answer holds a token that is stored only as its hash.
NOT_IDEMPOTENT = {"auth-tokens"}


def _fill(pattern: str, kwargs: dict[str, str]) -> str:
    """The path of a route's pattern with its parameters filled in (those of `kwargs`; the others unknown ids)."""
    path = "/" + pattern.replace("^", "").replace("$", "")
    return re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>",
                  lambda m: kwargs.get(m.group(1) or m.group(2), str(uuid.uuid4())), path)


def _multipart_only(pattern_name: str) -> bool:
    """Whether the route's view takes multipart bodies only (uploads): its requests are sent so."""
    callback: Any = next(p for _, p in _walk(get_resolver().url_patterns, "") if p.name == pattern_name).callback
    view = callback.cls
    if hasattr(view, "upload_actions"):  # multipart on its upload actions alone, JSON on the others
        return callback.actions.get("post") in view.upload_actions
    return not any(parser.media_type == "application/json" for parser in view.parser_classes)


@pytest.fixture
def case(world, supervisor):
    return factories.case(world.a, world.a1, lead=supervisor)


@pytest.fixture
def sup_api(client_for, supervisor):
    return client_for(supervisor)


def _post(client: Any, url: str, body: Any, key: str | None, multipart: bool = False) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(url, body, format="multipart" if multipart else "json", **headers)


# --- every POST route -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "pattern"), [route for route in POST_ROUTES if route[0] not in NOT_IDEMPOTENT])
def test_every_post_route_replays_its_first_answer(sup_api, case, name, pattern):
    """A POST to any route, retried with its key, answers the first answer again, marked as a replay, and nothing
    runs twice: whatever the route (a creation, a nested creation, an action), and whatever the first answer was."""
    url = _fill(pattern, {"case_pk": str(case.pk)})
    multipart = _multipart_only(name)
    key = str(uuid.uuid4())
    events = Note.objects.count(), IdempotentResponse.objects.count()
    first = _post(sup_api, url, {}, key, multipart)
    again = _post(sup_api, url, {}, key, multipart)
    assert first.status_code < 500, first.content
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert IdempotentResponse.objects.count() == events[1] + 1
    other = _post(sup_api, url, {"title": "another body"}, key, multipart)
    assert other.status_code == 422, other.content
    assert set(other.json()) == {"detail"}


def test_sign_in_ignores_a_key(client_for, investigator):
    """Sign-in answers a new token each time: its answer is never kept (the token is stored only as a hash)."""
    client = client_for(None)
    body = {"username": investigator.username, "password": factories.PASSWORD}
    first = client.post("/api/v1/auth/tokens/", body, format="json", HTTP_IDEMPOTENCY_KEY="sign-in-1")
    again = client.post("/api/v1/auth/tokens/", body, format="json", HTTP_IDEMPOTENCY_KEY="sign-in-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["token"] != again.json()["token"]
    assert "Idempotent-Replayed" not in again
    assert IdempotentResponse.objects.count() == 0


# --- replay, another body, keys ---------------------------------------------------------------------------------


def test_a_retried_create_is_replayed_and_creates_one_record(api):
    body = {"name": "Li Wei", "nationalities": ["CN"]}
    first = _post(api, "/api/v1/persons/", body, "person-1")
    again = _post(api, "/api/v1/persons/", body, "person-1")
    assert first.status_code == 201, first.content
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Location"] == first["Location"]
    assert again["ETag"] == first["ETag"]
    assert again["Idempotent-Replayed"] == "true"
    assert Person.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_and_changes_nothing(api):
    assert _post(api, "/api/v1/persons/", {"name": "Li Wei"}, "person-1").status_code == 201
    other = _post(api, "/api/v1/persons/", {"name": "Wang Fang"}, "person-1")
    assert other.status_code == 422
    assert "another request" in other.json()["detail"]
    elsewhere = _post(api, "/api/v1/organizations/", {"name": "Li Wei"}, "person-1")
    assert elsewhere.status_code == 422
    assert list(Person.objects.values_list("name", flat=True)) == ["Li Wei"]
    assert Organization.objects.count() == 0


def test_the_body_is_compared_as_parsed_not_as_sent(api):
    first = api.post("/api/v1/persons/", data='{"name": "Li Wei", "gender": "male"}',
                     content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = api.post("/api/v1/persons/", data='{ "gender":"male",  "name":"Li Wei" }',
                     content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Person.objects.count() == 1


def test_a_key_is_the_users_own(client_for, world, investigator):
    other = factories.user(world.a, "investigator", world.a1)
    first = _post(client_for(investigator), "/api/v1/persons/", {"name": "Li Wei"}, "shared-key")
    second = _post(client_for(other), "/api/v1/persons/", {"name": "Li Wei"}, "shared-key")
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second
    assert first.json()["id"] != second.json()["id"]
    assert Person.objects.count() == 2


def test_a_4xx_is_kept_and_replayed(api):
    first = _post(api, "/api/v1/persons/", {"name": ""}, "bad-1")
    again = _post(api, "/api/v1/persons/", {"name": ""}, "bad-1")
    assert first.status_code == 400
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (400, first.content, "true")


def test_without_a_key_every_post_runs(api):
    for _ in range(2):
        assert _post(api, "/api/v1/persons/", {"name": "Li Wei"}, None).status_code == 201
    assert Person.objects.count() == 2
    assert IdempotentResponse.objects.count() == 0


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "clé", "tab\there"])
def test_an_empty_overlong_or_unprintable_key_is_a_400(api, key):
    response = _post(api, "/api/v1/persons/", {"name": "Li Wei"}, key)
    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]
    assert Person.objects.count() == 0


def test_a_key_of_255_characters_is_taken(api):
    response = _post(api, "/api/v1/persons/", {"name": "Li Wei"}, "k" * 255)
    assert response.status_code == 201


def test_after_the_keeping_time_a_key_runs_again_and_beat_purges_it(api, settings):
    assert _post(api, "/api/v1/persons/", {"name": "Li Wei"}, "old").status_code == 201
    assert purge() == 0  # within the keeping time: kept
    settings.IDEMPOTENCY_KEEP_HOURS = 0
    again = _post(api, "/api/v1/persons/", {"name": "Li Wei"}, "old")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Person.objects.count() == 2
    assert IdempotentResponse.objects.count() == 1  # the expired answer replaced
    assert purge() == 1
    assert IdempotentResponse.objects.count() == 0


def test_the_purge_is_a_named_routed_time_limited_beat_task():
    from config.celery import app
    from core.tasks import queue_name, route

    schedule = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == "core.idempotency.purge"]
    assert len(schedule) == 1
    registered = app.tasks["core.idempotency.purge"]
    assert (registered.soft_time_limit, registered.time_limit) == (120, 180)
    assert route("core.idempotency.purge", (), {}, {}) == {"queue": queue_name("default")}


def test_a_multipart_upload_is_replayed_by_its_content(client_for, supervisor, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    client = client_for(supervisor)

    def upload(content: bytes) -> Any:
        from django.core.files.uploadedfile import SimpleUploadedFile

        body = {"kind": "persons", "file": SimpleUploadedFile("people.csv", content, content_type="text/csv")}
        return client.post("/api/v1/imports/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="upload-1")

    first = upload(b"name\nLi Wei\n")
    again = upload(b"name\nLi Wei\n")
    assert first.status_code == 202, first.content
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (202, first.content, "true")
    assert upload(b"name\nWang Fang\n").status_code == 422
    assert ImportJob.objects.count() == 1


# --- two requests with one key at once --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once(world, client_for, investigator):
    """The first request with a key holds it while it runs (here it waits for the case counter, which another
    transaction holds): a second with the key meanwhile is a 409 at once, and a retry after the first answered
    gets its answer. One case is made."""
    api = client_for(investigator)
    assert api.post("/api/v1/cases/", {"title": "the counter's first"}, format="json").status_code == 201
    answers: dict[str, Any] = {}
    holding, release = threading.Event(), threading.Event()

    def hold_the_counter() -> None:
        try:
            with transaction.atomic():
                CaseCounter.objects.select_for_update().get(agency=world.a, year=date.today().year)
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    def first_request() -> None:
        try:
            answers["first"] = _post(api, "/api/v1/cases/", {"title": "Grey ore"}, "case-1")
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_counter)
    holder.start()
    assert holding.wait(30)
    first = threading.Thread(target=first_request)
    first.start()
    try:
        _wait_for_advisory_lock()
        answers["second"] = _post(api, "/api/v1/cases/", {"title": "Grey ore"}, "case-1")
    finally:
        release.set()
        holder.join(30)
        first.join(30)
    assert answers["second"].status_code == 409, answers["second"].content
    assert answers["first"].status_code == 201, answers["first"].content
    retry = _post(api, "/api/v1/cases/", {"title": "Grey ore"}, "case-1")
    assert (retry.status_code, retry.content, retry["Idempotent-Replayed"]) == (201, answers["first"].content, "true")
    assert Case.objects.filter(title="Grey ore").count() == 1


def _wait_for_advisory_lock() -> None:
    """Until a request holds an advisory lock (the first request's key)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database())")
            if cursor.fetchone()[0] == 1:
                return
        time.sleep(0.02)
    raise AssertionError("the first request never took its key")


# --- Location ----------------------------------------------------------------------------------------------------


def _creations(world: Any, case: Case) -> dict[str, tuple[str, dict[str, Any], Any]]:
    person = factories.person(world.a, "Chen Jie")
    org = factories.organization(world.a, "Grey Ore Trading")
    return {
        "case": ("/api/v1/cases/", {"title": "Grey ore"}, Case),
        "person": ("/api/v1/persons/", {"name": "Li Wei"}, Person),
        "organization": ("/api/v1/organizations/", {"name": "Antimony Ltd"}, Organization),
        "shipment": ("/api/v1/shipments/", {"reference": "BL-1", "origin_country": "CN"}, Shipment),
        "licence": ("/api/v1/licences/", {"number": "L-1", "holder": {"type": "organization", "id": str(org.pk)},
                                          "commodity": "antimony", "valid_from": "2026-01-01"}, Licence),
        "note": (f"/api/v1/cases/{case.pk}/notes/", {"body": "Seen at the port"}, Note),
        "party": (f"/api/v1/cases/{case.pk}/parties/", {"entity": {"type": "person", "id": str(person.pk)},
                                                        "role": "suspect"}, CaseParty),
        "share": (f"/api/v1/cases/{case.pk}/shares/", {"agency": "ASB", "access": "read"}, CaseShare),
    }


@pytest.mark.parametrize("kind", ["case", "person", "organization", "shipment", "licence", "note", "party", "share"])
def test_every_201_has_a_location_that_is_the_detail(sup_api, world, case, kind):
    url, body, model = _creations(world, case)[kind]
    response = sup_api.post(url, body, format="json")
    assert response.status_code == 201, response.content
    location = response["Location"]
    assert location.startswith("http://testserver/api/v1/")
    assert location.endswith(f"/{response.json()['id']}/")
    detail = sup_api.get(location)
    assert detail.status_code == 200
    assert detail.json()["id"] == response.json()["id"]
    assert model.objects.filter(pk=response.json()["id"]).exists()


def test_an_accepted_import_has_the_jobs_location(client_for, supervisor, tmp_path, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = str(tmp_path)
    client = client_for(supervisor)
    body = {"kind": "persons", "file": SimpleUploadedFile("people.csv", b"name\nLi Wei\n", content_type="text/csv")}
    response = client.post("/api/v1/imports/", body, format="multipart")
    assert response.status_code == 202
    assert response["Location"] == f"http://testserver/api/v1/imports/{response.json()['id']}/"
    assert client.get(response["Location"]).json()["id"] == response.json()["id"]


# --- If-None-Match -----------------------------------------------------------------------------------------------


def _details(world: Any, case: Case, supervisor: Any) -> dict[str, str]:
    person = factories.person(world.a, "Chen Jie")
    return {
        "case": f"/api/v1/cases/{case.pk}/",
        "person": f"/api/v1/persons/{person.pk}/",
        "note": f"/api/v1/cases/{case.pk}/notes/{factories.note(case, supervisor).pk}/",
        "party": f"/api/v1/cases/{case.pk}/parties/{factories.party(case, person).pk}/",
        "shipment": f"/api/v1/shipments/{factories.shipment(world.a).pk}/",
        "run": f"/api/v1/xref/runs/{factories.run(world.a, supervisor).pk}/",
    }


@pytest.mark.parametrize("kind", ["case", "person", "note", "party", "shipment", "run"])
def test_if_none_match_current_is_a_304_stale_is_a_200(sup_api, world, case, supervisor, kind):
    url = _details(world, case, supervisor)[kind]
    full = sup_api.get(url)
    assert full.status_code == 200
    etag = full["ETag"]
    current = sup_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert current.status_code == 304
    assert current.content == b""
    assert current["ETag"] == etag
    assert sup_api.get(url, HTTP_IF_NONE_MATCH=f'W/{etag}, "0"').status_code == 304
    assert sup_api.get(url, HTTP_IF_NONE_MATCH="*").status_code == 304
    stale = sup_api.get(url, HTTP_IF_NONE_MATCH=f'"{int(etag.strip(chr(34))) + 1}"')
    assert stale.status_code == 200
    assert stale.content == full.content


def test_a_304_after_a_change_is_a_200_with_the_new_version(sup_api, world, case):
    url = f"/api/v1/cases/{case.pk}/"
    etag = sup_api.get(url)["ETag"]
    assert sup_api.patch(url, {"title": "Renamed"}, format="json").status_code == 200
    response = sup_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"
    assert response["ETag"] != etag


def test_no_extra_query_without_the_headers(api):
    """A POST or GET without the headers and parameters costs what it did: no key is looked up."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as plain:
        assert api.post("/api/v1/persons/", {"name": "Li Wei"}, format="json").status_code == 201
    assert not [q for q in plain.captured_queries if "core_idempotentresponse" in q["sql"]
                or "advisory" in q["sql"]]
