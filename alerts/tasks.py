"""The alerts' tasks (README § Workers): a full pass of the red-flag rules and its parts, sent through the
outbox by `alerts.services`. (Evaluation after a write runs in the outbox's own records_changed task.)"""

from __future__ import annotations

from typing import Any

from core.tasks import TRANSIENT, task


@task("alerts.run", acks_late=True, job_arg="run_id")
def run(run_id: Any) -> bool:
    """Plan a full pass and send its parts. Idempotent: a run already started is left as it is."""
    from . import services

    try:
        return services.run_start(run_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        services.run_fail(run_id, exc)
        raise


@task("alerts.run_part", acks_late=True, job_arg="run_id")
def run_part(run_id: Any, part: int) -> bool:
    """Evaluate one part of a full pass; the last part ends it. Idempotent: a part counted done is not done again,
    and evaluating twice settles to the same alerts."""
    from . import services

    try:
        return services.run_part(run_id, int(part))
    except TRANSIENT:
        raise
    except Exception as exc:
        services.run_fail(run_id, exc)
        raise
