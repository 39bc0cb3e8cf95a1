"""Streaming readers of import files; the format is told by content, never by the file's name."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

JSON_ARRAY_MAX_BYTES = 50 * 1024 * 1024  # a JSON array is loaded whole: JSON lines stream instead


class BadFile(ValueError):
    """The file is not what an import takes; the job fails with this message and writes nothing."""


class Table:
    """Rows of one file as dicts, with the columns known up front where the format has a header."""

    def __init__(self, fmt: str, columns: list[str] | None, rows: Iterator[dict[str, Any]]) -> None:
        self.format = fmt
        self.columns = columns
        self.rows = rows


def _text_rows(binary: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def _guard(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise BadFile(f"The file is not UTF-8 text (byte {exc.start} of a chunk cannot be decoded).") from exc
    except csv.Error as exc:
        raise BadFile(f"The CSV file cannot be read: {exc}.") from exc


def open_table(binary: IO[bytes]) -> Table:
    head = binary.read(4096)
    binary.seek(0)
    if not head.strip():
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
    stripped = text.lstrip()
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
        header = next(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BadFile(f"The file's header cannot be read as UTF-8 CSV: {exc}.") from exc
    columns = [c.strip() for c in header]

    def rows() -> Iterator[dict[str, Any]]:
        for values in reader:
            if not "".join(values).strip():
                continue  # a blank line
            row: dict[str, Any] = dict(zip(columns, values, strict=False))
            if len(values) > len(columns):
                row["__extra__"] = values[len(columns):]
            yield row

    return Table("csv", columns, _guard(rows()))


def _json_array(binary: IO[bytes]) -> Table:
    data = binary.read(JSON_ARRAY_MAX_BYTES + 1)
    if len(data) > JSON_ARRAY_MAX_BYTES:
        raise BadFile(f"A JSON array over {JSON_ARRAY_MAX_BYTES // (1024 * 1024)} MiB: send JSON lines instead.")
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise BadFile("The file is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise BadFile(f"The file is not valid JSON: {exc}.") from exc
    if not isinstance(items, list):
        raise BadFile("A JSON file must hold an array of objects.")
    return Table("json", None, iter(item if isinstance(item, dict) else {"__not_object__": item} for item in items))


def _json_lines(binary: IO[bytes]) -> Iterator[dict[str, Any]]:
    for line in _text_rows(binary):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield {"__bad_json__": str(exc)}
            continue
        yield item if isinstance(item, dict) else {"__not_object__": item}


def _xlsx(binary: IO[bytes]) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:
        raise BadFile(f"The file is not an XLSX workbook: {exc}.") from exc
    sheet = book.worksheets[0]
    cells = sheet.iter_rows(values_only=True)
    header = next(cells, None)
    if header is None:
        raise BadFile("The workbook's first sheet is empty.")
    columns = ["" if c is None else str(c).strip() for c in header]

    def rows() -> Iterator[dict[str, Any]]:
        for values in cells:
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            yield {col: _cell(v) for col, v in zip(columns, values, strict=False) if col}
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
