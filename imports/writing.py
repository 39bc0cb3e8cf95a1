"""How an import writes: its batches (each the bulk services' writing of its records) committed in order by a
thread of their own; what a dry run would have created."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import DatabaseError, connection, transaction


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
