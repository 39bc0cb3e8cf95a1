"""A real Celery worker process on a private queue, against the suite's test database and real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from config.celery import app


@dataclass
class Worker:
    queue: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost node would: the task stops mid-way, nothing is acked or cleaned up."""
        self.process.kill()
        self.process.wait(timeout=20)


@contextmanager
def celery_worker(**extra_env: str) -> Iterator[str]:
    """The worker's private queue; `extra_env` is added to the worker's environment (its settings read it)."""
    with worker_process(**extra_env) as worker:
        yield worker.queue


@contextmanager
def worker_process(**extra_env: str) -> Iterator[Worker]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **extra_env,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", queue, "-n", f"{queue}@%h",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _consumes(queue):
                break
            if process.poll() is not None:
                raise RuntimeError(process.stdout.read().decode() if process.stdout else "worker died")
        else:
            raise RuntimeError("worker did not start in 60 s")
        yield Worker(queue, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _consumes(queue: str) -> bool:
    active = app.control.inspect(timeout=0.5).active_queues() or {}
    return any(q["name"] == queue for queues in active.values() for q in queues)
