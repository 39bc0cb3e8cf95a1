"""Streaming readers of import files; the format is told by content, never by the file's name."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar
from xml.etree import ElementTree

from django.conf import settings

from core.spreadsheets import unguarded

JSON_ARRAY_MAX_BYTES = 50 * 1024 * 1024  # a JSON array is loaded whole: JSON lines stream instead
TOO_DEEP = "nested too deeply"


class BadFile(ValueError):
    """The file is not what an import takes; the job fails with this message and writes nothing."""


T = TypeVar("T")


class Table:
    """Rows of one file as dicts, with the columns known up front where the format has a header."""

    def __init__(self, fmt: str, columns: list[str] | None, rows: Iterator[dict[str, Any]],
                 plain: Iterator[Any] | None = None) -> None:
        self.format = fmt
        self.columns = columns
        self.rows = rows
        # The same rows without their dicts, where the format has a cheaper way to walk them (for counting).
        self.plain = plain


def _text_rows(binary: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def _guard(rows: Iterator[T]) -> Iterator[T]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise BadFile(f"The file is not UTF-8 text (byte {exc.start} of a chunk cannot be decoded).") from exc
    except csv.Error as exc:
        raise BadFile(f"The CSV file cannot be read: {exc}.") from exc


def parse_json(text: str | bytes) -> Any:
    """json.loads, with every way a hostile text breaks it as a JSONDecodeError-like ValueError: nesting
    deep enough to exhaust the stack, and integers too long to convert."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def count_rows(table: Table, tick: Callable[[], None] | None = None, every: int = 50_000) -> int:
    """The data rows of a table as a job will read them (a first pass, before anything is written), up to
    IMPORT_MAX_ROWS: a file with more fails as a bad file. `tick` is called every `every` rows (a heartbeat)."""
    limit = settings.IMPORT_MAX_ROWS
    rows = table.plain if table.plain is not None else table.rows
    total = 0
    while True:
        counted = sum(1 for _ in itertools.islice(rows, every))
        total += counted
        if total > limit:
            raise BadFile(f"The file has more than {limit} rows, the import limit (IMPORT_MAX_ROWS): "
                          "split it into several files.")
        if counted < every:
            return total
        if tick is not None:
            tick()


