"""Work that must follow a commit (API: the transactional outbox).

Interface only for now; the pipeline fills it in. A service calls `enqueue` inside its write's transaction;
the row is committed with the write and sent to the broker after commit, or later by the dispatcher when the
broker was away. Tasks it names must be idempotent: a row may be sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The task that cross-references records after they change (filled by cross-referencing).
RECORDS_CHANGED = "xref.records_changed"


def enqueue(task: str, *, kwargs: dict[str, Any] | None = None, key: str = "", queue: str | None = None) -> None:
    """Leave `task(**kwargs)` to run after the current transaction commits. `key` coalesces: rows with the same
    task and key that are not yet sent become one piece of work."""


def records_changed(model_label: str, ids: Iterable[Any]) -> None:
    """After a write of one or many records of `model_label` (e.g. 'entities.person'): one outbox row for all."""
    ids = [str(pk) for pk in ids]
    if ids:
        enqueue(RECORDS_CHANGED, kwargs={"model": model_label, "ids": ids},
                key=f"{model_label}:{ids[0]}" if len(ids) == 1 else "")
