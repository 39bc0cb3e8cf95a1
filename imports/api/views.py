from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import request_user
from core import policy
from core.api.parsers import UploadParsersMixin
from core.api.viewsets import ScopedViewSetMixin, etag_for
from imports.errors import errors_csv_response
from imports.models import ImportJob
from imports.services import job_cancel, job_create

from .serializers import ImportJobSerializer, ImportRowErrorSerializer


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The file is over the import size limit."
    default_code = "payload_too_large"


CSV = OpenApiResponse(OpenApiTypes.STR, description="`row,field,message`, one line a bad field, as a download.")


@extend_schema_view(
    create=extend_schema(
        summary="Start an import",
        description="Answers at once with the queued job (202); follow it at `/imports/{id}/`. A file over "
                    "`IMPORT_MAX_BYTES` is a 413.",
        responses={202: ImportJobSerializer},
    ),
    errors=extend_schema(
        summary="The bad rows of an import",
        description="Every bad field of every row (`row` 1 is the first data row; `field` empty for the row as a "
                    "whole), in row order. `?format=csv` answers the same as a CSV download.",
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                                     description="`csv` for a CSV download instead of the JSON page")],
        responses={200: ImportRowErrorSerializer(many=True), (200, "text/csv"): CSV},
    ),
    errors_csv=extend_schema(summary="The bad rows of an import, as CSV", responses={(200, "text/csv"): CSV}),
    cancel=extend_schema(
        request=None,
        responses={200: OpenApiResponse(ImportJobSerializer, description="A queued job, cancelled at once"),
                   202: OpenApiResponse(ImportJobSerializer, description="A running job: it stops after its "
                                                                         "current batch"),
                   409: OpenApiResponse(description="The job has finished: nothing to cancel")},
    ),
)
class ImportJobViewSet(UploadParsersMixin, ScopedViewSetMixin, mixins.CreateModelMixin, mixins.ListModelMixin,
                       mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportJobSerializer
    queryset = ImportJob.objects.select_related("agency", "created_by")

    def perform_content_negotiation(self, request: Any, force: bool = False) -> Any:
        # `?format=csv` asks the errors action for a CSV download, which it writes itself.
        return super().perform_content_negotiation(request, force=force or request.query_params.get("format") == "csv")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.IMPORT_MAX_BYTES + 64 * 1024:
            raise PayloadTooLarge(f"The file is over the import size limit of {settings.IMPORT_MAX_BYTES} bytes.")
        upload = request.FILES.get("file")
        if upload is not None and upload.size > settings.IMPORT_MAX_BYTES:
            raise PayloadTooLarge(f"The file is over the import size limit of {settings.IMPORT_MAX_BYTES} bytes.")
        user = request_user(request)
        if not policy.allows(user, "entity.change") or user.agency_id is None:
            raise exceptions.PermissionDenied("Imports are for investigators, supervisors and agency admins.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = job_create(agency=user.agency, actor=user, upload=data["file"], kind=data["kind"], mode=data["mode"],
                         source=data["source"])
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        job = self.get_object()
        response = Response(self.get_serializer(job).data)
        response["ETag"] = etag_for(job)
        return response

    @action(detail=True, methods=["get"], url_path="errors", filter_backends=[])
    def errors(self, request: Request, pk: Any = None) -> Any:
        job = self.get_object()
        rows = job.errors.order_by("row", "id")
        if request.query_params.get("format") == "csv":
            return errors_csv_response(job)
        page = self.paginate_queryset(rows)
        if page is not None:
            return self.get_paginated_response(ImportRowErrorSerializer(page, many=True).data)
        return Response(ImportRowErrorSerializer(rows, many=True).data)

    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """Stop the job (API.md § Bulk import): a queued job is cancelled at once (200); a running one after its
        current batch (202: its worker ends it `cancelled`); a finished one is a 409. Only who may start imports
        of the job's agency may cancel one (403), and a job the caller cannot see is a 404."""
        job = self.get_object()
        if not policy.writable(request_user(request), ImportJob).filter(pk=job.pk).exists():
            raise exceptions.PermissionDenied("Only investigators, supervisors and agency admins of the job's "
                                              "agency may cancel an import.")
        job = job_cancel(job=job, actor=request_user(request))
        answer = status.HTTP_200_OK if job.status == "cancelled" else status.HTTP_202_ACCEPTED
        return Response(self.get_serializer(job).data, status=answer)

    @action(detail=True, methods=["get"], url_path="errors.csv", filter_backends=[], pagination_class=None)
    def errors_csv(self, request: Request, pk: Any = None) -> Any:
        job = self.get_object()
        return errors_csv_response(job)
