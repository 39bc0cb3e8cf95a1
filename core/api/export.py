"""Exports of every list (API.md § Basics): `?format=csv`, `?format=xlsx` and, where a view offers it, `?format=ftm`.

An export is the list's own rows (the same scope, filters and ordering), whole rather than a page, streamed from a
server-side cursor a chunk at a time, so memory does not grow with the rows: CSV and FtM JSON lines are written as
they are read; an XLSX workbook is written by openpyxl's write-only mode to a temporary file, then streamed.
Each export is one `export` event of the audit trail (audit.services), recorded when its last row is written,
with the list, the format, the filters and the rows written.

`?format=` is DRF's renderer override (URL_FORMAT_OVERRIDE): `json` and `api` keep choosing their renderers; the
export formats have renderers too (so DRF's negotiation lets them through on lists), which never render a row: a
list answers them with its stream, and an error answered on them is rendered as JSON. A format a view does not
offer is a 400 naming the ones it does.

Columns: a view names an import kind (`export_kind`) to export exactly the columns that kind's import reads
(imports.columns); any other list exports its serializer's fields, flattened (lists `;`-joined, references as
`type:id`, other objects as JSON). Text cells that a spreadsheet would run as a formula are guarded
(core.spreadsheets), which the import undoes.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import exceptions, renderers
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core import context
from core.spreadsheets import SafeWriter, safe_cell

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _ViewBase = GenericAPIView
else:
    _ViewBase = object

CHUNK_ROWS = 500  # rows a server-side cursor fetches at a time
FLUSH_BYTES = 256 * 1024  # what a stream gathers before it sends it
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UUID_SEGMENT = re.compile(r"^[0-9a-fA-F-]{36}$")
# What an XLSX cell cannot hold (XML 1.0 has no place for these control characters): dropped from the cell.
XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class ExportRenderer(renderers.BaseRenderer):
    """Lets an export format through DRF's negotiation; the list writes the file itself."""

    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return renderers.JSONRenderer().render(data, "application/json", renderer_context)


class CSVRenderer(ExportRenderer):
    media_type = "text/csv"
    format = "csv"


class XLSXRenderer(ExportRenderer):
    media_type = XLSX_TYPE
    format = "xlsx"


class FtMRenderer(ExportRenderer):
    media_type = "application/x-ndjson"
    format = "ftm"


RENDERERS: dict[str, type[ExportRenderer]] = {"csv": CSVRenderer, "xlsx": XLSXRenderer, "ftm": FtMRenderer}
EXTENSIONS = {"csv": "csv", "xlsx": "xlsx", "ftm": "ftm.json"}


class Table(Protocol):
    """The columns of an export and a record's cells in that order."""

    @property
    def header(self) -> tuple[str, ...]: ...

    def row(self, obj: Any) -> list[str]: ...

    def rows_of(self, queryset: QuerySet) -> QuerySet: ...


def flat(value: Any) -> str:
    """One serializer value as one cell: lists `;`-joined, references (`{"type", "id"}`) as `type:id`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        if "type" in value and "id" in value:
            return f"{value['type']}:{value['id']}"
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, list | tuple):
        return ";".join(flat(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class SerializerTable:
    """A list's serializer fields, flattened: the export of the lists no import reads."""

    serializer: Any

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(name for name, field in self.serializer.fields.items() if not field.write_only)

    def row(self, obj: Any) -> list[str]:
        data = self.serializer.to_representation(obj)
        return [flat(data.get(name)) for name in self.header]

    def rows_of(self, queryset: QuerySet) -> QuerySet:
        return queryset


@dataclass
class ExportAudit:
    """The one `export` event of an export, recorded once its rows are written (or the stream stops early), in the
    request's context (its id, address and user), which has ended by the time a stream is read."""

    user: Any
    resource: str
    model_name: str
    fmt: str
    filters: dict[str, list[str]]
    case_id: Any
    request_context: context.RequestContext

    def __call__(self, rows: int, complete: bool) -> None:
        from audit.services import record

        token = context.begin(self.request_context)
        try:
            changes: dict[str, Any] = {"resource": [None, self.resource], "format": [None, self.fmt],
                                       "filters": [None, self.filters], "rows": [None, rows]}
            if not complete:
                changes["complete"] = [None, False]
            record(action="export", actor=self.user, agency=getattr(self.user, "agency", None),
                   object_type=self.model_name, object_id="", case_id=self.case_id, changes=changes)
        finally:
            context.end(token)


def _counted(rows: Iterable[Any], finish: Callable[[int, bool], None]) -> Iterator[Any]:
    """The rows, counted; `finish(count, complete)` once, when they run out or the stream is stopped."""
    count, complete = 0, False
    try:
        for row in rows:
            yield row
            count += 1
        complete = True
    finally:
        finish(count, complete)


def csv_stream(table: Table, rows: Iterable[Any]) -> Iterator[bytes]:
    """UTF-8 CSV (with a byte-order mark, so spreadsheets read it as UTF-8), header first; text cells guarded."""
    return csv_chunks(table.header, (table.row(obj) for obj in rows), bom=True)


