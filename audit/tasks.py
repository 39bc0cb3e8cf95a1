"""Background verification of the audit chains (scheduled by beat, runnable on demand)."""

import logging

from django.core.cache import cache
from django.utils import timezone

from core.tasks import task

from .models import ChainHead
from .services import verify_chain

logger = logging.getLogger(__name__)


def verification_key(chain: str) -> str:
    return f"audit:verification:{chain}"


@task("audit.verify_chains", acks_late=True, soft_time_limit=1800, time_limit=1900)
def verify_chains() -> None:
    """Walk every chain; remember each result in the cache and log a broken one loudly. Only reads: a rerun is
    harmless."""
    for chain in ChainHead.objects.order_by("chain").values_list("chain", flat=True):
        result = verify_chain(chain)
        cache.set(
            verification_key(chain),
            {"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq,
             "reason": result.reason, "at": timezone.now().isoformat()},
            timeout=None,
        )
        if not result.ok:
            logger.error("audit chain %s broken at seq %s: %s", chain, result.first_bad_seq, result.reason)
