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
from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address
from psycopg.types.json import Jsonb

from core import context
from core.bulk import NewRows, copy_insert

from .models import GLOBAL_CHAIN, AuditEvent, ChainHead


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


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


def compute_hash(prev_hash: str, event: AuditEvent | SimpleNamespace) -> str:
    return hashlib.sha256((prev_hash + _canonical(_payload(event))).encode()).hexdigest()


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    # Round-trip so what is hashed now is exactly what is read back from the JSON column later.
    return json.loads(_canonical(changes))


def _stored_ip(ip: str | None) -> str | None:
    """The address as PostgreSQL's inet column gives it back (the hash must cover that); None when unusable."""
    if not ip:
        return None
    try:
        return clean_ipv6_address(ip) if ":" in ip else str(ipaddress.IPv4Address(ip))
    except (ValidationError, ValueError):
        return None


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
    """Append one event to the chain of `agency` (or of the actor's agency, or the global chain)."""
    ctx = context.current()
    if actor is None and ctx.user is not None and getattr(ctx.user, "is_authenticated", False):
        actor = ctx.user
    if agency is None:
        agency = getattr(obj, "agency", None) or getattr(actor, "agency", None)
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
    chain = str(agency.pk) if agency is not None else GLOBAL_CHAIN

    ChainHead.objects.get_or_create(chain=chain)
    head = ChainHead.objects.select_for_update().get(chain=chain)
    event = AuditEvent(
        chain=chain,
        seq=head.last_seq + 1,
        at=timezone.now(),
        agency_code=agency.code if agency is not None else "",
        actor_id=getattr(actor, "pk", None),
        actor=getattr(actor, "username", "") or "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        case_id=case_id,
        changes=_jsonable(changes or {}),
        request_id=ctx.request_id,
        ip=_stored_ip(ctx.ip),
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(head.last_hash, event)
    event.save(force_insert=True)
    head.last_seq = event.seq
    head.last_hash = event.hash
    head.save(update_fields=["last_seq", "last_hash"])
    return event


_NEW_EVENTS = NewRows(AuditEvent)


@dataclass
class PreparedEvents:
    """Events of one chain ready to be numbered: their rows, and each one's canonical JSON up to its `seq`."""

    chain: str
    rows: list[dict[str, Any]]
    texts: list[str]


def prepare_events(events: Iterable[dict[str, Any]], *, agency: Any, actor: Any = None) -> PreparedEvents:
    """Build many events (dicts of action, object_type, object_id, case_id, and `changes`, or `changes_json`:
    the changes' canonical JSON text) before the chain's head is locked, so that under the lock record_many
    only numbers and hashes them. `seq` is the last key of the canonical JSON (keys sorted), so all the text
    before it is made here, from the parts every event of the batch shares and each event's own.

    Changes must be plain JSON values (as core.snapshots gives them)."""
    ctx = context.current()
    chain = chain_of(agency)
    common = {"chain": chain, "agency_code": agency.code if agency is not None else "",
              "actor_id": getattr(actor, "pk", None), "actor": getattr(actor, "username", "") or "",
              "request_id": ctx.request_id, "ip": _stored_ip(ctx.ip), "at": timezone.now()}
    shared = _payload(SimpleNamespace(**common, seq=0, action="", object_type="", object_id="", case_id=None,
                                      changes={}))
    text = {key: _json_value(value) for key, value in shared.items()}
    after_action = f',"actor":{text["actor"]},"actor_id":{text["actor_id"]},"agency":{text["agency"]},"at":{text["at"]}'
    before_changes = f',"chain":{text["chain"]},"changes":'
    request = f',"request_id":{text["request_id"]},"seq":'
    rows, texts = [], []
    for item in events:
        changes_json = item.pop("changes_json", None)
        if changes_json is None:
            changes_json = _canonical(item["changes"])
        row = _NEW_EVENTS.new({**common, **item})
        row["changes"] = Jsonb(changes_json, dumps=_as_is)
        case_id = row["case_id"]
        rows.append(row)
        texts.append(f'{{"action":{_json_word(row["action"])}{after_action},"case_id":'
                     f'{_json_value(str(case_id) if case_id else None)}{before_changes}{changes_json},"ip":{text["ip"]}'
                     f',"object_id":{_json_value(row["object_id"])},"object_type":{_json_word(row["object_type"])}'
                     f'{request}')
    return PreparedEvents(chain, rows, texts)


def _json_value(value: Any) -> str:
    if type(value) is str:
        return encode_basestring(value)  # what json.dumps(value, ensure_ascii=False) gives, without its set-up
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, default=str)


_json_word = functools.lru_cache(maxsize=256)(_json_value)  # for the few values that repeat: actions, types


def _as_is(text: str) -> str:
    return text


def record_many(prepared: PreparedEvents) -> int:
    """Append prepared events to their chain under a single lock of its head, written with COPY: how a bulk
    import records each row it wrote. Runs in the caller's transaction, which must be open: the events stand
    or fall with the writes they describe."""
    if not prepared.rows:
        return 0
    ChainHead.objects.get_or_create(chain=prepared.chain)
    head = ChainHead.objects.select_for_update().get(chain=prepared.chain)
    seq, last_hash = head.last_seq, head.last_hash
    for row, text in zip(prepared.rows, prepared.texts, strict=True):
        seq += 1
        row["seq"], row["prev_hash"] = seq, last_hash
        row["hash"] = last_hash = hashlib.sha256(f"{last_hash}{text}{seq}}}".encode()).hexdigest()
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
