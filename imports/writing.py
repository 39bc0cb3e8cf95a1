"""How an import writes: its batches committed in order by a thread of their own, existing records found
by their upsert key, and changed ones updated in bulk."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone


def by_source_id(model: Any, agency_id: Any, keys: set[tuple[str, str]], columns: tuple[str, str]) -> Any:
    """The agency's records with these (source, source_id) keys, each found by the unique index. (A plain
    `source_id IN (…)` lets the planner scan every row of the source: an import's own earlier batches too.)"""
    quote = connection.ops.quote_name
    table, label, key = quote(model._meta.db_table), quote(columns[0]), quote(columns[1])
    sql = ("SELECT t.* FROM unnest(%s::text[], %s::text[]) AS k(label, key) CROSS JOIN LATERAL "  # noqa: S608
           f"(SELECT * FROM {table} t WHERE t.agency_id = %s AND t.{label} = k.label "
           f"AND t.{key} = k.key AND t.{key} <> '' LIMIT 1) t")
    sources, ids = zip(*keys, strict=True) if keys else ((), ())
    return model.objects.raw(sql, [list(sources), list(ids), agency_id])


class Writer:
    """Commits a job's batches in order. Outside any transaction of its caller it commits them in a thread of
    its own, on that thread's own database connection, so that PostgreSQL writes one batch while the next is
    read and checked; a batch whose records the batch in flight writes waits for it first. Inside a
    transaction (an atomic import's write pass, a caller's own block) it writes in line, in that transaction.
    """

    def __init__(self, *, threaded: bool = True) -> None:
        threaded = threaded and not transaction.get_connection().in_atomic_block
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="import-writer") if threaded else None
        self.pending: Future | None = None
        self.keys: set[tuple[str, str]] = set()  # those of the batch in flight
        self.next_keys: set[tuple[str, str]] = set()

    SWITCH_INTERVAL = 0.001  # seconds; CPython's default, 0.005, starves a thread that waits on its socket

    def __enter__(self) -> Writer:
        self.switch_interval = sys.getswitchinterval()
        if self.pool is not None:
            # The checking thread never waits; the writing one does, at every COPY buffer: it gets the GIL
            # back sooner, and so keeps PostgreSQL busy, when the interpreter switches threads more often.
            sys.setswitchinterval(self.SWITCH_INTERVAL)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            sys.setswitchinterval(self.switch_interval)
            if self.pool is not None:
                self.pool.submit(_close_connection).result()
                self.pool.shutdown()

    def submit(self, commit: Callable[[], None]) -> None:
        if self.pool is None:
            commit()
            return
        self.wait()
        self.pending = self.pool.submit(commit)
        self.keys, self.next_keys = self.next_keys, set()

    def wait(self) -> None:
        pending, self.pending, self.keys = self.pending, None, set()
        if pending is not None:
            pending.result()  # a failed commit fails the run here

    def in_flight(self, keys: set[tuple[str, str]]) -> None:
        """The keys of the batch submitted next: a later batch naming one of them waits for its commit."""
        self.next_keys = keys

    def before_reading(self, keys: set[tuple[str, str]]) -> None:
        if self.keys & keys:
            self.wait()


def _close_connection() -> None:
    transaction.get_connection().close()


def apply_changes(target: Any, values: dict[str, Any]) -> list[str]:
    """Set on `target` (an instance, or a new row's dict) the values that differ from what it holds; the
    names of those fields."""
    if isinstance(target, dict):
        diffs = [name for name, value in values.items() if target.get(name) != value]
        target.update(values)
        return diffs
    diffs = [name for name, value in values.items() if getattr(target, name) != value]
    for name in diffs:
        setattr(target, name, values[name])
    return diffs


def bulk_update(model: Any, rows: list[Any], fields: list[str]) -> None:
    """Write changed rows in bulk, bumping each row's version and update time as a save would."""
    now = timezone.now()
    for row in rows:
        row.version += 1
        row.updated_at = now
    model.objects.bulk_update(rows, [*fields, "version", "updated_at"], batch_size=1000)


class WouldCreate:
    """What a dry run's earlier batches would have created, kept in a temporary table of its connection
    rather than in memory, so that a dry run of a file of any size stays as small as a writing one: a key
    met again is then counted as the real run would count it (unchanged, or updated when its values differ).
    """

    TABLE = "import_would_create"

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.TABLE} "
                           "(label text, key text, digest text, PRIMARY KEY (label, key))")
            cursor.execute(f"TRUNCATE {self.TABLE}")

    def digests(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The digests remembered for those of `keys` an earlier batch met."""
        if not keys:
            return {}
        labels, ids = zip(*keys, strict=True)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT w.label, w.key, w.digest FROM unnest(%s::text[], %s::text[]) AS k(label, key) "  # noqa: S608
                           f"JOIN {self.TABLE} w ON w.label = k.label AND w.key = k.key", [list(labels), list(ids)])
            return {(label, key): digest for label, key, digest in cursor.fetchall()}

    def remember(self, digests: dict[tuple[str, str], str]) -> None:
        if not digests:
            return
        labels, ids = zip(*digests, strict=True)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {self.TABLE} (label, key, digest) "  # noqa: S608
                           "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
                           "ON CONFLICT (label, key) DO UPDATE SET digest = EXCLUDED.digest",
                           [list(labels), list(ids), list(digests.values())])

    def close(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
        except DatabaseError:
            pass  # the run failed inside a transaction; the table goes with the session anyway
