"""A job's error rows as CSV, streamed: the one writer of the API's `errors/?format=csv` and the admin's download."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse

from core.api.export import csv_chunks

from .models import ImportJob

COLUMNS = ("row", "field", "message", "values")  # `values`: the row as the file gave it, as JSON


def values_text(values: dict[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False) if values else ""


def error_lines(job: ImportJob) -> Iterator[bytes]:
    """The job's errors as CSV (header first), in row order, read in chunks: any number in constant memory."""
    rows = job.errors.order_by("row", "id").values_list(*COLUMNS).iterator(chunk_size=2000)
    return csv_chunks(COLUMNS, ((row, field, message, values_text(values)) for row, field, message, values in rows))


def errors_csv_response(job: ImportJob) -> StreamingHttpResponse:
    response = StreamingHttpResponse(error_lines(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