def csv_chunks(header: Sequence[Any], lines: Iterable[Sequence[Any]], bom: bool = False) -> Iterator[bytes]:
    """CSV lines as UTF-8, sent a chunk of about FLUSH_BYTES at a time, cells a spreadsheet would run guarded: the
    one CSV writer of every streamed download (exports, an import's errors)."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    if bom:
        buffer.write("\ufeff")
    writer.writerow(header)
    for line in lines:
        writer.writerow(line)
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_cell(value: str) -> str:
    return safe_cell(XLSX_ILLEGAL.sub("", value))


def xlsx_stream(table: Table, rows: Iterable[Any], title: str) -> Iterator[bytes]:
    """One sheet, header first, every cell text (as the import reads it), guarded as in CSV; written to a temporary
    file by openpyxl's write-only mode (each row goes to disk as it is appended), then sent a chunk at a time."""
    from openpyxl import Workbook

    with tempfile.TemporaryFile() as out:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=title[:31] or "export")
        sheet.append([xlsx_cell(name) for name in table.header])
        for obj in rows:
            sheet.append([xlsx_cell(value) for value in table.row(obj)])
        book.save(out)
        out.seek(0)
        while chunk := out.read(FLUSH_BYTES):
            yield chunk


def ftm_stream(lines_of: Callable[[Any], Sequence[dict[str, Any]]], rows: Iterable[Any]) -> Iterator[bytes]:
    """FollowTheMoney JSON lines: each record's entities, one a line."""
    buffer = io.StringIO()
    for obj in rows:
        for entity in lines_of(obj):
            buffer.write(json.dumps(entity, ensure_ascii=False, sort_keys=True))
            buffer.write("\n")
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def resource_name(path: str) -> str:
    """A list's name from its path, ids left out: `persons`, `cases-notes`, `xref-matches`."""
    parts = [p for p in path.split("/") if p and not UUID_SEGMENT.match(p)]
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    return "-".join(parts) or "export"


class ExportMixin(_ViewBase):
    """`?format=csv|xlsx` (and `ftm` where `export_formats` has it) on a view's list; see the module's docstring."""

    request: Request
    action: str
    export_formats: tuple[str, ...] = ("csv", "xlsx")
    export_kind: str | None = None  # the import kind whose columns the export writes (imports.columns)

    def get_renderers(self) -> list[Any]:
        found = list(super().get_renderers())
        if getattr(self, "action", None) == "list":
            found += [RENDERERS[fmt]() for fmt in self.export_formats]
        return found

    def perform_content_negotiation(self, request: Any, force: bool = False) -> Any:
        fmt = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE) if api_settings.URL_FORMAT_OVERRIDE else None
        if fmt and not force:
            offered = [renderer.format for renderer in self.get_renderers()]
            if fmt not in offered:
                raise exceptions.ValidationError({api_settings.URL_FORMAT_OVERRIDE: [
                    f"Unknown format: {fmt}. Allowed here: {', '.join(offered)}."]})
        return super().perform_content_negotiation(request, force=force)

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        # An error answered to an export (a bad filter, a refusal) is JSON, as every error is.
        if isinstance(getattr(request, "accepted_renderer", None), ExportRenderer) \
                and not isinstance(response, StreamingHttpResponse):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        fmt = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE or "format")
        if fmt in self.export_formats:
            return self.export(fmt)
        return super().list(request, *args, **kwargs)  # type: ignore[misc]

    # --- what an export writes --------------------------------------------------------------------------

    def export_table(self) -> Table:
        if self.export_kind is not None:
            from imports.columns import table

            return table(self.export_kind)
        return SerializerTable(self.get_serializer())

    def export_lines(self, obj: Any) -> Sequence[dict[str, Any]]:
        """A record's FollowTheMoney entities (views with `ftm` among their formats)."""
        raise NotImplementedError(f"{type(self).__name__} offers no FtM export")

    def export_rows(self, table: Table) -> QuerySet:
        return table.rows_of(self.filter_queryset(self.get_queryset()))

    def export(self, fmt: str) -> StreamingHttpResponse:
        request = self.request
        resource = resource_name(request.path)
        table = self.export_table()  # an FtM export reads the rows as its columns would
        queryset = self.export_rows(table)
        audit = ExportAudit(
            user=request.user, resource=resource, model_name=queryset.model._meta.model_name or "", fmt=fmt,
            filters={key: values for key, values in request.query_params.lists()
                     if key != api_settings.URL_FORMAT_OVERRIDE},
            case_id=self.kwargs.get("case_pk"), request_context=context.current())
        rows = _counted(queryset.iterator(chunk_size=CHUNK_ROWS), audit)
        if fmt == "ftm":
            body = ftm_stream(self.export_lines, rows)
        elif fmt == "xlsx":
            body = xlsx_stream(table, rows, resource)
        else:
            body = csv_stream(table, rows)
        response = StreamingHttpResponse(body, content_type=RENDERERS[fmt].media_type
                                         + ("; charset=utf-8" if fmt != "xlsx" else ""))
        name = f"{resource}-{timezone.now().date().isoformat()}.{EXTENSIONS[fmt]}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
