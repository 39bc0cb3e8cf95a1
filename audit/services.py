"""Writing and verifying the audit chain. Every write of the project records here, in its own transaction."""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address
from psycopg.types.json import Jsonb

from core import context
from core.bulk import NewRows, copy_insert
from core.snapshots import created_json

from .checkpoints import export, key_id, signature_problem, signed_text, signing_key, verification_keys
from .models import GLOBAL_CHAIN, AuditCheckpoint, AuditEvent, ChainHead


def _canonical(payload: Any) -> str:
    """The reference canonical JSON (keys sorted, compact, UTF-8 kept): what `event_text` writes faster."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# --- the one writer of an event's text ---------------------------------------------------------------
#
# An event's hash is sha256(prev_hash + canonical JSON of its payload), the payload's keys sorted:
#   action, actor, actor_id, agency, at, case_id, chain, changes, ip, object_id, object_type, request_id, seq
# `seq` comes last, so all the text before it can be made before the chain's head is locked (and is, for a
# batch); `event_text` makes it for one event and for many alike, from the same parts.


def _payload(event: AuditEvent | SimpleNamespace) -> dict[str, Any]:
    """The fields the hash covers; a change to any of them breaks the chain."""
    at = event.at.isoformat() if isinstance(event.at, datetime) else str(event.at)
    return {
        "chain": event.chain,
        "seq": event.seq,
        "at": at,
        "agency": event.agency_code,
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "case_id": str(event.case_id) if event.case_id else None,
        "changes": event.changes,
        "request_id": event.request_id,
        "ip": event.ip,
    }


def _json_value(value: Any) -> str:
    if type(value) is str:
        return encode_basestring(value)  # what json.dumps(value, ensure_ascii=False) gives, without its set-up
    if value is None:
        return "null"
    return _canonical(value)


_json_word = functools.lru_cache(maxsize=256)(_json_value)  # for the few values that repeat: actions, types


@dataclass(frozen=True)
class _Shared:
    """The text of the fields a batch's events share (one event is a batch of one)."""

    after_action: str  # ,"actor":…,"actor_id":…,"agency":…,"at":…,"case_id":
    before_changes: str  # ,"chain":…,"changes":
    after_changes: str  # ,"ip":…,"object_id":
    request: str  # ,"request_id":…,"seq":

    @classmethod
    def of(cls, *, chain: str, agency_code: str, actor_id: Any, actor: str, at: Any, request_id: str,
           ip: str | None) -> _Shared:
        at_text = at.isoformat() if isinstance(at, datetime) else str(at)
        return cls(
            after_action=(f',"actor":{_json_value(actor)},"actor_id":{_json_value(str(actor_id) if actor_id else None)}'
                          f',"agency":{_json_value(agency_code)},"at":{_json_value(at_text)},"case_id":'),
            before_changes=f',"chain":{_json_value(chain)},"changes":',
            after_changes=f',"ip":{_json_value(ip)},"object_id":',
            request=f',"request_id":{_json_value(request_id)},"seq":',
        )


def event_text(shared: _Shared, *, action: str, object_type: str, object_id: str, case_id: Any, changes: str,
               seq: int | None = None) -> str:
    """THE canonical text of an event (what its hash covers, after the previous hash), for a single event and
    for a batch alike; `changes` is `changes_text(...)` of its changes. Without `seq`: the text up to it, the
    same for any seq, which `_with_seq` completes under the chain's lock."""
    text = (f'{{"action":{_json_word(action)}{shared.after_action}{_json_value(str(case_id) if case_id else None)}'
            f'{shared.before_changes}{changes}{shared.after_changes}{_json_value(object_id)}'
            f',"object_type":{_json_word(object_type)}{shared.request}')
    return text if seq is None else _with_seq(text, seq)


def _with_seq(text: str, seq: int) -> str:
    return f"{text}{seq}}}"


def check_changes(changes: Any) -> None:
    """An event's changes are {field: [old, new]}, always: a ValueError names the first that is not."""
    if not isinstance(changes, dict):
        raise ValueError(f"An audit event's changes are a dict of [old, new] pairs, not {type(changes).__name__}.")
    for name, pair in changes.items():
        if not isinstance(name, str) or not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"An audit event's change of {name!r} must be [old, new], not {pair!r}.")


