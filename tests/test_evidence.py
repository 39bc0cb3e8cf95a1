"""Evidence from the client's side: uploads hashed on the way in, the size limit, downloads in custody and audit."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from cases.models import CustodyEntry, Evidence

from . import factories

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Files go to a temporary MEDIA_ROOT, and uploads stream through a temporary directory we can watch."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR)
    return tmp_path


def files_under(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, _, names in os.walk(path) for name in names)


@pytest.fixture
def case(world, investigator):
    return factories.case(world.a, world.a1, lead=investigator)


def url(case, *rest):
    return "/".join([f"/api/v1/cases/{case.pk}/evidence", *map(str, rest), ""])


def upload(client, case, content=PDF, name="bill-of-lading.pdf", content_type="application/pdf", **fields):
    data = {"file": SimpleUploadedFile(name, content, content_type), "title": "Bill of lading", "kind": "document",
            **fields}
    return client.post(url(case), data, format="multipart")


def download(client, case, evidence_id, **headers):
    response = client.get(url(case, evidence_id, "download"), **headers)
    # Consuming the stream closes the response (and its file) as a WSGI server would.
    body = b"".join(response.streaming_content) if response.status_code == 200 else None
    return response, body


# --- upload --------------------------------------------------------------------------------


def test_upload_returns_hash_size_and_custody(api, case, investigator, media):
    response = upload(api, case)
    assert response.status_code == 201, response.json()
    body = response.json()
    for name in ("id", "created_at", "updated_at", "version", "archived", "case", "title", "kind", "sha256", "size",
                 "custody", "original_name", "content_type", "uploaded_by"):
        assert name in body, name
    assert "file" not in body  # files leave only through …/download/, where custody is logged
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["size"] == len(PDF)
    assert (body["title"], body["kind"], body["case"]) == ("Bill of lading", "document", str(case.pk))
    assert (body["original_name"], body["content_type"]) == ("bill-of-lading.pdf", "application/pdf")
    assert body["uploaded_by"] == investigator.username
    assert [(c["by"], c["action"]) for c in body["custody"]] == [(investigator.username, "upload")]
    assert response["ETag"] == '"1"'
    evidence = Evidence.objects.get(pk=body["id"])
    stored = files_under(media / "media")
    assert stored == [evidence.file.name] and stored[0].startswith("evidence/")
    assert "bill-of-lading" not in stored[0]  # stored under the evidence id, not a client-chosen name
    with open(media / "media" / stored[0], "rb") as handle:
        assert handle.read() == PDF
    event = AuditEvent.objects.get(object_id=body["id"], action="create")
    assert event.case_id == case.pk and event.changes["sha256"][1] == body["sha256"]
    assert api.get(url(case, body["id"])).json() == body


def test_a_large_upload_is_hashed_as_it_streams(api, case, media, settings):
    # Larger than Django's in-memory threshold: it goes through a temporary file, hashed chunk by chunk.
    content = os.urandom(settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 123_457)
    body = upload(api, case, content=content, name="scan.tif", content_type="image/tiff").json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest() and body["size"] == len(content)
    assert files_under(media / "upload-tmp") == []


@pytest.mark.parametrize(
    ("data", "bad"),
    [
        ({"title": "no file"}, "file"),
        ({"file": SimpleUploadedFile("empty.txt", b""), "title": "empty"}, "file"),
        ({"file": SimpleUploadedFile("a.txt", b"x")}, "title"),
        ({"file": SimpleUploadedFile("a.txt", b"x"), "title": "x" * 301}, "title"),
        ({"file": SimpleUploadedFile("a.txt", b"x"), "title": "t", "kind": "k" * 51}, "kind"),
        ({"file": SimpleUploadedFile("a.txt", b"x"), "title": "t", "sha256": "0" * 64, "colour": "red"}, "colour"),
        ({"file": "not a file", "title": "t"}, "file"),
    ],
)
def test_bad_uploads_are_400_on_that_field(api, case, media, data, bad):
    response = api.post(url(case), data, format="multipart")
    assert response.status_code == 400, response.json()
    assert bad in response.json()
    assert not Evidence.objects.exists() and files_under(media / "media") == []


def test_an_upload_is_multipart_only(api, case):
    response = api.post(url(case), {"title": "t"}, format="json")
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "application/json" in request.'}
    assert not Evidence.objects.exists()


def test_read_only_fields_sent_are_ignored(api, case):
    body = upload(api, case, sha256="0" * 64, size=1, version=7).json()
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["size"] == len(PDF) and body["version"] == 1


# --- the size limit ------------------------------------------------------------------------


def test_a_file_at_the_limit_is_accepted(api, case, settings):
    settings.EVIDENCE_MAX_BYTES = 1000
    assert upload(api, case, content=b"a" * 1000).status_code == 201


@pytest.mark.parametrize("size", [1001, 5000, 1_000_000])
def test_over_the_limit_is_413_and_nothing_is_written(api, case, settings, media, size):
    # 1001 and 5000 bytes are caught while streaming; a megabyte already by its Content-Length.
    settings.EVIDENCE_MAX_BYTES = 1000
    response = upload(api, case, content=b"a" * size)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json") and "1000 bytes" in response.json()["detail"]
    early = size > 1000 + 64 * 1024  # refused on its Content-Length, before a byte of it is read
    assert response.json()["detail"].startswith("The request is" if early else "The file is over the limit")
    assert not Evidence.objects.exists() and not CustodyEntry.objects.exists()
    assert not AuditEvent.objects.filter(object_type="evidence").exists()
    assert files_under(media / "media") == []
    assert files_under(media / "upload-tmp") == []


def test_a_failure_after_storing_leaves_no_file(api, case, media, monkeypatch):
    from core import services

    def broken(*args, **kwargs):
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr(services, "audit_create", broken)  # evidence_create audits the upload it stored
    response = upload(api, case)
    assert response.status_code == 500 and "detail" in response.json()
    assert not Evidence.objects.exists() and files_under(media / "media") == []


# --- download, custody, audit --------------------------------------------------------------


def test_each_download_streams_the_file_grows_custody_and_is_audited(api, client_for, world, case, investigator):
    evidence_id = upload(api, case).json()["id"]
    sha = hashlib.sha256(PDF).hexdigest()
    colleague = factories.user(world.a, "viewer", world.a1, username="viewer-a1")
    for client in (api, client_for(colleague)):
        response, content = download(client, case, evidence_id)
        assert response.status_code == 200
        assert content == PDF
        assert response["Content-Disposition"] == 'attachment; filename="bill-of-lading.pdf"'
        assert response["Content-Type"] == "application/pdf" and response["Content-Length"] == str(len(PDF))
        assert response["ETag"] == f'"{sha}"'
        assert response["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(PDF).digest()).decode()
        assert "no-store" in response["Cache-Control"]
    custody = api.get(url(case, evidence_id)).json()["custody"]
    assert [(c["action"], c["by"]) for c in custody] == [
        ("upload", investigator.username), ("download", investigator.username), ("download", "viewer-a1")]
    assert custody[0]["at"] <= custody[1]["at"] <= custody[2]["at"]
    exports = AuditEvent.objects.filter(object_id=evidence_id, action="export").order_by("seq")
    assert [(e.actor, e.case_id, e.chain) for e in exports] == [
        (investigator.username, case.pk, str(world.a.pk)), ("viewer-a1", case.pk, str(world.a.pk))]
    timeline = api.get(f"/api/v1/cases/{case.pk}/timeline/").json()["results"]
    assert sum(1 for e in timeline if e["action"] == "export") == 2


def test_download_answers_whatever_the_client_accepts(api, case):
    evidence_id = upload(api, case).json()["id"]
    response, content = download(api, case, evidence_id, HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200 and content == PDF
    missing = api.get(url(case, "00000000-0000-0000-0000-000000000000", "download"),
                      HTTP_ACCEPT="application/octet-stream")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_a_name_with_odd_characters_downloads_safely(api, case, media):
    body = upload(api, case, name="发票 \"final\".pdf").json()
    stored = files_under(media / "media")[0]
    assert stored.endswith(".pdf") and "发票" not in stored
    response, content = download(api, case, body["id"])
    assert content == PDF
    assert "filename*=utf-8''" in response["Content-Disposition"]


def test_head_shows_the_headers_and_logs_nothing(api, case):
    evidence_id = upload(api, case).json()["id"]
    response = api.head(url(case, evidence_id, "download"))
    assert response.status_code == 200 and response.content == b""
    assert response["Content-Length"] == str(len(PDF)) and response["ETag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'
    assert CustodyEntry.objects.filter(evidence_id=evidence_id).count() == 1
    assert not AuditEvent.objects.filter(object_id=evidence_id, action="export").exists()


def test_a_very_long_name_keeps_its_extension(api, case):
    body = upload(api, case, name="x" * 300 + ".pdf").json()
    assert len(body["original_name"]) == 255 and body["original_name"].endswith(".pdf")


# --- access --------------------------------------------------------------------------------


def test_another_agencys_evidence_is_404(api, world):
    theirs = factories.case(world.b, world.b1)
    evidence = factories.evidence(theirs, factories.user(world.b, "investigator", world.b1))
    assert api.get(url(theirs)).status_code == 404
    assert api.get(url(theirs, evidence.pk)).status_code == 404
    assert download(api, theirs, evidence.pk)[0].status_code == 404
    assert upload(api, theirs).status_code == 404
    assert api.patch(url(theirs, evidence.pk), {"title": "x"}, format="json").status_code == 404
    assert api.delete(url(theirs, evidence.pk)).status_code == 404
    assert CustodyEntry.objects.filter(evidence=evidence).count() == 1  # the upload only


def test_evidence_is_reached_only_through_its_own_case(api, world, case, investigator):
    other = factories.case(world.a, world.a1, lead=investigator)
    evidence = factories.evidence(other, investigator)
    assert api.get(url(case, evidence.pk)).status_code == 404
    assert download(api, case, evidence.pk)[0].status_code == 404
    assert api.get(url(other, evidence.pk)).status_code == 200


def test_an_invisible_case_of_ones_agency_is_404(api, world, media):
    hidden = factories.case(world.a, world.a2)
    assert api.get(url(hidden)).status_code == 404
    assert upload(api, hidden).status_code == 404
    assert files_under(media / "media") == []


def test_a_case_shared_read_only_lists_and_downloads_but_does_not_upload(api, world, investigator, media):
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "read")
    evidence = factories.evidence(shared, factories.user(world.b, "investigator", world.b1), content=b"their file")
    assert [e["id"] for e in api.get(url(shared)).json()["results"]] == [str(evidence.pk)]
    assert api.get(url(shared, evidence.pk)).status_code == 200
    response, content = download(api, shared, evidence.pk)
    assert response.status_code == 200 and content == b"their file"
    assert CustodyEntry.objects.filter(evidence=evidence, action="download", by=investigator).count() == 1
    # The owning agency's audit chain records who took a copy.
    assert AuditEvent.objects.get(object_id=str(evidence.pk), action="export").chain == str(world.b.pk)
    stored = files_under(media / "media")
    assert upload(api, shared).status_code == 403
    assert api.patch(url(shared, evidence.pk), {"title": "x"}, format="json").status_code == 403
    assert api.delete(url(shared, evidence.pk)).status_code == 403
    assert files_under(media / "media") == stored and Evidence.objects.count() == 1


def test_a_case_shared_read_write_takes_uploads(api, world):
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "write")
    assert upload(api, shared).status_code == 201


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("analyst", 403), ("auditor", 403),
                                                ("investigator", 201), ("supervisor", 201)])
def test_who_may_upload(client_for, world, case, role, expected):
    response = upload(client_for(factories.user(world.a, role, world.a1)), case)
    assert response.status_code == expected


def test_anonymous_is_401(client_for, case):
    assert client_for(None).get(url(case)).status_code == 401
    assert upload(client_for(None), case).status_code == 401


# --- edits, ETag, archive ------------------------------------------------------------------


def test_title_and_kind_may_change_the_file_may_not(api, case):
    body = upload(api, case).json()
    response = api.patch(url(case, body["id"]), {"title": "Bill of lading, certified", "kind": "certified copy"},
                         format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "Bill of lading, certified" and response.json()["version"] == 2
    assert response.json()["sha256"] == body["sha256"]
    # An edit is JSON: a file in it is an unknown field, and a multipart edit is refused for its media type.
    replaced = api.patch(url(case, body["id"]), {"file": "b3RoZXI="}, format="json")
    assert replaced.status_code == 400 and replaced.json() == {"file": ["Unknown field."]}
    replaced = api.patch(url(case, body["id"]), {"file": SimpleUploadedFile("other.pdf", b"other")},
                         format="multipart")
    assert replaced.status_code == 415 and "detail" in replaced.json()
    assert Evidence.objects.get(pk=body["id"]).sha256 == hashlib.sha256(PDF).hexdigest()


def test_etag_and_if_match(api, case):
    body = upload(api, case).json()
    assert api.get(url(case, body["id"]))["ETag"] == '"1"'
    ok = api.patch(url(case, body["id"]), {"title": "t2"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    assert api.patch(url(case, body["id"]), {"title": "t3"}, format="json", HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(url(case, body["id"]), HTTP_IF_MATCH='"1"').status_code == 412
    assert Evidence.objects.get(pk=body["id"]).title == "t2"


def test_delete_archives_and_keeps_the_file(api, client_for, world, case, media):
    body = upload(api, case).json()
    assert api.delete(url(case, body["id"])).status_code == 204
    evidence = Evidence.objects.get(pk=body["id"])
    assert evidence.archived is True and files_under(media / "media") == [evidence.file.name]
    assert api.get(url(case)).json()["count"] == 0
    assert api.get(url(case), {"include_archived": "true"}).status_code == 403
    supervisor = client_for(factories.user(world.a, "supervisor", world.a1))
    listed = supervisor.get(url(case), {"include_archived": "true"}).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]] and listed[0]["archived"] is True
    assert download(api, case, body["id"])[1] == PDF
    assert AuditEvent.objects.filter(object_id=body["id"], action="archive").exists()


# --- filters and query counts --------------------------------------------------------------


def test_filters(api, case, investigator):
    photo = factories.evidence(case, investigator, content=b"jpeg", name="port.jpg", title="Port photo", kind="photo")
    invoice = factories.evidence(case, investigator, content=b"inv", name="inv.pdf", title="Invoice", kind="document")

    def ids(**params):
        response = api.get(url(case), params)
        assert response.status_code == 200, response.json()
        return sorted(e["id"] for e in response.json()["results"])

    assert ids(kind="photo") == [str(photo.pk)]
    assert ids(sha256=hashlib.sha256(b"inv").hexdigest().upper()) == [str(invoice.pk)]
    assert ids(q="port") == [str(photo.pk)]
    assert ids(q="inv.pdf") == [str(invoice.pk)]
    ordered = [e["id"] for e in api.get(url(case), {"ordering": "title"}).json()["results"]]
    assert ordered == [str(invoice.pk), str(photo.pk)]
    assert api.get(url(case), {"created_after": "soon"}).status_code == 400


def test_list_query_count_is_constant_in_page_size(api, world, case, investigator):
    downloader = factories.user(world.a, "investigator", world.a1)
    for i in range(12):
        evidence = factories.evidence(case, investigator if i % 2 else downloader, content=f"file {i}".encode())
        CustodyEntry.objects.create(evidence=evidence, by=downloader, action="download")

    def queries(page_size):
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(url(case), {"page_size": page_size})
        assert response.status_code == 200 and len(response.json()["results"]) == min(page_size, 12)
        assert all(len(e["custody"]) == 2 for e in response.json()["results"])
        return len(ctx.captured_queries)

    queries(2)  # warm-up
    assert queries(2) == queries(12)
