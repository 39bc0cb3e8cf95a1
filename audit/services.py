"""Writing and verifying the audit chain. Every write of the project records here, in its own transaction."""

from __future__ import annotations

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
from django.db import models, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address
from psycopg.types.json import Jsonb

from core import context
from core.bulk import NewRows, copy_insert
from core.snapshots import created_json

from .models import GLOBAL_CHAIN, AuditEvent, ChainHead


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
    ChainHead.objects.get_or_create(chain=chain)
    return ChainHead.objects.select_for_update().get(chain=chain)


@transaction.atomic
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
    ChainHead.objects.get_or_create(chain=chain)
    head = ChainHead.objects.select_for_update().get(chain=chain)
    # One event is made as a batch's are (its time taken under the lock, so times follow the chain's order).
    prepared = prepare_events([{"action": action, "object_type": object_type, "object_id": object_id,
                                "case_id": case_id, "changes": changes or {}}], agency=agency, actor=actor)
    row, text = prepared.rows[0], prepared.texts[0]
    event = AuditEvent(**{**row, "changes": json.loads(row["changes"].obj)})
    event.seq, event.prev_hash = head.last_seq + 1, head.last_hash
    event.hash = hashlib.sha256(f"{head.last_hash}{_with_seq(text, event.seq)}".encode()).hexdigest()
    event.save(force_insert=True)
    head.last_seq = event.seq
    head.last_hash = event.hash
    head.save(update_fields=["last_seq", "last_hash"])
    return event


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
    chain: str
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str = ""


def verify_chain(chain: str) -> Verification:
    """Walk one chain in order and report the first event whose link or hash does not hold."""
    prev_hash = ""
    expected_seq = 1
    checked = 0
    events = AuditEvent.objects.filter(chain=chain).order_by("seq")
    for event in events.iterator(chunk_size=2000):
        checked += 1
        if event.seq != expected_seq:
            return Verification(chain, False, checked, expected_seq, "missing event")
        if event.prev_hash != prev_hash:
            return Verification(chain, False, checked, event.seq, "prev_hash does not match")
        if compute_hash(prev_hash, event) != event.hash:
            return Verification(chain, False, checked, event.seq, "content does not match its hash")
        prev_hash = event.hash
        expected_seq += 1
    head = ChainHead.objects.filter(chain=chain).first()
    if head is not None and head.last_seq != expected_seq - 1:
        return Verification(chain, False, checked, expected_seq, "events missing at the end")
    return Verification(chain, True, checked, None)


def chain_of(agency: Any) -> str:
    return str(agency.pk) if agency is not None else GLOBAL_CHAIN
