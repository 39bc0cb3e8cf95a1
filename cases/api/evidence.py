"""Evidence of a case `/api/v1/cases/{id}/evidence/`: uploads hashed as they stream in, downloads logged in custody."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.db.models import Prefetch
from django.http import FileResponse, HttpResponse
from django.utils.http import content_disposition_header
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action

from accounts.models import User
from cases import services
from cases.models import Case, CustodyEntry, Evidence
from cases.services import (
    EvidenceTooLarge,
    evidence_digest_header,
    evidence_record_download,
)
from core.api.filters import BaseFilterSet, several
from core.api.parsers import PayloadTooLarge, UploadParsersMixin
from core.api.serializers import BASE_READ_ONLY, BaseSerializer
from core.storage import open_stream

from .views import CASE_UUID, CaseChildViewSet

# Room in a request body for the form fields and multipart boundaries around the file itself.
FORM_OVERHEAD = 64 * 1024


class EvidenceUploadHandler(TemporaryFileUploadHandler):
    """Streams an upload to a temporary file, hashing it chunk by chunk, and stops it at EVIDENCE_MAX_BYTES.

    Nothing of an upload over the limit is kept: its temporary file is removed and the request fails with 413.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit: int = settings.EVIDENCE_MAX_BYTES
        self.received = 0
        self.hasher = hashlib.sha256()

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > self.limit + FORM_OVERHEAD:
            raise PayloadTooLarge(
                f"The request is {content_length} bytes; evidence files may be at most {self.limit} bytes."
            )

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.hasher = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.upload_interrupted()  # closes and removes the temporary file
            raise PayloadTooLarge(f"The file is over the limit: evidence files may be at most {self.limit} bytes.")
        self.hasher.update(raw_data)
        super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> Any:
        upload: Any = super().file_complete(file_size)
        upload.sha256 = self.hasher.hexdigest()  # read by cases.services.evidence_create
        return upload


class CustodyEntrySerializer(serializers.ModelSerializer):
    """One link of the chain of custody: who did what (`upload`, `download`) when."""

    by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CustodyEntry
        fields = ["at", "by", "action"]
        read_only_fields = fields


class EvidenceSerializer(BaseSerializer):
    """A file of a case: uploaded as multipart `file`, `title`, `kind`; its SHA-256, size and custody log read-only."""

    case: serializers.PrimaryKeyRelatedField[Case] = serializers.PrimaryKeyRelatedField(read_only=True)
    file = serializers.FileField(write_only=True)
    uploaded_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username",
                                                                                   read_only=True)
    custody = CustodyEntrySerializer(many=True, read_only=True)

    class Meta:
        model = Evidence
        fields = [*BASE_READ_ONLY, "case", "title", "kind", "file", "original_name", "content_type", "size",
                  "sha256", "uploaded_by", "custody"]
        read_only_fields = [*BASE_READ_ONLY, "original_name", "content_type", "size", "sha256"]


class EvidenceEditSerializer(EvidenceSerializer):
    """An edit of evidence, in JSON: its title or kind. The file stays as uploaded (`file` is an unknown field)."""

    class Meta(EvidenceSerializer.Meta):
        fields = [name for name in EvidenceSerializer.Meta.fields if name != "file"]


class EvidenceFilterSet(BaseFilterSet):
    q_fields = ("title", "kind", "original_name")

    kind = filters.CharFilter(field_name="kind", lookup_expr="iexact")
    sha256 = filters.CharFilter(field_name="sha256", method="filter_sha256")

    @several
    def filter_sha256(self, queryset, name, value):
        return queryset.filter(sha256__in=[digest.strip().lower() for digest in value])

    class Meta:
        model = Evidence
        fields: list[str] = []


@extend_schema(parameters=[CASE_UUID])
@extend_schema_view(update=extend_schema(responses=EvidenceSerializer),
                    partial_update=extend_schema(responses=EvidenceSerializer))
class EvidenceViewSet(UploadParsersMixin, CaseChildViewSet):
    queryset = Evidence.objects.select_related("case", "uploaded_by").prefetch_related(
        Prefetch("custody", queryset=CustodyEntry.objects.select_related("by"))
    )
    serializer_class = EvidenceSerializer
    filterset_class = EvidenceFilterSet
    create_action = "case.party"
    ordering_fields = ["created_at", "updated_at", "title", "kind", "size"]
    ordering = ["-created_at"]

    def get_serializer_class(self) -> Any:
        return EvidenceEditSerializer if self.action in ("update", "partial_update") else EvidenceSerializer

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body: uploads stream through the hashing, size-limited handler only.
        if request.method == "POST":
            request.upload_handlers = [EvidenceUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        # A download answers whatever the client accepts; its errors stay JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "download")

    def create(self, request, *args, **kwargs):
        self._stored: Evidence | None = None
        try:
            return super().create(request, *args, **kwargs)
        except BaseException:
            # The transaction rolled back after the file was stored: leave nothing behind.
            if self._stored is not None:
                self._stored.file.delete(save=False)
            raise

    def perform_create(self, serializer: Any) -> Any:
        data = serializer.validated_data
        try:
            self._stored = services.evidence_create(case=self.get_case(), upload=data["file"], title=data["title"],
                                                    kind=data.get("kind", ""), actor=self.request.user)
        except EvidenceTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from exc
        return self._stored

    def perform_update(self, serializer: Any) -> Any:
        return services.evidence_update(evidence=serializer.instance, actor=self.request.user,
                                        data=serializer.validated_data)

    def perform_archive(self, instance: Evidence) -> None:
        services.evidence_archive(evidence=instance, actor=self.request.user)

    @extend_schema(
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The file, with the content type it was "
                                                                         "uploaded with."),
            404: OpenApiResponse(description="No such evidence, or not visible to the caller."),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        """The file as uploaded; each download is added to the custody log and audited (`export`)."""
        return evidence_file_response(self.get_object(), actor=request.user, headers_only=request.method == "HEAD")


def evidence_file_response(evidence: Any, *, actor: Any, headers_only: bool = False) -> HttpResponse | FileResponse:
    """The evidence file as an attachment; sending it is logged in the custody log and audited (`export`).

    Shared by the API and the admin, so a download is recorded whichever door it leaves by.
    """
    filename = evidence.original_name or evidence.file.name.rsplit("/", 1)[-1]
    content_type = evidence.content_type or "application/octet-stream"
    response: HttpResponse | FileResponse
    if headers_only:
        # Headers only: nothing leaves, so nothing enters the custody log.
        response = HttpResponse(content_type=content_type)
        response["Content-Length"] = str(evidence.size)
        response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    else:
        handle, size = open_stream(evidence.file)  # from an object store: streamed as it arrives, never copied first
        try:
            evidence_record_download(evidence=evidence, actor=actor)
        except BaseException:
            handle.close()
            raise
        response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
        response["Content-Length"] = str(size)
    response["ETag"] = f'"{evidence.sha256}"'
    response["Digest"] = evidence_digest_header(evidence)
    response["Cache-Control"] = "private, no-store"  # every copy must be fetched, and so logged, here
    return response