def changes_text(changes: dict[str, Any] | None = None, *, created: tuple[type[models.Model], Any] | None = None
                 ) -> str:
    """The canonical text of an event's changes: of `changes` ({field: [old, new]}, checked), or, the fast path
    of a bulk writer, of the creation of `created` = (model, new row as a dict of attname → value, or an
    unsaved instance), which is `changes_text(diff({}, snapshot(saved instance)))` made straight from its
    values."""
    if created is not None:
        model, row = created
        return created_json(model, row if isinstance(row, dict) else row.__dict__)
    changes = changes or {}
    check_changes(changes)
    # Through JSON and back, so the text is the one made again from the stored JSON (tuples, keys that
    # collide once made text, …): what is hashed now is what verify_chain hashes later.
    return _canonical(json.loads(_canonical(changes)))


def compute_hash(prev_hash: str, event: AuditEvent | SimpleNamespace) -> str:
    return hashlib.sha256((prev_hash + canonical_text(event)).encode()).hexdigest()


def canonical_text(event: AuditEvent | SimpleNamespace) -> str:
    """The text `event`'s hash covers (an event as stored, or being stored), by `event_text`."""
    shared = _Shared.of(chain=event.chain, agency_code=event.agency_code, actor_id=event.actor_id,
                        actor=event.actor, at=event.at, request_id=event.request_id, ip=event.ip)
    return event_text(shared, action=event.action, object_type=event.object_type, object_id=event.object_id,
                      case_id=event.case_id, changes=_canonical(event.changes), seq=event.seq)


def _stored_ip(ip: str | None) -> str | None:
    """The address as PostgreSQL's inet column gives it back (the hash must cover that); None when unusable."""
    if not ip:
        return None
    try:
        return clean_ipv6_address(ip) if ":" in ip else str(ipaddress.IPv4Address(ip))
    except (ValidationError, ValueError):
        return None


def _common(agency: Any, actor: Any, at: datetime | None = None) -> dict[str, Any]:
    """The fields an event takes from where it is written: its chain, its actor (the request's user when not
    given), the request's id and address, the time."""
    ctx = context.current()
    if actor is None and ctx.user is not None and getattr(ctx.user, "is_authenticated", False):
        actor = ctx.user
    return {"chain": chain_of(agency), "agency_code": agency.code if agency is not None else "",
            "actor_id": getattr(actor, "pk", None), "actor": getattr(actor, "username", "") or "",
            "request_id": ctx.request_id, "ip": _stored_ip(ctx.ip), "at": at or timezone.now()}


def _locked_head(chain: str) -> ChainHead:
    """The chain's head row, locked for the rest of the transaction: one statement, except for a chain's first
    event, which makes the row first."""
    head = ChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is None:
        ChainHead.objects.get_or_create(chain=chain)
        head = ChainHead.objects.select_for_update().get(chain=chain)
    return head


