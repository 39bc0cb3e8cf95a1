"""What keeps the audit trail honest against someone who holds the database: the triggers refuse TRUNCATE and a
chain head moving backwards; signed checkpoints, written by beat with a key the database does not hold and exported
outside it, catch a chain that was rewritten (hashes recomputed) or truncated (head rewound) by the table's owner;
verification starts at the latest signed checkpoint and does bounded work."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import DatabaseError, connection, connections, transaction

from audit.checkpoints import (
    CheckpointKeyError,
    key_id,
    public_key_text,
    signature_problem,
    signed_text,
    signing_key,
    verification_keys,
)
from audit.models import AuditCheckpoint, AuditEvent, ChainHead
from audit.services import checkpoints_write, compute_hash, record, verify_chain
from audit.tasks import checkpoint as checkpoint_task
from core.tasks import route

from . import factories
from .worker import beat_process, worker_process

VERIFY = "/api/v1/audit/verify/"


def raw_key(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())).decode()


@pytest.fixture
def signer(settings) -> Ed25519PrivateKey:
    """A signing key in the environment's form (AUDIT_CHECKPOINT_KEY, base64)."""
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_CHECKPOINT_KEY = raw_key(key)
    settings.AUDIT_CHECKPOINT_KEY_FILE = ""
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = []
    settings.AUDIT_CHECKPOINT_EXPORT_FILE = ""
    return key


def write_events(agency, n: int) -> None:
    for i in range(n):
        record(action="update", agency=agency, object_type="note", object_id=str(i), changes={"body": [None, i]})


def chain(agency) -> str:
    return str(agency.pk)


def events_of(agency) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(chain=chain(agency)).order_by("seq"))


