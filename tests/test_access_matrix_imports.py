"""Access matrix over `/imports/` (API.md § Access, § Bulk import), after tests/test_access_matrix.py.

An import job is an agency record without a case of its own to be shared through: every user of its agency reads it
(its detail, its row errors as JSON and CSV), no other agency's user sees it (404, never 403; absent from lists).
Starting an import and cancelling one are the master index's writers' (investigators and up, "imports"), of the
job's own agency: 403 for the other roles, changing nothing. Each cell is one test, read off the tables below.

The data is built once per module inside a transaction rolled back at the end; each test runs in a savepoint of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.core.files.base import ContentFile

from imports.models import ImportJob, ImportRowError

from .access_routes import Route
from .stages import built_once
from .test_access_matrix import CALLERS, EVERYONE, INVESTIGATORS, Stage, base_stage, listed_ids

pytestmark = pytest.mark.django_db

RELATIONS = {"own": "a", "other_agency": "b"}
#   op            who of the job's agency may    method  path under /imports/{job}/  success
OPERATIONS: dict[str, tuple[frozenset[str], str, str, int]] = {
    "retrieve":   (EVERYONE,                     "get",  "",                          200),
    "errors":     (EVERYONE,                     "get",  "errors/",                   200),
    "errors_csv": (EVERYONE,                     "get",  "errors.csv/",               200),
    "cancel":     (INVESTIGATORS,                "post", "cancel/",                   200),  # a queued job: at once
}
IMPORTERS = INVESTIGATORS

# The routes (tests/access_routes.py) this module exercises: by an operation of OPERATIONS (test_import_matrix
# crosses it with every caller and RELATIONS) or by the test named.
ROUTES: dict[Route, str] = {
    ("import-list", "GET"): "test_import_list", ("import-list", "POST"): "test_start_an_import",
    ("import-detail", "GET"): "retrieve", ("import-errors", "GET"): "errors",
    ("import-errors-csv", "GET"): "errors_csv", ("import-cancel", "POST"): "cancel",
}


def expected(caller: str, relation: str, op: str) -> int:
    allowed, _, _, success = OPERATIONS[op]
    if caller == "anonymous":
        return 401
    if caller == "superuser":
        return success
    if relation != "own":
        return 404
    return success if caller in allowed else 403


@dataclass
class ImportStage(Stage):
    jobs: dict[str, ImportJob] = field(default_factory=dict)


def build_stage() -> ImportStage:
    stage = base_stage(ImportStage)
    for relation, agency in RELATIONS.items():
        owner = stage.users[f"sup-{stage.agencies[agency].code.lower()}"]
        job = ImportJob.objects.create(agency=stage.agencies[agency], kind="persons", source="matrix",
                                       created_by=owner, file=ContentFile(b"name\n", name="people.csv"))
        ImportRowError.objects.create(job=job, row=2, field="name", message="This field is required.")
        stage.jobs[relation] = job
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker, tmp_path_factory):
    with built_once(django_db_blocker, build_stage, str(tmp_path_factory.mktemp("media"))) as built:
        yield built


def _fingerprint(job: ImportJob) -> tuple:
    return ImportJob.objects.values_list("status", "version", "finished_at").get(pk=job.pk)


@pytest.mark.parametrize(("caller", "relation", "op"), [
    pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
    for caller in CALLERS for relation in RELATIONS for op in OPERATIONS])
def test_import_matrix(stage, caller, relation, op):
    job = stage.jobs[relation]
    _, method, path, _ = OPERATIONS[op]
    before = _fingerprint(job)
    response = getattr(stage.client(caller), method)(f"/api/v1/imports/{job.pk}/{path}")
    want = expected(caller, relation, op)
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400:
        assert "detail" in response.json()
    elif op == "errors_csv":
        assert response.getvalue().decode().splitlines() == ["row,field,message,values",
                                                              "2,name,This field is required.,"]
    elif op == "errors":
        assert [error["row"] for error in response.json()["results"]] == [2]
    else:
        assert response.json()["id"] == str(job.pk)
    if op == "cancel" and want == 200:
        assert _fingerprint(job)[0] == "cancelled"
    else:
        assert _fingerprint(job) == before, "a read or a refused cancel changed the job"


@pytest.mark.parametrize("caller", CALLERS)
def test_import_list(stage, caller):
    response = stage.client(caller).get("/api/v1/imports/", {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    assert {relation: str(job.pk) in ids for relation, job in stage.jobs.items()} == {
        relation: expected(caller, relation, "retrieve") == 200 for relation in RELATIONS}


@pytest.mark.parametrize("caller", CALLERS)
def test_start_an_import(stage, caller):
    before = ImportJob.objects.count()
    upload = ContentFile(b"name\nLi Mei\n", name="people.csv")
    response = stage.client(caller).post("/api/v1/imports/", {"file": upload, "kind": "persons", "mode": "partial"},
                                         format="multipart")
    want = 401 if caller == "anonymous" else 202 if caller == "superuser" or caller in IMPORTERS else 403
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 202:
        assert response.json()["agency"] == "SSB"
        assert ImportJob.objects.filter(pk=response.json()["id"], agency=stage.agencies["a"]).exists()
    else:
        assert "detail" in response.json()
        assert ImportJob.objects.count() == before

