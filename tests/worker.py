"""A real Celery worker process on private queues, against the suite's test database and real Redis.

The worker consumes its own copies of the project's four queues (TASK_QUEUE_PREFIX): a task sent with an
explicit `queue=worker.queue` reaches it, and so does any task the test process routes while its settings carry
the same prefix (`worker.prefix`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from config.celery import app


def wait_until(predicate: Callable[[], Any], seconds: float = 60, every: float = 0.2) -> Any:
    """What `predicate` gives once it is truthy, polled every `every` s; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(every)
    raise AssertionError(f"not so after {seconds} s")


def stop(process: subprocess.Popen[Any], seconds: float = 20) -> None:
    """Asks a server or worker to stop, and kills it (its process group, when it leads one) past `seconds`."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        try:
            leads_group = os.getpgid(process.pid) == process.pid
        except ProcessLookupError:
            leads_group = False
        if leads_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()


@dataclass
class Worker:
    queue: str  # its copy of the default queue
    prefix: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost node would: the task stops mid-way, nothing is acked or cleaned up.
        To the whole process group: a prefork worker's pool processes die with it."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


@contextmanager
def celery_worker(**extra_env: str) -> Iterator[str]:
    """The worker's private queue; `extra_env` is added to the worker's environment (its settings read it)."""
    with worker_process(None, "worker", 1, **extra_env) as worker:
        yield worker.queue


def process_env(prefix: str, **extra_env: str) -> dict[str, str]:
    """The environment of a worker or beat process of this test: its database, Redis, broker and queues."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "TASK_QUEUE_PREFIX": prefix,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **extra_env,
    }


@contextmanager
def worker_process(prefix: str | None = None, node: str = "worker", concurrency: int = 1,
                   **extra_env: str) -> Iterator[Worker]:
    """A worker on the queues of `prefix`; several at once on one prefix share its queues (give each its own
    `node`, the first part of its node name: `<prefix><node>@host`). One task at a time in its own process (solo
    pool), or `concurrency` pool processes (prefork), in a process group of its own."""
    prefix = prefix or f"test-{uuid.uuid4().hex[:8]}-"
    queue = f"{prefix}default"
    queues = ",".join(f"{prefix}{name}" for name in settings.TASK_QUEUES)
    pool = ["--pool", "solo"] if concurrency == 1 else ["--pool", "prefork", "--concurrency", str(concurrency)]
    # --quiet: no banner, so that its output is its log lines alone (LOG_LEVEL, not -l, sets their level).
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "--quiet", "worker", *pool, "-Q", queues,
         "-n", f"{prefix}{node}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        env=process_env(prefix, **extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _consumes(queue, f"{prefix}{node}@"):
                break
            if process.poll() is not None:
                raise RuntimeError(process.stdout.read().decode() if process.stdout else "worker died")
        else:
            raise RuntimeError("worker did not start in 60 s")
        yield Worker(queue, prefix, process)
    finally:
        stop(process)


@contextmanager
def beat_process(prefix: str, **extra_env: str) -> Iterator[subprocess.Popen[bytes]]:
    """Celery beat sending the project's schedule to the queues of `prefix` (its schedule file in a temporary
    directory of its own)."""
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-s", os.path.join(directory, "schedule"),
             "--pidfile", os.path.join(directory, "beat.pid"), "-l", "warning"],
            env=process_env(prefix, **extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            stop(process)


def _consumes(queue: str, node: str = "") -> bool:
    active = app.control.inspect(timeout=0.5).active_queues() or {}
    return any(q["name"] == queue for name, queues in active.items() if name.startswith(node) for q in queues)