@transaction.atomic(savepoint=False)  # inside a caller's transaction, the event stands or falls with it
def record(
    *,
    action: str,
    agency: Any = None,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    case_id: Any = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain of `agency` (or of the actor's agency, or the global chain). `changes`
    is {field: [old, new]}."""
    ctx = context.current()
    if actor is None and ctx.user is not None and getattr(ctx.user, "is_authenticated", False):
        actor = ctx.user
    if agency is None:
        agency = getattr(obj, "agency", None) or getattr(actor, "agency", None)
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
    chain = chain_of(agency)
    # The head locked, the event inserted and the head moved: the statements a save of each would make, written
    # once (`_RECORD_SQL`) rather than built by the ORM for every event, as every write and audited read makes one.
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL["head"], [chain])
        locked = cursor.fetchone()
    if locked is None:  # the chain's first event: its head row is made first
        head = _locked_head(chain)
        locked = (head.last_seq, head.last_hash)
    last_seq, last_hash = locked
    # One event is made as a batch's are (its time taken under the lock, so times follow the chain's order).
    prepared = prepare_events([{"action": action, "object_type": object_type, "object_id": object_id,
                                "case_id": case_id, "changes": changes or {}}], agency=agency, actor=actor)
    row, text = prepared.rows[0], prepared.texts[0]
    row["seq"], row["prev_hash"] = last_seq + 1, last_hash
    row["hash"] = hashlib.sha256(f"{last_hash}{_with_seq(text, row['seq'])}".encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL["insert"], [row[name] for name in _EVENT_COLUMNS])
        cursor.execute(_RECORD_SQL["move"], [row["seq"], row["hash"], chain])
    event = AuditEvent(**{**row, "changes": json.loads(row["changes"].obj)})
    event._state.adding, event._state.db = False, connection.alias
    return event


_EVENT_COLUMNS = [field.attname for field in AuditEvent._meta.concrete_fields]
_QUOTED_COLUMNS = ", ".join(connection.ops.quote_name(field.column) for field in AuditEvent._meta.concrete_fields)
_RECORD_SQL = {  # the model's own table and column names; every value is a parameter
    "head": 'SELECT "last_seq", "last_hash" FROM "audit_chainhead" WHERE "chain" = %s FOR UPDATE',
    "insert": f'INSERT INTO "audit_auditevent" ({_QUOTED_COLUMNS}) '  # noqa: S608 (the model's names)
              f'VALUES ({", ".join(["%s"] * len(_EVENT_COLUMNS))})',
    "move": 'UPDATE "audit_chainhead" SET "last_seq" = %s, "last_hash" = %s WHERE "chain" = %s',
}


_NEW_EVENTS = NewRows(AuditEvent)


@dataclass
class PreparedEvents:
    """Events of one chain ready to be numbered: their rows, and each one's canonical text up to its `seq`."""

    chain: str
    rows: list[dict[str, Any]]
    texts: list[str]


def prepare_events(events: Iterable[dict[str, Any]], *, agency: Any, actor: Any = None,
                   at: datetime | None = None) -> PreparedEvents:
    """Build events (dicts of action, object_type, object_id, optional case_id, and either `changes`,
    {field: [old, new]}, or `created`: (model, new row), see `changes_text`) before the chain's head is locked,
    so that under the lock only their seq and hash are made: `record` for one, `record_many` for a batch."""
    common = _common(agency, actor, at)
    shared = _Shared.of(**common)
    rows, texts = [], []
    for item in events:
        created = item.pop("created", None)
        if created is not None:  # the fast path (changes_text's own), without a call for each event
            text = created_json(created[0], created[1] if type(created[1]) is dict else created[1].__dict__)
        else:
            text = changes_text(item.pop("changes", None))
        row = _NEW_EVENTS.new({**common, **item})
        row["changes"] = Jsonb(text, dumps=_as_is)
        rows.append(row)
        texts.append(event_text(shared, action=row["action"], object_type=row["object_type"],
                                object_id=row["object_id"], case_id=row["case_id"], changes=text))
    return PreparedEvents(common["chain"], rows, texts)


def _as_is(text: str) -> str:
    return text


def record_many(prepared: PreparedEvents) -> int:
    """Append prepared events to their chain under a single lock of its head, written with COPY: how a bulk
    writer records each record it wrote. Runs in the caller's transaction, which must be open: the events
    stand or fall with the writes they describe."""
    if not prepared.rows:
        return 0
    head = _locked_head(prepared.chain)
    seq, last_hash = head.last_seq, head.last_hash
    for row, text in zip(prepared.rows, prepared.texts, strict=True):
        seq += 1
        row["seq"], row["prev_hash"] = seq, last_hash
        row["hash"] = last_hash = hashlib.sha256(f"{last_hash}{_with_seq(text, seq)}".encode()).hexdigest()
    copy_insert(AuditEvent, prepared.rows)
    head.last_seq, head.last_hash = seq, last_hash
    head.save(update_fields=["last_seq", "last_hash"])
    return len(prepared.rows)


@dataclass
class Verification:
    """What a verification of one chain found: the first bad seq and why (or none), and how far it looked."""

    chain: str
    ok: bool
    checked: int  # events rehashed
    first_bad_seq: int | None
    reason: str = ""
    from_seq: int = 1  # the first event rehashed: 1, or the one after the signed checkpoint the walk started from
    head_seq: int = 0
    checkpoint: AuditCheckpoint | None = None  # that checkpoint
    signed: bool = False  # a verification key is configured, so signed checkpoints were checked
    complete: bool = True  # the walk reached the head (an incremental one stops after AUDIT_VERIFY_MAX_EVENTS)

    def summary(self) -> dict[str, Any]:
        """The verification as /audit/verify/ answers it and the beat task caches it."""
        checkpoint = self.checkpoint
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "from_seq": self.from_seq, "head_seq": self.head_seq, "signed": self.signed,
                "complete": self.complete,
                "checkpoint": None if checkpoint is None else {
                    "seq": checkpoint.seq, "hash": checkpoint.head_hash, "at": _api_time(checkpoint.at),
                    "key_id": checkpoint.key_id}}


def _api_time(at: datetime) -> str:
    """As the API writes times (UTC as "Z")."""
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_WALKED = ("chain", "seq", "at", "agency_code", "actor_id", "actor", "action", "object_type", "object_id",
           "case_id", "changes", "request_id", "ip", "prev_hash", "hash")


def verify_chain(chain: str, *, full: bool = False, max_events: int | None = None) -> Verification:
    """Verify one chain against its signed checkpoints (README § Audit trail).

    Every checkpoint's (seq, hash) must be the stored event's, and the latest checkpoint's signature must hold;
    then the events after it are rehashed, link by link, up to the head (at most `max_events` of them when
    given: /audit/verify/ gives AUDIT_VERIFY_MAX_EVENTS). `full`: every checkpoint's signature is checked and
    every event rehashed from the first. Without a verification key, checkpoints prove nothing and the walk starts
    at seq 1 (`signed` False). The first problem found (lowest seq) is reported."""
    keys = verification_keys()
    problems: list[tuple[int, str]] = []
    anchor = None
    # Checkpoints are read before the head, and only name committed heads: the head read next is at or past them.
    latest = AuditCheckpoint.objects.filter(chain=chain).order_by("-seq").first() if keys else None
    latest_problem = signature_problem(latest, keys) if latest is not None else None
    if latest is not None:
        earlier = AuditCheckpoint.objects.filter(chain=chain, seq__lt=latest.seq).order_by("seq")
        problems += [(cp.seq, problem) for cp in (earlier.iterator() if full else [])
                     if (problem := signature_problem(cp, keys))]
        if latest_problem is not None:
            problems.append((latest.seq, latest_problem))
        mismatch = _first_checkpoint_mismatch(chain, latest.seq, keys)
        if mismatch is not None:
            problems.append(mismatch)
        if not full and not problems:
            anchor = latest

    head = ChainHead.objects.filter(chain=chain).values_list("last_seq", "last_hash").first()
    head_seq: int
    head_hash: str | None
    if head is None:  # no head row: the stored events say how far the chain goes
        last = AuditEvent.objects.filter(chain=chain).order_by("-seq").values_list("seq", flat=True).first()
        head_seq, head_hash = last or 0, None
    else:
        head_seq, head_hash = head
    if latest is not None and latest_problem is None and latest.seq > head_seq:
        problems.append((head_seq + 1, f"the chain's head (seq {head_seq}) is behind the signed checkpoint at seq "
                                       f"{latest.seq}: the chain was rewound"))

    start = anchor.seq + 1 if anchor is not None else 1
    prev_hash = anchor.head_hash if anchor is not None else ""
    end = head_seq if full or max_events is None else min(head_seq, start + max_events - 1)
    checked, expected = 0, start
    rows = AuditEvent.objects.filter(chain=chain, seq__gte=start, seq__lte=end).order_by("seq")
    for values in rows.values_list(*_WALKED).iterator(chunk_size=2000):
        event = SimpleNamespace(**dict(zip(_WALKED, values, strict=True)))
        checked += 1
        if event.seq != expected:
            problems.append((expected, "missing event"))
            break
        if event.prev_hash != prev_hash:
            problems.append((event.seq, "prev_hash does not match"))
            break
        if compute_hash(prev_hash, event) != event.hash:
            problems.append((event.seq, "content does not match its hash"))
            break
        prev_hash = event.hash
        expected += 1
    else:
        if expected <= end:
            problems.append((expected, "events missing at the end"))
        elif expected == head_seq + 1 and head_hash is not None and head_seq > 0 and prev_hash != head_hash:
            problems.append((head_seq, "the chain's head does not hold its last event's hash"))
    first_bad_seq, reason = min(problems) if problems else (None, "")
    return Verification(chain, not problems, checked, first_bad_seq, reason, from_seq=start, head_seq=head_seq,
                        checkpoint=anchor, signed=bool(keys), complete=end >= head_seq)


def _first_checkpoint_mismatch(chain: str, up_to: int, keys: dict[str, Any]) -> tuple[int, str] | None:
    """The first checkpoint (to seq `up_to`) whose (seq, hash) is not the stored event's, as (first bad seq,
    reason): a forged checkpoint, a rewritten chain (its events no longer hash to the signed head) or a truncated
    one (the event a signed checkpoint names is gone). One query, whatever the number of checkpoints."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, e.hash IS NULL FROM audit_auditcheckpoint c"
            " LEFT JOIN audit_auditevent e ON e.chain = c.chain AND e.seq = c.seq"
            " WHERE c.chain = %s AND c.seq <= %s AND e.hash IS DISTINCT FROM c.head_hash ORDER BY c.seq LIMIT 1",
            [chain, up_to],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    checkpoint, missing = AuditCheckpoint.objects.get(pk=row[0]), row[1]
    problem = signature_problem(checkpoint, keys)
    if problem is not None:
        return checkpoint.seq, problem
    if missing:
        before = AuditEvent.objects.filter(chain=chain, seq__lt=checkpoint.seq).aggregate(last=Max("seq"))["last"]
        first_missing = (before or 0) + 1
        gone = f"event {first_missing} is" if first_missing == checkpoint.seq else (
            f"events {first_missing} to {checkpoint.seq} are")
        return first_missing, (f"{gone} missing, yet a signed checkpoint names seq {checkpoint.seq}: the chain was "
                               f"truncated")
    previous = AuditCheckpoint.objects.filter(chain=chain, seq__lt=checkpoint.seq).aggregate(last=Max("seq"))["last"]
    return checkpoint.seq, (f"event {checkpoint.seq} does not have the hash its signed checkpoint names: the chain "
                            f"was rewritten after seq {previous or 0}")


def chain_of(agency: Any) -> str:
    return str(agency.pk) if agency is not None else GLOBAL_CHAIN


_LOCK_CLASS = 0x41554454  # "AUDT"


# --- signed checkpoints: their one writer (keys and signatures: audit.checkpoints) ---------------------------------


def checkpoints_write() -> list[AuditCheckpoint]:
    """Sign and store a checkpoint of every chain whose head moved since its last checkpoint, exporting each;
    the new ones. Nothing without a signing key. Safe to run twice at once: one checkpoint per head position."""
    key = signing_key()
    if key is None:
        return []
    from accounts.models import Agency

    codes = {str(pk): code for pk, code in Agency.objects.values_list("pk", "code")}
    written = []
    for chain in ChainHead.objects.filter(last_seq__gt=0).order_by("chain").values_list("chain", flat=True):
        checkpoint = _checkpoint_chain(chain, codes.get(chain, ""), key)
        if checkpoint is not None:
            written.append(checkpoint)
    return written


@transaction.atomic
def _checkpoint_chain(chain: str, agency_code: str, key: Any) -> AuditCheckpoint | None:
    # Writers of this chain's checkpoint take turns (a writer of events is never held up); the head is read
    # after the lock, so a second writer sees the first one's checkpoint, committed, and finds nothing to do.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS, chain])
    head = ChainHead.objects.get(chain=chain)
    last = AuditCheckpoint.objects.filter(chain=chain).order_by("-seq").values_list("seq", flat=True).first()
    if last is not None and last >= head.last_seq:
        return None
    at = timezone.now()
    text = signed_text(chain=chain, agency_code=agency_code, seq=head.last_seq, head_hash=head.last_hash, at=at)
    checkpoint = AuditCheckpoint.objects.create(
        chain=chain, agency_code=agency_code, seq=head.last_seq, head_hash=head.last_hash, at=at,
        key_id=key_id(key.public_key()), signature=base64.b64encode(key.sign(text)).decode(),
    )
    # Exported before the commit: the record outside the database never lacks a checkpoint the database holds.
    export(checkpoint)
    return checkpoint
