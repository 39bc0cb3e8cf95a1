"""The web application served by a real gunicorn (two worker processes) on a free loopback port, and a small HTTP
client for it (the standard library's: what a test sees is what any client would)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import psutil

from .worker import stop

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes
    started: float  # time.monotonic() when the request was sent
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def is_json(self) -> bool:
        return self.headers.get("Content-Type", "").startswith("application/json")


@dataclass
class WebServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def call(self, method: str, path: str, *, token: str | None = None, data: Any = None,
             headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
        """One request; any HTTP status is a Reply (a refused or timed-out connection raises)."""
        sent = {"Accept": "application/json", **(headers or {})}
        body = None
        if data is not None:
            body = json.dumps(data).encode()
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Token {token}"
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=sent)  # noqa: S310
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our loopback server)
                return Reply(response.status, response.headers, response.read(), started, time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read(), started, time.monotonic() - started)

    def workers(self) -> list[int]:
        """The pids of gunicorn's worker processes."""
        return sorted(child.pid for child in psutil.Process(self.process.pid).children())

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def web_server(**env: str) -> Iterator[WebServer]:
    """gunicorn serving config.wsgi with the test settings, two sync workers; `env` (DATABASE_URL or
    DATABASE_NAME, REDIS_URL, CELERY_BROKER_URL, ...) is added to its environment."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="web") as directory:
        log = Path(directory) / "gunicorn.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                 "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, process_group=0,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1", **env},
            )
        server = WebServer(f"http://127.0.0.1:{port}", process, log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if server.call("GET", "/healthz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{server.tail()}")
                time.sleep(0.1)
            yield server
        finally:
            stop(process)
