from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.tasks import task

from .models import ImportJob, ImportStatus

logger = logging.getLogger(__name__)


RUN = "imports.run"


@task(RUN, acks_late=True, soft_time_limit=settings.IMPORT_SOFT_TIME_LIMIT,
      time_limit=settings.IMPORT_TIME_LIMIT)
def run(job_id: Any) -> str:
    """Idempotent: a finished job returns at once; a running job with a stale heartbeat is resumed (so a second
    delivery, or a retry after a lost database connection, is harmless). Sent through the outbox by
    `job_create`. The import's speed settings (a shorter thread switch interval for its writer thread, and
    `synchronous_commit = off` for each batch's transaction) are set inside the run and undone after it."""
    from .services import run_job

    return run_job(job_id).status


@task("imports.resume_stale", acks_late=True)
def resume_stale() -> list[str]:
    """Re-enqueue the jobs no worker is on (beat runs this every minute): RUNNING with a heartbeat older than
    IMPORT_HEARTBEAT_STALE_SECONDS (its worker died; the unacked message only comes back after the broker's
    visibility timeout) and QUEUED for longer than that (a lost message). Through the outbox, as `job_create`
    sends a job's run: with the broker away the runs wait for it in the database, none lost. Safe to repeat:
    `run` leaves a finished job, or one with a live heartbeat, as it is. Returns the ids re-enqueued."""
    from core import outbox

    from .services import heartbeat_stale

    now = timezone.now()
    cutoff = now - heartbeat_stale()
    # A queued job's heartbeat is when it was last sent: one sent again is not sent again for as long.
    lost = (Q(status=ImportStatus.RUNNING) & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
            | Q(status=ImportStatus.QUEUED, created_at__lt=cutoff)
            & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)))
    with transaction.atomic():
        ids = [str(pk) for pk in ImportJob.objects.select_for_update(skip_locked=True).filter(lost)
               .order_by("created_at").values_list("pk", flat=True)]
        ImportJob.objects.filter(pk__in=ids, status=ImportStatus.QUEUED).update(heartbeat_at=now)
        for job_id in ids:
            outbox.enqueue(RUN, kwargs={"job_id": job_id}, key=job_id)
    if ids:
        logger.warning("re-enqueued %d stale import job(s): %s", len(ids), ", ".join(ids))
    return ids
