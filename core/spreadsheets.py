"""Cells of the CSV files the service writes, safe to open in a spreadsheet: a text cell that a spreadsheet
would read as a formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a
leading `'`, which the spreadsheet shows as text (OWASP's CSV injection advice). Numbers stay numbers.

A cell that begins with `'` itself is guarded too, so that `unguarded` (what an import reads a cell as) gives
back exactly what was written: it takes one `'` off a cell whose rest would have been guarded."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"
GUARDED_STARTS = (*FORMULA_STARTS, GUARD)


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(GUARDED_STARTS):
        return GUARD + value
    return value


def unguarded(value: Any) -> Any:
    """The value `safe_cell` guarded: a text cell of a file (an export, or a spreadsheet's) as the import reads it."""
    if isinstance(value, str) and value.startswith(GUARD) and value[1:].startswith(GUARDED_STARTS):
        return value[1:]
    return value


class SafeWriter:
    """csv.writer whose rows' text cells are made safe; every CSV the service writes goes through it."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
