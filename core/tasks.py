"""The project's task conventions (README § Workers), in one place.

- Every task has an explicit name, `<area>.<verb>`; the area names its queue (`route`): imports.* -> imports,
  xref.* -> xref, audit.* -> audit, the rest -> default, each with TASK_QUEUE_PREFIX before it.
- Every task has soft and hard time limits (the settings' defaults, or its own).
- A task retries, with a doubling delay and jitter, only on transient errors: the database or the broker was
  away for a moment (`TRANSIENT`). Any other error is a bug or bad data, and retrying it would only repeat it.
- `acks_late` where running a task twice is harmless (it is idempotent): a worker lost mid-task leaves its
  message to be delivered again instead of dropping it.
- Work a write needs is never sent from the write itself but through `core.outbox`.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

# Errors that say "try again in a moment", not "this is wrong": a lost or refused connection, a deadlock or
# serialization failure (psycopg raises those as OperationalError subclasses), a broker that did not answer.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


def queue_name(queue: str) -> str:
    """The broker's name of one of the project's queues (TASK_QUEUES), with this deployment's prefix."""
    return f"{settings.TASK_QUEUE_PREFIX}{queue}"


def queue_of(task_name: str) -> str:
    for prefix, queue in settings.TASK_QUEUE_OF.items():
        if task_name.startswith(prefix) or fnmatchcase(task_name, prefix):
            return queue
    return "default"


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str]:
    """Celery's router (CELERY_TASK_ROUTES): read at each send, so a changed prefix (a test's worker) applies.
    A queue given to apply_async itself wins over this."""
    return {"queue": queue_name(queue_of(name))}


def task(name: str, *, acks_late: bool, retry: bool = True, soft_time_limit: int | None = None,
         time_limit: int | None = None, job_arg: str | None = None,
         **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """shared_task with the conventions above; `retry=False` for a task that must not be repeated by Celery
    (e.g. one beat sends again anyway); `job_arg` names the argument holding the id of the job the task runs
    (an import job, a full run), which its log lines carry as `job_id` (core.logs)."""
    if job_arg is not None:
        options["job_arg"] = job_arg
    if retry:
        options.update(autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=300, retry_jitter=True,
                       max_retries=8)
    if soft_time_limit is not None:
        options["soft_time_limit"] = soft_time_limit
    if time_limit is not None:
        options["time_limit"] = time_limit
    return shared_task(name=name, acks_late=acks_late, ignore_result=True, **options)
