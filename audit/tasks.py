"""The audit chains' background work (scheduled by beat, runnable on demand): signed checkpoints and verification."""

import logging

from django.core.cache import cache
from django.utils import timezone

from core.tasks import task

from .checkpoints import signing_key
from .models import ChainHead
from .services import checkpoints_write, verify_chain

logger = logging.getLogger(__name__)


def verification_key(chain: str) -> str:
    return f"audit:verification:{chain}"


@task("audit.verify_chains", acks_late=True, soft_time_limit=1800, time_limit=1900)
def verify_chains() -> None:
    """Walk every chain in full, against every signed checkpoint; remember each result in the cache and log a
    broken one loudly. Only reads: a rerun is harmless."""
    for chain in ChainHead.objects.order_by("chain").values_list("chain", flat=True):
        result = verify_chain(chain, full=True)
        cache.set(verification_key(chain), {**result.summary(), "at": timezone.now().isoformat()}, timeout=None)
        if not result.ok:
            logger.error("audit chain %s broken at seq %s: %s", chain, result.first_bad_seq, result.reason)


@task("audit.checkpoint", acks_late=True, soft_time_limit=120, time_limit=180)
def checkpoint() -> None:
    """Sign a checkpoint of every chain whose head moved since its last one. Idempotent: a rerun, or two runs at
    once, leave one checkpoint per head position."""
    if signing_key() is None:
        logger.warning("audit checkpoints are not written: no signing key (AUDIT_CHECKPOINT_KEY_FILE or "
                       "AUDIT_CHECKPOINT_KEY) is configured")
        return
    checkpoints_write()