def open_table(binary: IO[bytes]) -> Table:
    head = binary.read(4096)
    binary.seek(0)
    if not head.replace(b"\xef\xbb\xbf", b"").strip():
        raise BadFile("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        return _xlsx(binary)
    if b"\x00" in head:
        raise BadFile("The file is binary, not CSV, JSON, JSON lines or XLSX.")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise BadFile("The file is not UTF-8 text.") from exc
    _check_text(binary)
    stripped = text.replace("\ufeff", "").lstrip()
    if stripped.startswith("["):
        return _json_array(binary)
    if stripped.startswith("{"):
        return Table("jsonl", None, _guard(_json_lines(binary)))
    return _csv(binary, text[:1024])


def _check_text(binary: IO[bytes]) -> None:
    """Decode the whole file once, streaming, so a bad byte deep in it fails the job before anything is written."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    try:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise BadFile(f"The file holds a NUL byte at byte {offset + nul}: it is binary, not text.")
            decoder.decode(chunk)
            offset += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise BadFile(f"The file is not UTF-8 text: an invalid byte near byte {offset + exc.start}.") from exc
    finally:
        binary.seek(0)


def _csv(binary: IO[bytes], sample: str) -> Table:
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    text = _text_rows(binary)
    reader = csv.reader(text, dialect)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BadFile(f"The file's header cannot be read as UTF-8 CSV: {exc}.") from exc
    if header is None or not "".join(header).replace("\ufeff", "").strip():
        raise BadFile("The file is empty: it has no header row.")
    columns = [c.strip() for c in header]

    def plain() -> Iterator[list[str]]:
        for values in reader:
            if "".join(values).strip():  # not a blank line
                yield values

    def rows() -> Iterator[dict[str, Any]]:
        for values in plain():
            # A cell guarded against formulas (an export's, core.spreadsheets) is read as the value it guards.
            row: dict[str, Any] = dict(zip(columns, map(unguarded, values), strict=False))
            if len(values) > len(columns):
                row["__extra__"] = values[len(columns):]
            yield row

    return Table("csv", columns, _guard(rows()), plain=_guard(plain()))


def _json_array(binary: IO[bytes]) -> Table:
    data = binary.read(JSON_ARRAY_MAX_BYTES + 1)
    if len(data) > JSON_ARRAY_MAX_BYTES:
        raise BadFile(f"A JSON array over {JSON_ARRAY_MAX_BYTES // (1024 * 1024)} MiB: send JSON lines instead.")
    try:
        items = parse_json(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise BadFile("The file is not UTF-8 text.") from exc
    except ValueError as exc:  # JSONDecodeError among them
        raise BadFile(f"The file is not valid JSON: {exc}.") from exc
    if not isinstance(items, list):
        raise BadFile("A JSON file must hold an array of objects.")
    return Table("json", None, iter(item if isinstance(item, dict) else {"__not_object__": item} for item in items))


def _json_lines(binary: IO[bytes]) -> Iterator[dict[str, Any]]:
    for line in _text_rows(binary):
        if not line.strip():
            continue
        try:
            item = parse_json(line)
        except ValueError as exc:  # JSONDecodeError among them
            yield {"__bad_json__": str(exc)}
            continue
        yield item if isinstance(item, dict) else {"__not_object__": item}


ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError,
              RuntimeError, ValueError, ElementTree.ParseError)
CONTENT_TYPES = "[Content_Types].xml"
CONTENT_TYPES_MAX_BYTES = 1024 * 1024
WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


def _streamed_parts(archive: zipfile.ZipFile) -> set[str]:
    """The worksheets, which the reader parses as a stream; every other part (shared strings, styles, the
    workbook) it holds whole in memory, at several times its size."""
    try:
        info = archive.getinfo(CONTENT_TYPES)
    except KeyError:
        return set()
    if info.file_size > CONTENT_TYPES_MAX_BYTES:
        raise BadFile("The XLSX workbook's content types part is too large.")
    with archive.open(info) as stream:
        text = stream.read(CONTENT_TYPES_MAX_BYTES)
    if b"<!DOCTYPE" in text.upper():
        raise BadFile("The XLSX workbook's content types part declares a DOCTYPE, which no workbook does.")
    root = ElementTree.fromstring(text)  # noqa: S314  # at most 1 MiB, no DOCTYPE: no entity to expand
    return {part.get("PartName", "").lstrip("/") for part in root
            if part.tag.endswith("Override") and part.get("ContentType") == WORKSHEET_TYPE
            and part.get("PartName", "").startswith("/xl/worksheets/")}


def check_zip(binary: IO[bytes], noun: str = "XLSX workbook", whole: str = "shared strings and other parts") -> None:
    """An XLSX is a zip: refuse one whose members inflate past IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES, or whose parts
    other than its worksheets (the shared strings above all, held whole by the reader) inflate past
    IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES: first by the sizes its directory declares (nothing inflated), then by
    inflating each member in chunks and counting what comes out (a member whose data does not match its
    declared size or checksum is damaged). Memory stays bounded by the chunk, whatever the file claims. `noun` and
    `whole` name the file and its parts held whole in the messages (an SDN list's zip holds CSV files)."""
    limit, whole_limit = settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES, settings.IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES
    over = (f"The {noun} inflates to more than {limit} uncompressed bytes, the import limit "
            "(IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES): save it as CSV or split it.")
    whole_over = (f"The {noun}'s {whole} read whole inflate to more than "
                  f"{whole_limit} bytes, the import limit (IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES): save it as CSV.")
    try:
        with zipfile.ZipFile(binary) as archive:
            members = archive.infolist()
            if sum(member.file_size for member in members) > limit:
                raise BadFile(over)
            streamed = _streamed_parts(archive)
            if sum(m.file_size for m in members if m.filename not in streamed) > whole_limit:
                raise BadFile(whole_over)
            inflated = inflated_whole = 0
            for member in members:
                with archive.open(member) as stream:
                    while chunk := stream.read(1 << 20):
                        inflated += len(chunk)
                        if inflated > limit:
                            raise BadFile(over)
                        if member.filename not in streamed:
                            inflated_whole += len(chunk)
                            if inflated_whole > whole_limit:
                                raise BadFile(whole_over)
    except ZIP_ERRORS as exc:
        raise BadFile(f"The file is not a readable {noun}: {exc}.") from exc
    finally:
        binary.seek(0)


def _xlsx(binary: IO[bytes]) -> Table:
    from openpyxl import load_workbook

    check_zip(binary)
    try:
        book = load_workbook(binary, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        cells = sheet.iter_rows(values_only=True)
        header = next(cells, None)
    except Exception as exc:
        raise BadFile(f"The file is not a readable XLSX workbook: {exc}.") from exc
    if header is None:
        raise BadFile("The workbook's first sheet is empty.")
    columns = ["" if c is None else str(c).strip() for c in header]

    def rows() -> Iterator[dict[str, Any]]:
        try:
            for values in cells:
                if all(v is None or str(v).strip() == "" for v in values):
                    continue
                yield {col: unguarded(_cell(v)) for col, v in zip(columns, values, strict=False) if col}
        except Exception as exc:  # a sheet damaged past its header, whatever openpyxl or the XML parser says
            raise BadFile(f"The XLSX workbook cannot be read past its header: {exc}.") from exc
        finally:
            book.close()

    return Table("xlsx", columns, rows())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat() if not (value.hour or value.minute or value.second) else value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