def refused(sql: str, params: list | None = None, match: str = "refused") -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def as_owner(*statements: tuple[str, list]) -> None:
    """What the tables' owner can do: switch the triggers off, run the statements, switch them on again."""
    with connection.cursor() as cursor:
        for table in ("audit_auditevent", "audit_chainhead", "audit_auditcheckpoint"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        for table in ("audit_auditevent", "audit_chainhead", "audit_auditcheckpoint"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def rewrite_from(agency, seq: int, changes: dict) -> None:
    """Change event `seq` and recompute every hash after it and the head's: a chain that is consistent in itself,
    which a plain walk of its links and hashes passes."""
    events = [e for e in events_of(agency) if e.seq >= seq]
    events[0].changes = changes
    prev_hash = events[0].prev_hash
    statements = []
    for event in events:
        event.prev_hash = prev_hash
        event.hash = prev_hash = compute_hash(prev_hash, event)
        statements.append(("UPDATE audit_auditevent SET changes = %s::jsonb, prev_hash = %s, hash = %s WHERE id = %s",
                           [json.dumps(event.changes), event.prev_hash, event.hash, event.pk]))
    statements.append(("UPDATE audit_chainhead SET last_hash = %s WHERE chain = %s", [prev_hash, chain(agency)]))
    as_owner(*statements)


def assert_found(agency, seq: int, reason: str, auditor_client) -> None:
    """verify_audit (incremental and --full) exits non-zero naming `seq`; /audit/verify/ says the same."""
    for args in (["--agency", agency.code], ["--agency", agency.code, "--full"]):
        out = io.StringIO()
        with pytest.raises(CommandError, match=rf"\bseq {seq}\b"):
            call_command("verify_audit", *args, stdout=out)
        assert f"BROKEN at seq {seq} " in out.getvalue() and reason in out.getvalue(), out.getvalue()
    body = auditor_client.get(VERIFY).json()
    assert (body["ok"], body["first_bad_seq"], body["signed"]) == (False, seq, True), body
    assert reason in body["reason"]


# --- the database refuses -----------------------------------------------------------------------------------


def test_the_audit_table_refuses_truncate(world):
    write_events(world.a, 3)
    refused("TRUNCATE audit_auditevent", match="append-only: TRUNCATE refused")
    refused("TRUNCATE audit_auditevent, audit_chainhead CASCADE", match="TRUNCATE refused")
    assert len(events_of(world.a)) == 3
    write_events(world.a, 1)  # writing goes on as before
    assert verify_chain(chain(world.a)).ok and len(events_of(world.a)) == 4


@pytest.mark.parametrize("sql, match", [
    ("UPDATE audit_chainhead SET last_seq = last_seq - 1 WHERE chain = %s", "never moves backwards"),
    ("UPDATE audit_chainhead SET last_seq = 0, last_hash = '' WHERE chain = %s", "never moves backwards"),
    ("UPDATE audit_chainhead SET last_hash = 'f00d' WHERE chain = %s", "never moves backwards"),
    ("UPDATE audit_chainhead SET chain = 'elsewhere' WHERE chain = %s", "keeps its chain"),
    ("DELETE FROM audit_chainhead WHERE chain = %s", "never removed: DELETE refused"),
], ids=["lower-seq", "reset", "same-seq-other-hash", "rename", "delete"])
def test_a_chain_head_never_moves_backwards(world, sql, match):
    write_events(world.a, 3)
    before = ChainHead.objects.get(chain=chain(world.a))
    refused(sql, [chain(world.a)], match=match)
    after = ChainHead.objects.get(chain=chain(world.a))
    assert (after.last_seq, after.last_hash) == (before.last_seq, before.last_hash) == (3, events_of(world.a)[-1].hash)


def test_chain_heads_refuse_truncate_and_still_move_forward(world):
    write_events(world.a, 2)
    refused("TRUNCATE audit_chainhead", match="never removed: TRUNCATE refused")
    # Moving forward is what every write does, and setting a head to what it holds changes nothing: both pass.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_chainhead SET last_seq = last_seq, last_hash = last_hash WHERE chain = %s",
                       [chain(world.a)])
    write_events(world.a, 2)
    head = ChainHead.objects.get(chain=chain(world.a))
    assert (head.last_seq, head.last_hash) == (4, events_of(world.a)[-1].hash)
    assert verify_chain(chain(world.a)).ok


@pytest.mark.parametrize("sql", [
    "UPDATE audit_auditcheckpoint SET head_hash = 'f00d' WHERE chain = %s",
    "UPDATE audit_auditcheckpoint SET seq = seq + 1 WHERE chain = %s",
    "DELETE FROM audit_auditcheckpoint WHERE chain = %s",
    "TRUNCATE audit_auditcheckpoint",
], ids=["update-hash", "update-seq", "delete", "truncate"])
def test_checkpoints_are_append_only(world, signer, sql):
    write_events(world.a, 2)
    [written] = checkpoints_write()
    refused(sql, [chain(world.a)] if "%s" in sql else [], match="checkpoints are append-only")
    stored = AuditCheckpoint.objects.get(chain=chain(world.a))
    assert (stored.seq, stored.head_hash, stored.signature) == (2, written.head_hash, written.signature)


# --- keys ---------------------------------------------------------------------------------------------------


def test_a_checkpoint_is_signed_with_a_key_from_the_environment(world, signer, settings):
    write_events(world.a, 3)
    write_events(world.b, 1)
    written = checkpoints_write()
    assert sorted((c.agency_code, c.seq) for c in written) == [("ASB", 1), ("SSB", 3)]
    checkpoint = AuditCheckpoint.objects.get(chain=chain(world.a))
    assert checkpoint.head_hash == events_of(world.a)[-1].hash
    assert checkpoint.key_id == key_id(signer.public_key())
    # A verifier that holds only the public key (a process without the private one) accepts it.
    settings.AUDIT_CHECKPOINT_KEY = ""
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = [public_key_text(signer.public_key())]
    assert signing_key() is None
    assert signature_problem(checkpoint, verification_keys()) is None
    signer.public_key().verify(base64.b64decode(checkpoint.signature), signed_text(
        chain=checkpoint.chain, agency_code="SSB", seq=3, head_hash=checkpoint.head_hash, at=checkpoint.at))
    result = verify_chain(chain(world.a))
    assert (result.ok, result.signed, result.checkpoint, result.checked) == (True, True, checkpoint, 0)


@pytest.mark.parametrize("form", ["pem", "raw", "base64"])
def test_a_checkpoint_key_from_a_file(world, settings, tmp_path, form):
    path = tmp_path / "checkpoint.key"
    if form == "pem":
        out = io.StringIO()
        call_command("audit_keygen", str(path), stdout=out, stderr=io.StringIO())
        public = out.getvalue().strip()
        assert path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(CommandError, match="exists"):
            call_command("audit_keygen", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    else:
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        path.write_bytes(raw if form == "raw" else base64.b64encode(raw) + b"\n")
        public = public_key_text(key.public_key())
    settings.AUDIT_CHECKPOINT_KEY, settings.AUDIT_CHECKPOINT_KEY_FILE = "", str(path)
    write_events(world.a, 2)
    [checkpoint] = checkpoints_write()
    # Verified by the public key the key generator printed, alone.
    settings.AUDIT_CHECKPOINT_KEY_FILE, settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = "", [public]
    assert signature_problem(checkpoint, verification_keys()) is None
    assert verify_chain(chain(world.a)).checkpoint == checkpoint


@pytest.mark.parametrize("setting, value, message", [
    ("AUDIT_CHECKPOINT_KEY_FILE", "/nonexistent/checkpoint.key", "cannot read"),
    ("AUDIT_CHECKPOINT_KEY", "not base64!", "not base64"),
    ("AUDIT_CHECKPOINT_KEY", base64.b64encode(b"short").decode(), "32 bytes, not 5"),
    ("AUDIT_CHECKPOINT_PUBLIC_KEYS", ["AAAA"], "32 bytes, not 3"),
])
def test_an_unusable_key_is_a_clear_configuration_error(world, settings, setting, value, message):
    setattr(settings, setting, value)
    write_events(world.a, 1)
    with pytest.raises(CheckpointKeyError, match=message):
        verification_keys()
    with pytest.raises(SystemCheckError, match=rf"audit.E001.*{message}"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    if setting != "AUDIT_CHECKPOINT_PUBLIC_KEYS":  # the writer needs only the private key
        with pytest.raises(CheckpointKeyError, match=message):
            checkpoint_task()
    assert not AuditCheckpoint.objects.exists()


def test_without_a_key_nothing_is_signed_and_verification_says_so(world, settings, client_for, caplog):
    settings.AUDIT_CHECKPOINT_KEY = settings.AUDIT_CHECKPOINT_KEY_FILE = ""
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = []
    write_events(world.a, 2)
    with caplog.at_level(logging.WARNING, logger="audit.tasks"):
        checkpoint_task()
    assert "no signing key" in caplog.text
    assert not AuditCheckpoint.objects.exists()
    out = io.StringIO()
    call_command("verify_audit", "--agency", "SSB", stdout=out)
    assert "SSB: intact, 2 events from seq 1 to seq 2 (unsigned: no checkpoint key configured)" in out.getvalue()
    auditor = factories.user(world.a, "auditor")
    body = client_for(auditor).get(VERIFY).json()
    assert (body["ok"], body["signed"], body["checkpoint"], body["checked"]) == (True, False, None, 2)


def test_a_rotated_key_still_verifies_the_old_checkpoints_while_listed(world, signer, settings):
    write_events(world.a, 2)
    [old] = checkpoints_write()
    settings.AUDIT_CHECKPOINT_KEY = raw_key(Ed25519PrivateKey.generate())
    write_events(world.a, 2)
    [new] = checkpoints_write()
    assert old.key_id != new.key_id
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = [public_key_text(signer.public_key())]
    result = verify_chain(chain(world.a), full=True)
    assert (result.ok, result.checked) == (True, 4)
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = []  # the old key forgotten: its checkpoints prove nothing
    result = verify_chain(chain(world.a), full=True)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "unknown key" in result.reason


# --- writing and exporting ----------------------------------------------------------------------------------


def test_a_checkpoint_is_written_only_when_the_head_moved_and_is_exported(world, signer, settings, tmp_path,
                                                                          caplog):
    export = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_EXPORT_FILE = str(export)
    write_events(world.a, 3)
    with caplog.at_level(logging.INFO, logger="audit.checkpoint"):
        [first] = checkpoints_write()
    assert checkpoints_write() == []  # nothing moved
    write_events(world.a, 2)
    [second] = checkpoints_write()
    assert (first.seq, second.seq) == (3, 5)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines == [
        {"chain": chain(world.a), "agency": "SSB", "seq": seq, "hash": c.head_hash, "at": c.at.isoformat(),
         "key_id": c.key_id, "signature": c.signature} for seq, c in ((3, first), (5, second))]
    logged = [r.getMessage() for r in caplog.records if r.name == "audit.checkpoint"]
    assert len(logged) == 1 and first.signature in logged[0] and first.head_hash in logged[0]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_write_one_checkpoint_per_head_position(world, signer, settings, tmp_path):
    export = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_EXPORT_FILE = str(export)
    write_events(world.a, 4)
    write_events(world.b, 2)
    runners = 6
    barrier = threading.Barrier(runners, timeout=30)
    written: list[int | str] = [0] * runners

    def run(i: int) -> None:
        try:
            barrier.wait()
            written[i] = len(checkpoints_write())
        except Exception as exc:
            written[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(n, int) for n in written) and sum(written) == 2, written  # type: ignore[arg-type]
    assert sorted(AuditCheckpoint.objects.values_list("agency_code", "seq")) == [("ASB", 2), ("SSB", 4)]
    assert len(export.read_text().splitlines()) == 2


@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_write_a_signed_checkpoint_and_export_it(world, tmp_path, settings):
    key = Ed25519PrivateKey.generate()
    export = tmp_path / "checkpoints.jsonl"
    write_events(world.a, 5)
    prefix = f"test-ckpt-{world.a.pk.hex[:6]}-"
    assert route("audit.checkpoint", (), {}, {}) == {"queue": f"{settings.TASK_QUEUE_PREFIX}audit"}
    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["task"] == "audit.checkpoint"
    with (worker_process(prefix, AUDIT_CHECKPOINT_KEY=raw_key(key), AUDIT_CHECKPOINT_EXPORT_FILE=str(export)),
          beat_process(prefix, AUDIT_CHECKPOINT_SECONDS="1")):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not AuditCheckpoint.objects.filter(chain=chain(world.a)).exists():
            time.sleep(0.3)
        write_events(world.a, 2)  # the head moves: the next beat's checkpoint follows it
        while time.monotonic() < deadline and not AuditCheckpoint.objects.filter(seq=7).exists():
            time.sleep(0.3)
    checkpoints = list(AuditCheckpoint.objects.filter(chain=chain(world.a)).order_by("seq"))
    assert [c.seq for c in checkpoints][-1] == 7 and len({c.seq for c in checkpoints}) == len(checkpoints)
    assert checkpoints[-1].head_hash == events_of(world.a)[-1].hash
    exported = [json.loads(line) for line in export.read_text().splitlines()]
    assert [(line["seq"], line["signature"]) for line in exported] == [(c.seq, c.signature) for c in checkpoints]
    # This process has only the public key: the worker's signatures hold, and the chain verifies from seq 7.
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = [public_key_text(key.public_key())]
    result = verify_chain(chain(world.a))
    assert result.checkpoint is not None
    assert (result.ok, result.signed, result.checkpoint.seq, result.checked) == (True, True, 7, 0)


# --- tampering that the triggers cannot stop, found by the checkpoints -----------------------------------------


@pytest.fixture
def signed_trail(world, signer) -> Iterator[list[AuditCheckpoint]]:
    """Agency A: checkpoints at seq 10 and 20, then 5 events more (25)."""
    write_events(world.a, 10)
    [first] = checkpoints_write()
    write_events(world.a, 10)
    [second] = checkpoints_write()
    write_events(world.a, 5)
    yield [first, second]


@pytest.fixture
def auditor(world, client_for):
    return client_for(factories.user(world.a, "auditor"))


def test_a_rewritten_chain_with_recomputed_hashes_is_found_by_the_checkpoints(world, signer, signed_trail, auditor,
                                                                             settings):
    rewrite_from(world.a, 14, {"body": [None, "forged"]})
    # In itself the chain holds: a walk of links and hashes without the checkpoints passes.
    settings.AUDIT_CHECKPOINT_KEY = ""
    unsigned = verify_chain(chain(world.a), full=True)
    assert (unsigned.ok, unsigned.signed, unsigned.checked) == (True, False, 25)
    # Against the signed checkpoints it does not: the event at 20 no longer has the signed hash.
    settings.AUDIT_CHECKPOINT_PUBLIC_KEYS = [public_key_text(signer.public_key())]
    assert_found(world.a, 20, "rewritten after seq 10", auditor)


def test_a_truncated_chain_is_found(world, signed_trail, auditor):
    # The owner deletes the last events back to 16 and rewinds the head to 15, as if nothing came after.
    fifteen = events_of(world.a)[14]
    as_owner(("DELETE FROM audit_auditevent WHERE chain = %s AND seq > 15", [chain(world.a)]),
             ("UPDATE audit_chainhead SET last_seq = 15, last_hash = %s WHERE chain = %s",
              [fifteen.hash, chain(world.a)]))
    assert_found(world.a, 16, "truncated", auditor)


def test_a_rewound_head_is_found(world, signed_trail, auditor):
    as_owner(("UPDATE audit_chainhead SET last_seq = 12, last_hash = %s WHERE chain = %s",
              [events_of(world.a)[11].hash, chain(world.a)]))
    assert_found(world.a, 13, "rewound", auditor)


@pytest.mark.parametrize("claims_our_key", [False, True], ids=["their-key", "our-key-id"])
def test_a_forged_checkpoint_is_found(world, signed_trail, auditor, claims_our_key):
    """A forger rewrites the chain and adds a checkpoint of the rewritten head, signed with a key of their own
    (inserting is all the triggers let anyone do)."""
    rewrite_from(world.a, 22, {"body": [None, "forged"]})
    head = ChainHead.objects.get(chain=chain(world.a))
    theirs = Ed25519PrivateKey.generate()
    at = signed_trail[1].at
    text = signed_text(chain=chain(world.a), agency_code="SSB", seq=25, head_hash=head.last_hash, at=at)
    claimed = signed_trail[1].key_id if claims_our_key else key_id(theirs.public_key())
    AuditCheckpoint.objects.create(chain=chain(world.a), agency_code="SSB", seq=25, head_hash=head.last_hash, at=at,
                                   key_id=claimed, signature=base64.b64encode(theirs.sign(text)).decode())
    assert_found(world.a, 25, "does not verify" if claims_our_key else "unknown key", auditor)


def test_tampering_after_the_latest_checkpoint_is_found_by_the_incremental_walk(world, signed_trail, auditor):
    as_owner(("UPDATE audit_auditevent SET actor = 'mallory' WHERE chain = %s AND seq = 23", [chain(world.a)]))
    assert_found(world.a, 23, "content does not match its hash", auditor)


def test_text_rewritten_before_a_checkpoint_with_its_hash_kept_takes_the_full_walk(world, signed_trail, auditor):
    """What the incremental check trusts: the events before the latest checkpoint hash to it. An edit that kept
    the stored hashes is found by rehashing them: the full walk (verify_audit --full, beat's verify_chains)."""
    as_owner(("UPDATE audit_auditevent SET actor = 'mallory' WHERE chain = %s AND seq = 5", [chain(world.a)]))
    assert verify_chain(chain(world.a)).ok
    call_command("verify_audit", "--agency", "SSB", stdout=io.StringIO())
    result = verify_chain(chain(world.a), full=True)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "content does not match its hash")
    with pytest.raises(CommandError, match=r"\bseq 5\b"):
        call_command("verify_audit", "--agency", "SSB", "--full", stdout=io.StringIO())


# --- bounded work -------------------------------------------------------------------------------------------


def test_verify_rehashes_only_the_events_after_the_latest_checkpoint(world, signed_trail, auditor, settings):
    body = auditor.get(VERIFY).json()
    assert body == {"ok": True, "checked": 5, "first_bad_seq": None, "reason": "", "from_seq": 21, "head_seq": 25,
                    "signed": True, "complete": True,
                    "checkpoint": {"seq": 20, "hash": signed_trail[1].head_hash,
                                   "at": signed_trail[1].at.isoformat().replace("+00:00", "Z"),
                                   "key_id": signed_trail[1].key_id}}
    out = io.StringIO()
    call_command("verify_audit", "--agency", "SSB", stdout=out)
    assert "SSB: intact, 5 events from the signed checkpoint at seq 20 to seq 25" in out.getvalue()
    full = verify_chain(chain(world.a), full=True)
    assert (full.ok, full.checked, full.from_seq) == (True, 25, 1)

    # More events since the checkpoint than the request may rehash: it says how far it got.
    settings.AUDIT_VERIFY_MAX_EVENTS = 3
    body = auditor.get(VERIFY).json()
    assert (body["ok"], body["checked"], body["from_seq"], body["complete"]) == (True, 3, 21, False)
