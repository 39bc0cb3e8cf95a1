"""Import files and evidence in an S3-compatible bucket (STORAGE_BACKEND=s3), against a real SeaweedFS server, from
the client's side: what a web process receives is stored in the bucket and nowhere else, a worker process that
shares nothing with it but the bucket reads it from there, and evidence comes back byte for byte."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from storages.backends.s3 import S3File

from cases.models import CustodyEntry, Evidence
from imports.models import ImportJob

from . import factories
from .s3_server import S3Server, Unavailable, seaweedfs
from .test_imports import BAD, GOOD, PERSON_COLUMNS, persons_csv, xlsx
from .worker import worker_process

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    stack = ExitStack()
    try:
        server = stack.enter_context(seaweedfs())
    except Unavailable as exc:
        print(f"\nobject-storage tests skipped: {exc}")
        pytest.skip(f"no S3-compatible server: {exc}")
    with stack:
        yield server


@pytest.fixture(scope="session")
def s3_storage_options(s3_server) -> dict[str, Any]:
    """The `default` storage the settings build from the environment of a deployment on the server (read from a
    fresh process, so that the test runs on exactly what the settings make of STORAGE_BACKEND=s3 and AWS_*)."""
    shown = subprocess.run(
        [sys.executable, "-c", "import json, django; django.setup(); from django.conf import settings; "
                               "print(json.dumps(settings.STORAGES['default']))"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **s3_server.environment("placeholder")},
        capture_output=True, text=True, check=True, timeout=60,
    )
    default = json.loads(shown.stdout.strip().splitlines()[-1])
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    assert default["OPTIONS"]["endpoint_url"] == s3_server.endpoint
    assert default["OPTIONS"]["file_overwrite"] is False  # two uploads named alike must stay two files
    return default["OPTIONS"]


@dataclass
class Bucket:
    name: str
    server: S3Server

    def keys(self) -> list[str]:
        listed = self.server.client().list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def bucket(s3_server, s3_storage_options, settings, tmp_path) -> Iterator[Bucket]:
    """A new bucket, the default storage of this test; MEDIA_ROOT points at a directory that must stay empty."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3_server.client().create_bucket(Bucket=name)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**s3_storage_options, "bucket_name": name}}}
    yield Bucket(name, s3_server)
    assert not Path(settings.MEDIA_ROOT).exists(), "a file went to the local MEDIA_ROOT instead of the bucket"


def _post_import(api: Any, content: bytes, name: str = "people.csv", source: str = "bucket") -> Any:
    return api.post("/api/v1/imports/", {"file": ContentFile(content, name=name), "kind": "persons",
                                         "mode": "partial", "source": source}, format="multipart")


def _finished(api: Any, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(f"/api/v1/imports/{job_id}/").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"the import did not finish in {timeout:.0f} s: {body}")


@pytest.mark.django_db(transaction=True)
def test_an_import_is_stored_in_the_bucket_and_a_worker_process_runs_it_from_there(
        bucket, world, client_for, investigator, settings):
    api = client_for(investigator)
    content = persons_csv(GOOD + BAD)
    with worker_process(**bucket.server.environment(bucket.name)) as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix  # the job's run, sent after its commit, reaches this worker
        response = _post_import(api, content)
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        body = _finished(api, job_id)
    assert (body["status"], body["created"], body["failed_rows"], body["total_rows"]) == ("succeeded", 3, 2, 5), body
    job = ImportJob.objects.get(pk=job_id)
    assert bucket.keys() == [job.file.name] and job.file.name.startswith("imports/")
    assert bucket.read(job.file.name) == content
    assert job.sha256 == hashlib.sha256(content).hexdigest()  # hashed by the worker, reading from the bucket

    listed = api.get(f"/api/v1/imports/{job_id}/errors/").json()
    errors = listed["results"] if isinstance(listed, dict) else listed
    as_csv = api.get(f"/api/v1/imports/{job_id}/errors.csv/")
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.getvalue().decode())))  # streamed
    assert rows[0] == ["row", "field", "message", "values"]
    assert [(int(r), f) for r, f, _, _ in rows[1:]] == [(e["row"], e["field"]) for e in errors]
    assert {int(r) for r, _, _, _ in rows[1:]} == {4, 5}


def test_a_workbook_is_read_from_the_bucket_by_the_seeking_reader(
        bucket, world, client_for, investigator, eager, django_capture_on_commit_callbacks):
    api = client_for(investigator)
    content = xlsx(PERSON_COLUMNS, GOOD)
    with django_capture_on_commit_callbacks(execute=True):  # the job runs in this process on commit
        response = _post_import(api, content, name="people.xlsx", source="workbook")
    assert response.status_code == 202, response.content
    body = api.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert (body["status"], body["created"], body["failed_rows"]) == ("succeeded", 3, 0), body
    job = ImportJob.objects.get(pk=body["id"])
    assert bucket.keys() == [job.file.name] and bucket.read(job.file.name) == content


def test_two_uploads_named_alike_are_two_objects(bucket, world, client_for, investigator):
    api = client_for(investigator)
    first, second = persons_csv(GOOD[:1]), persons_csv(GOOD[1:])
    ids = [_post_import(api, content).json()["id"] for content in (first, second)]
    names = [ImportJob.objects.get(pk=pk).file.name for pk in ids]
    assert names[0] != names[1] and bucket.keys() == sorted(names)
    assert [bucket.read(name) for name in names] == [first, second]


def test_evidence_is_stored_in_the_bucket_and_downloaded_back_byte_identical(bucket, world, client_for, investigator):
    api = client_for(investigator)
    case = factories.case(world.a, world.a1, lead=investigator)
    content = os.urandom(9 * 1024 * 1024 + 17)  # past the multipart threshold of an upload, and many read chunks
    digest = hashlib.sha256(content).hexdigest()
    response = api.post(f"/api/v1/cases/{case.pk}/evidence/", {
        "file": SimpleUploadedFile("manifest.bin", content, "application/octet-stream"), "title": "Manifest",
        "kind": "document"}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["sha256"], body["size"]) == (digest, len(content))
    evidence = Evidence.objects.get(pk=body["id"])
    assert bucket.keys() == [evidence.file.name] and evidence.file.name.startswith("evidence/")
    assert bucket.read(evidence.file.name) == content

    download = api.get(f"/api/v1/cases/{case.pk}/evidence/{body['id']}/download/")
    assert download.status_code == 200
    assert not isinstance(download.file_to_stream, S3File)  # the object's body as it arrives, not a copy made first
    received = b"".join(download.streaming_content)
    assert received == content and hashlib.sha256(received).hexdigest() == digest
    assert download["ETag"] == f'"{digest}"' and download["Content-Length"] == str(len(content))
    assert 'filename="manifest.bin"' in download["Content-Disposition"]
    assert list(CustodyEntry.objects.filter(evidence=evidence).order_by("at").values_list("action", flat=True)) == [
        "upload", "download"]
