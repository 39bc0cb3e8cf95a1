"""A job's error rows as CSV, streamed: the one writer of the API's `errors/?format=csv` and the admin's download."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse

from core.spreadsheets import SafeWriter

from .models import ImportJob

COLUMNS = ("row", "field", "message", "values")  # `values`: the row as the file gave it, as JSON


class _Lines:
    """A file for csv.writer whose write() hands back the line, so that the CSV is streamed line by line."""

    def write(self, line: str) -> str:
        return line


def values_text(values: dict[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False) if values else ""


def error_lines(job: ImportJob) -> Iterator[str]:
    """The job's errors as CSV lines (header first), in row order, read in chunks: any number in constant memory."""
    writer = SafeWriter(_Lines())
    yield writer.writerow(COLUMNS)
    for row, field, message, values in (job.errors.order_by("row", "id").values_list(*COLUMNS)
                                        .iterator(chunk_size=2000)):
        yield writer.writerow((row, field, message, values_text(values)))


def errors_csv_response(job: ImportJob) -> StreamingHttpResponse:
    response = StreamingHttpResponse(error_lines(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
