from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from core.tasks import task

logger = logging.getLogger(__name__)


@task("imports.run", acks_late=True, soft_time_limit=settings.IMPORT_SOFT_TIME_LIMIT,
      time_limit=settings.IMPORT_TIME_LIMIT, job_arg="job_id")
def run(job_id: Any) -> str:
    """Idempotent: a finished job returns at once; a running job with a stale heartbeat is resumed (so a second
    delivery, or a retry after a lost database connection, is harmless). Sent through the outbox by
    `job_create`. The import's speed settings (a shorter thread switch interval for its writer thread, and
    `synchronous_commit = off` for each batch's transaction) are set inside the run and undone after it."""
    from .services import run_job

    return run_job(job_id).status


@task("imports.resume_stale", acks_late=True)
def resume_stale() -> list[str]:
    """Beat's sweep (every minute) for the import jobs no worker is on: `services.resume_stale`."""
    from .services import resume_stale as resume

    ids = resume()
    if ids:
        logger.warning("re-enqueued %d stale import job(s): %s", len(ids), ", ".join(ids))
    return ids
