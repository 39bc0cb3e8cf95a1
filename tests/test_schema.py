"""The published OpenAPI schema documents what the server really answers (API.md § Basics, errors and concurrency).

These pin the facts `make attack` (schemathesis against the served schema) relies on, so a schema that drifts from
the server fails here, in the fast suite, before the attack run finds it.
"""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from imports.models import ImportJob

from . import factories

V1 = "/api/v1"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return schema["paths"][V1 + path][method]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def every_operation(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_a_case_update_documents_every_error_it_can_answer(schema):
    responses = operation(schema, "patch", "/cases/{id}/")["responses"]
    assert {"200", "400", "401", "403", "404", "409", "412", "413", "415", "429"} <= set(responses)
    for code in ("401", "403", "404", "409", "412", "413", "415", "429"):
        body = resolve(schema, responses[code]["content"]["application/json"]["schema"])
        assert body["required"] == ["detail"], code
    field_errors = resolve(schema, responses["400"]["content"]["application/json"]["schema"])
    assert field_errors["type"] == "object" and "additionalProperties" in field_errors
    assert "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_writes_of_a_versioned_record_take_if_match(schema, method):
    for path in ("/cases/{id}/", "/persons/{id}/", "/cases/{case_pk}/notes/{id}/", "/shipments/{id}/"):
        op = operation(schema, method, path)
        headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
        assert "If-Match" in headers, (method, path)
        assert not headers["If-Match"].get("required", False)
        assert "412" in op["responses"]


def test_details_updates_and_creations_declare_their_etag(schema):
    for method, path, code in (("get", "/cases/{id}/", "200"), ("patch", "/cases/{id}/", "200"),
                               ("post", "/cases/", "201"), ("get", "/imports/{id}/", "200"),
                               ("get", "/xref/matches/{id}/", "200"), ("post", "/xref/matches/{id}/decision/", "200"),
                               ("patch", "/alerts/{id}/", "200")):
        etag = operation(schema, method, path)["responses"][code]["headers"]["ETag"]
        assert etag["required"] is True, (method, path)
        assert etag["schema"]["pattern"] == '^"[0-9]+"$'
    assert "If-Match" in {p["name"] for p in operation(schema, "post", "/xref/matches/{id}/decision/")["parameters"]}


def test_every_operation_documents_401_429_and_503_and_every_path_parameter_404(schema):
    for method, path, op in every_operation(schema):
        assert {"401", "429", "503"} <= set(op["responses"]), (method, path)
        assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
        if method in ("post", "put", "patch"):
            assert "400" in op["responses"], (method, path)


def test_import_errors_are_a_page_of_error_rows_not_an_import_job(schema):
    content = operation(schema, "get", "/imports/{id}/errors/")["responses"]["200"]["content"]
    page = resolve(schema, content["application/json"]["schema"])
    row = resolve(schema, page["properties"]["results"]["items"])
    assert set(row["properties"]) == {"row", "field", "message", "values"}
    assert row["properties"]["values"]["type"] == "object"  # the row's values by column
    assert "text/csv" in content
    assert set(operation(schema, "get", "/imports/{id}/errors.csv/")["responses"]["200"]["content"]) == {"text/csv"}


def test_import_start_and_cancel_answer_what_the_server_sends(schema):
    assert "202" in operation(schema, "post", "/imports/")["responses"]
    assert "201" not in operation(schema, "post", "/imports/")["responses"]
    cancel = operation(schema, "post", "/imports/{id}/cancel/")
    assert "requestBody" not in cancel
    assert {"200", "202", "409"} <= set(cancel["responses"])


def test_the_timeline_is_events_and_notes_told_apart_by_their_type(schema):
    op = operation(schema, "get", "/cases/{id}/timeline/")
    assert {p["name"] for p in op["parameters"]} == {"id", "page", "page_size"}  # the case's filters do not apply
    page = resolve(schema, op["responses"]["200"]["content"]["application/json"]["schema"])
    entry = resolve(schema, page["properties"]["results"]["items"])
    assert entry["discriminator"]["propertyName"] == "type"
    assert set(entry["discriminator"]["mapping"]) == {"event", "note"}
    event, note = (resolve(schema, {"$ref": entry["discriminator"]["mapping"][kind]}) for kind in ("event", "note"))
    # An event has its changes and no body, a note its body and no changes: each requires what it always has.
    assert "changes" in event["required"] and "body" not in event["properties"]
    assert "body" in note["required"] and "changes" not in note["properties"]
    assert resolve(schema, event["properties"]["type"])["enum"] == ["event"]
    assert resolve(schema, note["properties"]["type"])["enum"] == ["note"]


def test_boolean_filters_are_booleans(schema):
    shipments = {p["name"]: p["schema"] for p in operation(schema, "get", "/shipments/")["parameters"]}
    assert shipments["has_licence"] == {"type": "boolean"}
    assert shipments["include_archived"] == {"type": "boolean"}
    commodities = {p["name"]: p["schema"] for p in operation(schema, "get", "/commodities/")["parameters"]}
    assert commodities["licence_required"] == {"type": "boolean"}


def test_json_operations_take_json_only_and_uploads_multipart_only(schema):
    uploads = {("post", V1 + "/imports/"), ("post", V1 + "/cases/{case_pk}/evidence/")}
    for method, path, op in every_operation(schema):
        if "requestBody" in op:
            expected = ["multipart/form-data"] if (method, path) in uploads else ["application/json"]
            assert list(op["requestBody"]["content"]) == expected, (method, path)
    edit = operation(schema, "patch", "/cases/{case_pk}/evidence/{id}/")["requestBody"]["content"]
    assert "file" not in resolve(schema, edit["application/json"]["schema"])["properties"]


def test_reads_that_can_be_refused_document_403(schema):
    for path in ("/audit/", "/audit/verify/", "/cases/{case_pk}/shares/", "/cases/"):
        assert "403" in operation(schema, "get", path)["responses"], path
    assert "include_archived" in {p["name"] for p in operation(schema, "get", "/cases/")["parameters"]}
    assert "403" not in operation(schema, "get", "/auth/me/")["responses"]


def test_a_case_made_by_no_user_has_a_null_creator(schema):
    assert resolve(schema, {"$ref": "#/components/schemas/Case"})["properties"]["created_by"]["nullable"] is True


def test_an_import_job_detail_carries_its_etag(world, client_for):
    job = ImportJob.objects.create(agency=world.a, kind="persons", file="imports/x.csv")
    investigator = factories.user(world.a, "investigator", world.a1)
    response = client_for(investigator).get(f"{V1}/imports/{job.pk}/")
    assert response.status_code == 200
    assert response["ETag"] == f'"{job.version}"'
