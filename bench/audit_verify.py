"""Audit verification: the full walk of a chain beside the incremental check from its latest signed checkpoint.

    python bench/audit_verify.py [--events N] [--after N] [--database NAME]     (default 32,000 and 300)

Writes N audit events to one agency's chain (as a bulk writer does: audit.services.record_many, a batch at a
time), signs a checkpoint of its head with a key generated for the run, writes `--after` more events (what a busy
agency writes between two checkpoints) and times: the full walk (`verify_audit --full`, beat's verify_chains:
every event rehashed, every checkpoint checked), the incremental check (`verify_audit`, and /audit/verify/ with
AUDIT_VERIFY_MAX_EVENTS) and the incremental check with no event after the checkpoint.

The database is a dedicated one (DATABASE_URL's server, --database, default `bench_audit_verify`), dropped,
created and migrated at the start: audit events cannot be deleted, so a bench never writes them where it would
leave them behind. DJANGO_SETTINGS_MODULE defaults to config.settings.local.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

DEFAULT_DATABASE = "bench_audit_verify"
BATCH = 2000


def write_events(agency: object, count: int, start: int) -> None:
    from django.db import transaction

    from audit.services import prepare_events, record_many

    for first in range(start, start + count, BATCH):
        size = min(BATCH, start + count - first)
        events = [{"action": "update", "object_type": "person", "object_id": str(first + i),
                   "changes": {"name": [f"Person {first + i}", f"Person {first + i} (renamed)"],
                               "phones": [[], ["+8610555" + f"{first + i:05d}"]]}} for i in range(size)]
        with transaction.atomic():
            record_many(prepare_events(events, agency=agency))


def timed(label: str, call: object) -> None:
    started = time.perf_counter()
    result = call()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    assert result.ok, (label, result)
    start = f"checkpoint {result.checkpoint.seq}" if result.checkpoint else "seq 1"
    print(f"{label:<44} {seconds:8.3f} s   checked {result.checked:>6}   from {start:<16} complete {result.complete}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=32_000, help="events on the chain when it is checkpointed")
    parser.add_argument("--after", type=int, default=300, help="events written after the checkpoint")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="the bench's own database (dropped first)")
    args = parser.parse_args()
    os.environ["DATABASE_NAME"] = args.database
    import django

    django.setup()
    from xref_quality import fresh_database

    where = fresh_database(args.database)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from django.conf import settings

    from accounts.services import agency_ensure
    from audit.checkpoints import public_key_text
    from audit.services import chain_of, checkpoints_write, verify_chain

    print(f"database: {where} (fresh)")
    agency, _ = agency_ensure(code="BENCH", name="Bench agency")
    chain = chain_of(agency)
    started = time.perf_counter()
    write_events(agency, args.events, 1)
    print(f"wrote {args.events} events in {time.perf_counter() - started:.1f} s")
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_CHECKPOINT_KEY = ""
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = [public_key_text(key.public_key())]
    limit = settings.AUDIT_VERIFY_MAX_EVENTS

    timed(f"full walk, {args.events} events, no checkpoint", lambda: verify_chain(chain, full=True))
    from base64 import b64encode

    from cryptography.hazmat.primitives import serialization

    settings.AUDIT_CHECKPOINT_KEY = b64encode(key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode()
    [checkpoint] = checkpoints_write()
    settings.AUDIT_CHECKPOINT_KEY = ""  # verification holds only the public key
    timed(f"incremental, checkpoint at the head ({checkpoint.seq})", lambda: verify_chain(chain, max_events=limit))
    write_events(agency, args.after, args.events + 1)
    total = args.events + args.after
    timed(f"full walk, {total} events, 1 checkpoint", lambda: verify_chain(chain, full=True))
    timed(f"incremental, {args.after} events after the checkpoint", lambda: verify_chain(chain, max_events=limit))


if __name__ == "__main__":
    main()
