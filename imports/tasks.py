from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="imports.run", acks_late=True)
def run(job_id: Any) -> str:
    """Idempotent: a finished job returns at once; a running job with a stale heartbeat is resumed."""
    from .services import run_job

    return run_job(job_id).status
