"""The OpenAPI schema's one AutoSchema: every operation documents the errors it can really answer, once, here.

drf-spectacular documents the success of an operation from its serializer; what the base views, the exception
handler, the parsers and the throttles add to every operation is declared here instead of on each view
(`REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`). An operation's own `@extend_schema(responses=...)` still wins for the
codes it names (a more precise description); the codes below are added where it names none.

| code | on | why |
| --- | --- | --- |
| 400 | writes; operations with query parameters other than paging | field errors (DRF's shape) or `{"detail"}` |
| 401 | every operation | no, a bad, expired or revoked token (wrong credentials at `/auth/tokens/`) |
| 403 | writes; lists of archivable rows (`include_archived`); views with a `read_refusal` | the role may not; CSRF |
| 404 | operations with a path parameter; paginated lists (a page past the end) | not there, or not visible |
| 304 | a detail read of a versioned record (`If-None-Match`) | the version you hold is current |
| 409 | `conflict_actions` of a view; POSTs (`Idempotency-Key`) | a forbidden state change; a key in use |
| 412 | PUT, PATCH and DELETE of a versioned record (`If-Match`) | a stale `If-Match` |
| 413 | operations with a request body | over `API_MAX_JSON_BODY`, `IMPORT_MAX_BYTES`, `EVIDENCE_MAX_BYTES` |
| 415 | operations with a request body | a body in a media type the operation does not take |
| 422 | every POST (`Idempotency-Key`) | the key was used with another request |
| 429 | every operation | throttled (`Retry-After` says when to come back) |

Headers: the `If-Match` request header on PUT, PATCH and DELETE of a versioned record; the `ETag` response header
(`"<version>"`) on its detail, its update and its creation; `If-None-Match` on that detail; `Idempotency-Key` on every
POST (its answers may carry `Idempotent-Replayed: true`); `Location` on a creation. Query parameters: `fields` and
`brief` on every list and detail (core.api.http).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from core.api.http import BRIEF_PARAMETER, FIELDS_PARAMETER, IDEMPOTENCY_KEY, IF_NONE_MATCH, SELECTION_ACTIONS
from core.idempotency import REPLAYED

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# The media types of the exports (core.api.export's renderers), whose bodies are files, not the list's JSON.
RENDERED = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "ftm": "application/x-ndjson"}
PAGING_PARAMETERS = {"page", "page_size"}

IF_MATCH = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description='`"<version>"` as the ETag of the record read: a version that is no longer current is a 412 and '
                "changes nothing. Without it the write is unconditional.",
)
ETAG = OpenApiParameter(
    "ETag", {"type": "string", "pattern": r'^"[0-9]+"$'}, OpenApiParameter.HEADER, required=True, response=[200],
    description='`"<version>"`: send it back as `If-Match` to write only over the version you read.',
)
RETRY_AFTER = {"schema": {"type": "string", "pattern": "^[0-9]+$"},
               "description": "Seconds to wait before trying again."}
WWW_AUTHENTICATE = {"schema": {"type": "string"}, "description": "`Token` when a token is missing or bad."}

ERROR_SCHEMA = {
    "type": "object",
    "description": "What went wrong, in words.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Every bad field by name, each with its messages (nested fields nest the same way; "
                   "`non_field_errors` for the body as a whole); or `{\"detail\": ...}` for a body that is not "
                   "JSON at all.",
    # Each form complete (an array's `items`, an object's `additionalProperties`): a client generator drops a union
    # with an incomplete member, and with it this schema and every 400 that names it.
    "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object", "additionalProperties": {}},
                                       {"type": "string"}]},
}

DESCRIPTIONS = {
    400: "Invalid input: each bad field (or query parameter) named with its messages.",
    401: "Authentication missing or invalid: no token, a bad, expired or revoked one.",
    403: "You may not do this: your role or clearance, the record is another agency's (read-only share), or a "
         "session request without its CSRF token.",
    404: "No such record, or it is not visible to you (another agency's record is a 404, never a 403); or a "
         "page past the end of a list.",
    409: "A forbidden state change; or a request with the same `Idempotency-Key` is still running (retry it).",
    412: "Stale `If-Match`: the record changed since you read it; nothing was changed.",
    413: "The request body (or the uploaded file) is over the limit.",
    415: "The body's media type is not one this operation takes.",
    422: "This `Idempotency-Key` was used with another request (method, path or body): use a new key.",
    429: "Too many requests: throttled; `Retry-After` says when to try again.",
    503: "The database is unavailable for a moment; `Retry-After` says when to try again. A write answered 503 was "
         "almost always not made, but may have been if the connection broke just after its commit: read before "
         "retrying a create.",
}


def model_has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except (AttributeError, FieldDoesNotExist):
        return False
    return True


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema with the project's error responses and concurrency headers on every operation."""

    # --- what the operation is ---------------------------------------------------------------------------

    def _model(self) -> Any:
        queryset = getattr(self.view, "queryset", None)
        return getattr(queryset, "model", None)

    def _action(self) -> str | None:
        return getattr(self.view, "action", None)

    def _versioned(self) -> bool:
        return model_has_field(self._model(), "version")

    def _writes_versioned(self) -> bool:
        """A PUT, PATCH or DELETE of the base viewset on a versioned record: it checks If-Match and answers ETag."""
        from core.api.viewsets import BaseModelViewSet

        return (self.method in ("PUT", "PATCH", "DELETE") and isinstance(self.view, BaseModelViewSet)
                and self._versioned())

    def _sends_etag(self) -> int | None:
        """The success code that carries an ETag, if any: a detail read, an update or a creation of the base views."""
        from core.api.viewsets import BaseModelViewSet, ScopedViewSetMixin

        if not self._versioned() or not isinstance(self.view, ScopedViewSetMixin):
            return None
        action = self._action()
        if action == "retrieve":
            return 200
        if isinstance(self.view, BaseModelViewSet):
            return {"create": 201, "update": 200, "partial_update": 200}.get(action or "")
        return None

    def _habits(self) -> bool:
        """The view answers fields, brief, Idempotency-Key, Location and If-None-Match (core.api.http)."""
        from core.api.http import HttpHabitsMixin

        return isinstance(self.view, HttpHabitsMixin)

    def _idempotent(self) -> bool:
        return self.method == "POST" and self._habits() and self._authenticates()

    def _lists_archivable(self) -> bool:
        from core.api.viewsets import ScopedViewSetMixin

        return (self._action() == "list" and isinstance(self.view, ScopedViewSetMixin)
                and model_has_field(self._model(), "archived"))

    def _exports(self) -> tuple[str, ...]:
        """The export formats of a list (core.api.export), or none."""
        from core.api.export import ExportMixin

        if self._action() == "list" and isinstance(self.view, ExportMixin):
            return self.view.export_formats
        return ()

    def _authenticates(self) -> bool:
        return bool(getattr(self.view, "authentication_classes", None))

    # --- fields ------------------------------------------------------------------------------------------

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        """A read-only relation declared on a serializer (`created_by` as a username) is null where its model field
        may be: drf-spectacular reads nullability from the field's arguments only, and a read-only field has none."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.RelatedField) and field.read_only and "$ref" not in schema:
            model = getattr(getattr(field.parent, "Meta", None), "model", None)
            try:
                nullable = model is not None and model._meta.get_field(field.source).null
            except FieldDoesNotExist:
                nullable = False
            if nullable:
                schema["nullable"] = True
        return schema

    # --- parameters and headers --------------------------------------------------------------------------

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._writes_versioned():
            parameters.append(IF_MATCH)
        etag_code = self._sends_etag()
        if etag_code is not None:
            parameters.append(OpenApiParameter(ETAG.name, ETAG.type, ETAG.location, required=True,
                                               description=ETAG.description, response=[etag_code]))
        if self._habits() and self._action() in SELECTION_ACTIONS and self.method == "GET":
            parameters += [FIELDS_PARAMETER, BRIEF_PARAMETER]
        if etag_code == 200 and self._action() == "retrieve":
            parameters.append(IF_NONE_MATCH)
        if self._idempotent():
            parameters.append(IDEMPOTENCY_KEY)
            parameters.append(OpenApiParameter(
                REPLAYED, {"type": "string", "enum": ["true"]}, OpenApiParameter.HEADER, response=True,
                description="`true` on an answer kept from the first request with this `Idempotency-Key`."))
        if self._habits() and self.method == "POST" and self._action() == "create":
            parameters.append(OpenApiParameter(
                "Location", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[201, 202],
                description="The created record's detail: its URL (a started run's, its path)."))
        if self.method == "GET":
            # A view's own query parameters, which it also holds its requests to (core.api.filters).
            parameters += list(getattr(self.view, "query_parameters", ()))
        if self._lists_archivable():
            parameters.append(OpenApiParameter(
                "include_archived", OpenApiTypes.BOOL,
                description="`true` (or `1`, `yes`) lists archived records too: supervisors, auditors and agency "
                            "admins; anyone else gets a 403. `false` (or any other value) lists the records that are "
                            "not archived.",
            ))
        formats = self._exports()
        if formats:
            parameters.append(OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["json", *formats],
                description="`json` (the default) answers a page; `csv` and `xlsx` export the whole filtered list "
                            "(the same filters and ordering), streamed, with the columns the bulk import reads"
                            + ("; `ftm` as FollowTheMoney JSON lines" if "ftm" in formats else "")
                            + ". An export is recorded in the audit trail (`export`).",
            ))
        return parameters

    # --- responses ---------------------------------------------------------------------------------------

    def _error_codes(self) -> list[int]:
        has_body = bool(self._get_request_body())
        query = {p["name"] for p in self._get_parameters() if p["in"] == "query"}
        has_path = any(p["in"] == "path" for p in self._get_parameters())
        action = self._action()

        codes = [401, 429, 503]
        if self.method in UNSAFE_METHODS or query - PAGING_PARAMETERS:
            codes.append(400)
        if (self.method in UNSAFE_METHODS and self._authenticates()) or self._lists_archivable() \
                or getattr(self.view, "read_refusal", None):
            codes.append(403)
        if has_path or query & PAGING_PARAMETERS:
            codes.append(404)
        if (action is not None and action in getattr(self.view, "conflict_actions", ())) or self._idempotent():
            codes.append(409)
        if self._writes_versioned():
            codes.append(412)
        if has_body:
            codes += [413, 415]
        if self._idempotent():
            codes.append(422)
        return sorted(set(codes))

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
        self.registry.register_on_missing(component)
        return component.ref

    def _error_response(self, code: int) -> dict[str, Any]:
        schema = (self._component("FieldErrors", FIELD_ERRORS_SCHEMA) if code == 400
                  else self._component("Error", ERROR_SCHEMA))
        response: dict[str, Any] = {"content": {"application/json": {"schema": schema}},
                                    "description": DESCRIPTIONS.get(code, "")}
        if code == 401:
            response["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
        elif code in (429, 503):
            response["headers"] = {"Retry-After": RETRY_AFTER}
        return response

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for error in self._error_codes():
            responses.setdefault(str(error), self._error_response(error))
        if self._sends_etag() == 200 and self._action() == "retrieve":
            responses.setdefault("304", {
                "description": "Not modified: `If-None-Match` names the current version (no body).",
                "headers": {"ETag": {"schema": ETAG.type, "description": ETAG.description, "required": True}}})
        exported = {RENDERED[fmt] for fmt in self._exports()}
        if exported and "200" in responses:
            for media_type, content in responses["200"].get("content", {}).items():
                if media_type.split(";")[0] in exported:
                    content["schema"] = {"type": "string", "format": "binary"}
        for code, declared in responses.items():
            if code >= "400" and "content" not in declared:
                # Declared by the view with a description only: the body is still the project's error shape.
                standard = self._error_response(int(code))
                responses[code] = {**standard, **declared, "content": standard["content"]}
        return dict(sorted(responses.items()))


def selectable_responses(result: dict[str, Any], generator: Any, request: Any, public: Any) -> dict[str, Any]:
    """A postprocessing hook: where `fields` or `brief` may be given, a record answered is either the whole record
    or `<Record>Fields`, the same properties none of them required (and `url`), so that a selection's answer is as
    the schema says."""
    schemas = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        operation = operations.get("get")
        if operation is None or not any(p["name"] == "brief" and p["in"] == "query"
                                        for p in operation.get("parameters", [])):
            continue
        for media in operation["responses"].get("200", {}).get("content", {}).values():
            ref = media["schema"].get("$ref", "")
            component = schemas.get(ref.rsplit("/", 1)[-1], {})
            results = component.get("properties", {}).get("results")
            if results is not None:  # a page: its records
                if "$ref" in results.get("items", {}):
                    results["items"] = _whole_or_selected(schemas, results["items"]["$ref"])
            elif ref:
                media["schema"] = _whole_or_selected(schemas, ref)
    return result


def _whole_or_selected(schemas: dict[str, Any], ref: str) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    selected = f"{name}Fields"
    if selected not in schemas:
        whole = schemas[name]
        schemas[selected] = {
            "type": "object",
            "description": f"{name} with `fields` or `brief`: only the fields asked for (brief: `id`, the label and "
                           "`url`).",
            "properties": {**whole.get("properties", {}),
                           "url": {"type": "string", "format": "uri", "readOnly": True,
                                   "description": "The record's detail (brief only)."}},
        }
    return {"anyOf": [{"$ref": ref}, {"$ref": f"#/components/schemas/{selected}"}]}
