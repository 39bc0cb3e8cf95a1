"""Cross-referencing's tasks (README § Workers): full runs and their parts, sent through the outbox by
`xref.services`. (The incremental task, `xref.records_changed`, is the outbox's own: core.outbox.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core.tasks import task


@task("xref.run", acks_late=True, soft_time_limit=settings.XREF_RUN_SOFT_TIME_LIMIT,
      time_limit=settings.XREF_RUN_TIME_LIMIT, job_arg="run_id")
def run(run_id: Any) -> bool:
    """Start a full run: index its records, train the model, split it into parts sent through the outbox.
    Idempotent: a run already split or finished is left as it is (a second delivery does nothing)."""
    from .services import run_start

    return run_start(run_id)


@task("xref.run_part", acks_late=True, soft_time_limit=settings.XREF_RUN_SOFT_TIME_LIMIT,
      time_limit=settings.XREF_RUN_TIME_LIMIT, job_arg="run_id")
def run_part(run_id: Any, part: int) -> bool:
    """Score one part of a run's candidate pairs and upsert its matches; the last part ends the run.
    Idempotent: a part counted done is not done again; its upserts write the same rows."""
    from .services import run_part as do_part

    return do_part(run_id, int(part))


@task("xref.resume_stale", acks_late=True)
def resume_stale() -> list[str]:
    """Beat's sweep (every minute) for the runs no worker is on: `services.resume_stale`."""
    from .services import resume_stale as resume

    return resume()
