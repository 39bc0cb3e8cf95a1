"""The one write path of cross-referencing's records (matches, decisions, identity clusters, runs, hits).

Every writer (the workers' tasks, the API's decision and run endpoints, the admin, `manage.py xref`) calls these.

- `records_changed`: the incremental pass after a committed write of persons or organisations (the outbox's
  `xref.records_changed` task calls it): index, find candidates, score, upsert.
- `run_create`, then `run_start` + `run_part` (the `xref.run` and `xref.run_part` tasks) or `run_sync`: a
  full pass over an agency's records (or a case's parties), split into parts that several workers share.
- `match_decide`: an analyst's decision; identity clusters follow. `same_as`: the clusters, read.
- `hits_sync`: the deconfliction hits of matches across agencies, one per side, kept in step with the matches
  by every write above.

How a scored pair becomes a match (`_upsert`): at or above XREF_PROPOSE_THRESHOLD it becomes, or stays, a
pending match (one row per ordered pair ever, written with INSERT … ON CONFLICT so that two workers on
overlapping pairs cannot make two); a decided pair keeps its decision whatever its new score (a rejected pair is
never proposed again); a pending match whose pair falls below the threshold, or one of whose records is
archived, is withdrawn (`archived`); with XREF_AUTO_CONFIRM_THRESHOLD set, an undecided pair scoring that or
more is confirmed by the system. The same records give the same rows: a pair whose score, features and
explanation did not change is not written again.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar
from uuid import UUID

import networkx as nx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import record, record_many
from core import outbox, policy
from core.services import audit_create

from . import matching, rules
from .models import IdentityMember, Match, MatchStatus, RunStatus, XrefRun

logger = logging.getLogger(__name__)

RUN_TASK = "xref.run"
RUN_PART_TASK = "xref.run_part"
AUTO_NOTE = "Confirmed automatically: the score reached XREF_AUTO_CONFIRM_THRESHOLD."
# Taken (for the transaction) by every rewrite of identity clusters: two decisions touching one cluster at once
# would otherwise each recompute it from what the other had not committed yet.
_IDENTITY_LOCK = 0x78726566  # "xref"

T = TypeVar("T")
Pair = tuple[UUID, UUID]


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _ordered(a: Any, b: Any) -> Pair:
    a, b = _uuid(a), _uuid(b)
    return (a, b) if a.int < b.int else (b, a)  # UUIDs order as PostgreSQL's uuid does (by their bytes)


# --- incremental ------------------------------------------------------------------------------------------------


def records_changed(entity_ids: Iterable[Any]) -> int:
    """Cross-reference these entities after a committed write: (re)index their blocking keys, find their
    candidates, score them and upsert the matches (withdrawing those that no longer hold). Idempotent. Returns
    how many matches were created or changed."""
    ids = sorted({_uuid(pk) for pk in entity_ids})
    changed = 0
    for chunk in _chunks(ids, settings.XREF_BATCH):
        with transaction.atomic():
            matching.index(chunk)
            pairs = {_ordered(a, b) for a, b in matching.candidates(chunk)}
            pairs |= _known_pairs(chunk)  # a match that is no longer a candidate is scored again, not forgotten
            changed += _upsert(pairs).changed
    return changed


def _known_pairs(entity_ids: Sequence[UUID]) -> set[Pair]:
    """The pairs of these entities that are matches now (not withdrawn)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT left_id, right_id FROM xref_match WHERE NOT archived AND left_id = ANY(%(ids)s::uuid[])
            UNION SELECT left_id, right_id FROM xref_match WHERE NOT archived AND right_id = ANY(%(ids)s::uuid[])
        """, {"ids": list(entity_ids)})
        return {(a, b) for a, b in cursor.fetchall()}


# --- the upsert of scored pairs ---------------------------------------------------------------------------------

_UPSERT = """
    INSERT INTO xref_match AS m (id, created_at, updated_at, version, archived, left_id, right_id, left_agency_id,
                                 right_agency_id, entity_type, score, features, explanation, status, decided_by_id,
                                 decided_at, note, run_id)
    SELECT p.id, now(), now(), 1, false, p.l, p.r, p.la, p.ra, p.t, p.s, p.f::jsonb, p.e,
           CASE WHEN p.auto THEN 'confirmed' ELSE 'pending' END, NULL,
           CASE WHEN p.auto THEN now() END, CASE WHEN p.auto THEN %(auto_note)s ELSE '' END, %(run)s
    FROM unnest(%(id)s::uuid[], %(l)s::uuid[], %(r)s::uuid[], %(la)s::uuid[], %(ra)s::uuid[], %(t)s::text[],
                %(s)s::float8[], %(f)s::text[], %(e)s::text[], %(auto)s::bool[])
         AS p(id, l, r, la, ra, t, s, f, e, auto)
    ORDER BY p.l, p.r
    ON CONFLICT (left_id, right_id) DO UPDATE SET
        score = EXCLUDED.score, features = EXCLUDED.features, explanation = EXCLUDED.explanation,
        archived = false,
        status = CASE WHEN {auto} THEN 'confirmed' ELSE m.status END,
        decided_at = CASE WHEN {auto} THEN EXCLUDED.decided_at ELSE m.decided_at END,
        note = CASE WHEN {auto} THEN EXCLUDED.note ELSE m.note END,
        run_id = COALESCE(EXCLUDED.run_id, m.run_id),
        version = m.version + 1, updated_at = now()
    WHERE m.score IS DISTINCT FROM EXCLUDED.score OR m.features IS DISTINCT FROM EXCLUDED.features
          OR m.explanation IS DISTINCT FROM EXCLUDED.explanation OR m.archived OR {auto}
    RETURNING m.id, m.left_id, m.right_id, m.status, m.decided_by_id IS NULL AND m.decided_at = now()
""".format(auto="(EXCLUDED.status = 'confirmed' AND m.status = 'pending' AND m.decided_at IS NULL)")  # noqa: S608
# (A pending match someone returned to pending carries their decided_at: it is never confirmed automatically.)

_WITHDRAW = """
    UPDATE xref_match AS m SET archived = true, score = coalesce(p.s, m.score),
           features = coalesce(p.f::jsonb, m.features), explanation = coalesce(p.e, m.explanation),
           version = m.version + 1, updated_at = now()
    FROM unnest(%(l)s::uuid[], %(r)s::uuid[], %(s)s::float8[], %(f)s::text[], %(e)s::text[]) AS p(l, r, s, f, e)
    WHERE m.left_id = p.l AND m.right_id = p.r AND m.status = 'pending' AND NOT m.archived
"""


@dataclass
class Upserted:
    changed: int = 0  # matches created, changed or withdrawn
    proposed: int = 0  # pairs at or above the proposal threshold


def _upsert(pairs: Iterable[Pair], *, run: XrefRun | None = None) -> Upserted:
    """Score `pairs` and write what follows (module docstring), in bulk: one statement for the proposals, one
    for the withdrawals."""
    pairs = sorted(set(pairs), key=matching.pair_order)
    if not pairs:
        return Upserted()
    ids = {pk for pair in pairs for pk in pair}
    with matching.pinned(ids):  # each record loaded once, for its liveness and its scoring
        records = matching.profiles(ids)  # the live ones
        live: list[Pair] = []
        gone: list[Pair] = []
        for pair in pairs:
            (live if pair[0] in records and pair[1] in records else gone).append(pair)
        found: dict[Pair, tuple[float, dict[str, Any], str]] = {}
        for scored in matching.score_pairs(live):
            score = min(max(float(scored.score), 0.0), 1.0)
            found[_ordered(scored.left, scored.right)] = (score, dict(scored.features), scored.explanation)
    propose = settings.XREF_PROPOSE_THRESHOLD
    auto = settings.XREF_AUTO_CONFIRM_THRESHOLD
    up: dict[str, list[Any]] = {k: [] for k in ("id", "l", "r", "la", "ra", "t", "s", "f", "e", "auto")}
    below: dict[Pair, tuple[float, dict[str, Any], str] | None] = dict.fromkeys(gone)
    for pair in live:
        if pair not in found:
            continue
        score, features, explanation = found[pair]
        left, right = records[pair[0]], records[pair[1]]
        if score >= propose:
            for key, value in zip(up, (uuid.uuid4(), *pair, left.agency_id, right.agency_id, left.type,
                                       score, json.dumps(features, sort_keys=True), explanation,
                                       auto is not None and score >= auto), strict=True):
                up[key].append(value)
        else:
            below[pair] = found[pair]
    result = Upserted(proposed=len(up["l"]))
    with transaction.atomic(), connection.cursor() as cursor:
        confirmed: list[tuple[Any, ...]] = []
        if up["l"]:
            cursor.execute(_UPSERT, {**up, "run": run.pk if run is not None else None, "auto_note": AUTO_NOTE})
            rows = cursor.fetchall()
            result.changed += len(rows)
            confirmed = [row for row in rows if row[3] == MatchStatus.CONFIRMED and row[4]]
        if below:
            result.changed += _withdraw(cursor, below)
        if confirmed:
            _auto_confirmed(confirmed, records)
        _hits_sync_pairs(cursor, pairs)
    return result


_PENDING_AMONG = """
    SELECT m.left_id, m.right_id FROM unnest(%s::uuid[], %s::uuid[]) AS p(l, r)
    JOIN xref_match m ON m.left_id = p.l AND m.right_id = p.r WHERE m.status = 'pending' AND NOT m.archived
"""


def _withdraw(cursor: Any, below: dict[Pair, tuple[float, dict[str, Any], str] | None]) -> int:
    """Withdraw the pending matches among these pairs (most below-threshold pairs never were matches: they are
    looked up first, by their ids alone). Each keeps its new score and reasons (None: a record is archived)."""
    lefts, rights = zip(*below, strict=True)
    cursor.execute(_PENDING_AMONG, [list(lefts), list(rights)])
    pending = cursor.fetchall()
    if not pending:
        return 0
    down: dict[str, list[Any]] = {k: [] for k in ("l", "r", "s", "f", "e")}
    for pair in pending:
        scored = below[(pair[0], pair[1])]
        score, features, explanation = scored if scored is not None else (None, None, None)
        for key, value in zip(down, (*pair, score, None if features is None else json.dumps(features, sort_keys=True),
                                     explanation), strict=True):
            down[key].append(value)
    cursor.execute(_WITHDRAW, down)
    return int(cursor.rowcount)


def _auto_confirmed(rows: list[tuple[Any, ...]], records: Mapping[Any, Any]) -> None:
    """Matches the system confirmed by their score: their clusters join, and each is audited as a decision."""
    _recluster({pk for row in rows for pk in (row[1], row[2])})
    from accounts.models import Agency

    by_agency: dict[Any, list[dict[str, Any]]] = {}
    for match_id, left_id, *_ in rows:
        by_agency.setdefault(records[left_id].agency_id, []).append(
            {"action": "decision", "object_type": "match", "object_id": str(match_id), "case_id": None,
             "changes": {"status": [MatchStatus.PENDING, MatchStatus.CONFIRMED], "note": ["", AUTO_NOTE]}})
    from audit.services import prepare_events

    for agency in Agency.objects.filter(pk__in=by_agency):
        record_many(prepare_events(by_agency[agency.pk], agency=agency, actor=None))


# --- deconfliction hits ----------------------------------------------------------------------------------------

# Each side of a cross-agency match as the hit its agency holds. A side holds its hit while the match stands: not
# withdrawn, not rejected, both records live, and neither a watchlist's entry (reference data, which screening
# handles). A side that does not hold it withdraws the hit it had (`archived`) and makes none; the same side holding
# it again brings its hit back. Only a change of state or score writes a row, so syncing again changes nothing.
# The matches are share-locked (in order) and read as they are once locked: a sync that meets a decision not yet
# committed waits for it, and never writes back what the match was before it.
_SYNC_HITS = """
    WITH matches AS (
        SELECT m.id, m.left_id, m.right_id, m.left_agency_id, m.right_agency_id, m.score, m.status, m.archived
        FROM xref_match m
        WHERE m.id = ANY(%(ids)s::uuid[]) AND m.left_agency_id <> m.right_agency_id
        ORDER BY m.id
        FOR SHARE
    ), sides AS (
        SELECT m.id AS match_id, s.agency_id, s.entity_id, s.other_agency_id, m.score,
               NOT (m.archived OR m.status = 'rejected' OR l.archived OR r.archived
                    OR cardinality(l.lists) > 0 OR cardinality(r.lists) > 0) AS holds
        FROM matches m
        JOIN entities_entity l ON l.id = m.left_id
        JOIN entities_entity r ON r.id = m.right_id
        CROSS JOIN LATERAL (VALUES (m.left_agency_id, m.left_id, m.right_agency_id),
                                   (m.right_agency_id, m.right_id, m.left_agency_id))
             AS s(agency_id, entity_id, other_agency_id)
    )
    INSERT INTO xref_deconflictionhit AS h (id, created_at, updated_at, version, archived, agency_id, match_id,
                                            entity_id, other_agency_id, score)
    SELECT gen_random_uuid(), now(), now(), 1, NOT s.holds, s.agency_id, s.match_id, s.entity_id, s.other_agency_id,
           s.score
    FROM sides s
    WHERE s.holds OR EXISTS (SELECT 1 FROM xref_deconflictionhit x
                             WHERE x.match_id = s.match_id AND x.agency_id = s.agency_id)
    ORDER BY s.match_id, s.agency_id
    ON CONFLICT (match_id, agency_id) DO UPDATE SET archived = EXCLUDED.archived, score = EXCLUDED.score,
                                                    version = h.version + 1, updated_at = now()
    WHERE h.archived IS DISTINCT FROM EXCLUDED.archived OR h.score IS DISTINCT FROM EXCLUDED.score
"""

_MATCHES_ACROSS_AMONG = """
    SELECT m.id FROM unnest(%s::uuid[], %s::uuid[]) AS p(l, r) JOIN xref_match m ON m.left_id = p.l AND m.right_id = p.r
    WHERE m.left_agency_id <> m.right_agency_id
"""


def hits_sync(match_ids: Iterable[Any]) -> int:
    """Bring the deconfliction hits of these matches in step with them (the rule above `_SYNC_HITS`): create,
    refresh the score of, withdraw or bring back each side's hit of those across agencies; others are ignored. In
    bulk and idempotent; every write of matches ends here. Returns how many hits were written."""
    ids = sorted({_uuid(pk) for pk in match_ids})
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_SYNC_HITS, {"ids": ids})
        return int(cursor.rowcount)


def _hits_sync_pairs(cursor: Any, pairs: Sequence[Pair]) -> None:
    """`hits_sync` for the matches among scored pairs whose records are of two agencies, live or archived, whether
    or not this scoring changed them, so that a pass also mends hits it finds missing."""
    lefts, rights = zip(*pairs, strict=True)
    cursor.execute(_MATCHES_ACROSS_AMONG, [list(lefts), list(rights)])
    hits_sync(pk for (pk,) in cursor.fetchall())


# --- decisions and identity clusters ----------------------------------------------------------------------------


def match_decide(user: Any, match: Match, *, decision: str, note: str = "") -> Match:
    """Set a match's decision (confirmed | rejected | pending): identity clusters follow (a confirmation joins,
    a return to pending splits), audited as `decision`. A decision that changes nothing writes nothing.
    RuleViolation (a bad decision or note), PermissionDenied (the user may not decide it), StateConflict (a
    withdrawn match)."""
    rules.check_decision(decision, note)
    if user is not None and not policy.writable(user, Match).filter(pk=match.pk).exists():
        raise PermissionDenied("You may not decide this match.")
    with transaction.atomic():
        locked = Match.objects.select_for_update().get(pk=match.pk)
        rules.check_decidable(locked)
        before = {"status": locked.status, "note": locked.note}
        if before == {"status": decision, "note": note}:
            return locked
        locked.status, locked.note = decision, note
        locked.decided_by = user if getattr(user, "pk", None) else None
        locked.decided_at = timezone.now()
        locked.save()
        hits_sync([locked.pk])
        if MatchStatus.CONFIRMED in (before["status"], decision) and before["status"] != decision:
            _recluster({locked.left_id, locked.right_id})
        changes = {name: [old, getattr(locked, name)] for name, old in before.items() if old != getattr(locked, name)}
        agency = getattr(user, "agency", None) or locked.left_agency
        record(action="decision", obj=locked, actor=user, agency=agency, changes=changes)
    return locked


def _recluster(entity_ids: set[Any]) -> None:
    """Recompute the identity clusters of these entities: the connected components of confirmed matches over
    their clusters as they were (a confirmation only joins clusters, an undo only splits one, so no component
    reaches beyond them). A component keeps the cluster id most of its members had; a lone entity has none."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IDENTITY_LOCK])
    seeds = {_uuid(pk) for pk in entity_ids}
    old = dict(IdentityMember.objects.filter(
        cluster__in=IdentityMember.objects.filter(entity_id__in=seeds).values("cluster")
    ).values_list("entity_id", "cluster"))
    universe = seeds | set(old)
    graph = nx.Graph()
    graph.add_nodes_from(universe)
    graph.add_edges_from(Match.objects.filter(status=MatchStatus.CONFIRMED, left_id__in=universe,
                                              right_id__in=universe).values_list("left_id", "right_id"))
    rows, used = [], set()
    for component in sorted(nx.connected_components(graph), key=lambda c: (-len(c), str(min(c)))):
        if len(component) < 2:
            continue
        counts = Counter(old[pk] for pk in component if pk in old)
        kept = [c for c, _ in sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))) if c not in used]
        cluster = kept[0] if kept else uuid.uuid4()
        used.add(cluster)
        rows += [IdentityMember(entity_id=pk, cluster=cluster) for pk in sorted(component)]
    IdentityMember.objects.filter(entity_id__in=universe).delete()
    IdentityMember.objects.bulk_create(rows)


def same_as(entity_ids: Iterable[Any]) -> dict[UUID, list[dict[str, Any]]]:
    """For each entity, the refs ({"type", "id", "name"}) of the others in its identity cluster (every
    agency's: what a user may see of them is the caller's to filter); in one query. An entity in no
    cluster maps to []."""
    ids = [_uuid(pk) for pk in entity_ids]
    out: dict[UUID, list[dict[str, Any]]] = {pk: [] for pk in ids}
    if not ids:
        return out
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT mine.entity_id, e.id, e.type, e.name
            FROM xref_identitymember mine
            JOIN xref_identitymember other ON other.cluster = mine.cluster AND other.entity_id <> mine.entity_id
            JOIN entities_entity e ON e.id = other.entity_id
            WHERE mine.entity_id = ANY(%s::uuid[])
            ORDER BY mine.entity_id, e.name, e.id
        """, [ids])
        for entity_id, other_id, other_type, other_name in cursor.fetchall():
            out[entity_id].append({"type": other_type, "id": str(other_id), "name": other_name})
    return out


# --- full runs --------------------------------------------------------------------------------------------------


def run_create(*, agency: Any, user: Any = None, case: Any = None, sync: bool = False) -> XrefRun:
    """Queue a full pass over the agency's records (or the case's parties) through the outbox; audited. With
    `sync`, run it here and now instead (`manage.py xref --sync`, benches) and return it finished."""
    if user is not None and not (policy.allows(user, "xref.run")
                                 and (user.is_superuser or user.agency_id == getattr(agency, "pk", None))):
        raise PermissionDenied("You may not run cross-referencing for this agency.")
    rules.check_run(agency, case)
    with transaction.atomic():
        run = XrefRun.objects.create(agency=agency, case=case, created_by=user if getattr(user, "pk", None) else None)
        audit_create(run, actor=user)
        if not sync:
            outbox.enqueue(RUN_TASK, kwargs={"run_id": str(run.pk)}, key=str(run.pk))
    if sync:
        return run_sync(run)
    return run


def run_sync(run: XrefRun) -> XrefRun:
    """Do a queued run in this process: the same steps as the tasks, its parts one after the other."""
    if run_start(run.pk, enqueue=False):
        for part in range(XrefRun.objects.values_list("parts", flat=True).get(pk=run.pk)):
            run_part(run.pk, part)
    run.refresh_from_db()
    return run


def run_start(run_id: Any, *, enqueue: bool = True) -> bool:
    """The first step of a run (the `xref.run` task): mark it running, index its records in batches, train the
    agency's model, then split it into XREF_RUN_PARTS parts (each an `xref.run_part` task sent through the
    outbox with the split, unless `enqueue` is false). False when there is nothing to do: the run is finished or
    was split already (a second delivery). A failure marks the run failed, with the error."""
    now = timezone.now()
    started = XrefRun.objects.filter(pk=run_id, parts=0, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.RUNNING, started_at=Coalesce("started_at", Value(now)), updated_at=now)
    if not started:
        return False
    try:
        run = XrefRun.objects.get(pk=run_id)
        for chunk in _chunks(_run_entities(run), settings.XREF_BATCH):
            with transaction.atomic():
                matching.index(chunk)
            _heartbeat(run_id)
        matching.analyze()
        matching.train(run.agency_id)
        # The keys too common to be blocks, found once for every part (each would scan the whole index for them).
        cache.set(_common_cache_key(run_id), matching.common_keys(run.agency_id), settings.XREF_RUN_TIME_LIMIT * 4)
        with transaction.atomic():
            run = XrefRun.objects.select_for_update().get(pk=run_id)
            if run.parts or run.status != RunStatus.RUNNING:
                return False
            parts = max(int(settings.XREF_RUN_PARTS), 1)
            XrefRun.objects.filter(pk=run_id).update(parts=parts, updated_at=timezone.now())
            if enqueue:
                for part in range(parts):
                    outbox.enqueue(RUN_PART_TASK, kwargs={"run_id": str(run_id), "part": part},
                                   key=f"{run_id}:{part}")
    except Exception as exc:
        run_fail(run_id, exc)
        raise
    return True


def _heartbeat(run_id: Any) -> None:
    """A worker is on the run: `updated_at` is its heartbeat, which `resume_stale` reads."""
    XrefRun.objects.filter(pk=run_id).update(updated_at=timezone.now())


def resume_stale() -> list[str]:
    """Send again the steps of the runs no worker is on (beat's `xref.resume_stale`): a run queued or running
    whose `updated_at` (set at each of its steps' batches, and here when it is sent again) is older than
    XREF_RUN_STALE_SECONDS lost its worker or its message (a worker killed mid-task leaves its unacknowledged
    message to the broker's visibility timeout, an hour). A run not split yet gets its `xref.run` again, a split
    one its parts not done. Through the outbox, as `run_create` sends them, so none is lost with the broker away;
    safe to repeat (a step done twice changes nothing, a part counts once). Returns the ids of the runs."""
    now = timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.XREF_RUN_STALE_SECONDS)
    with transaction.atomic():
        runs = list(XrefRun.objects.select_for_update(skip_locked=True)
                    .filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING], updated_at__lt=cutoff)
                    .order_by("created_at").only("pk", "parts", "done_parts"))
        for run in runs:
            if not run.parts:
                outbox.enqueue(RUN_TASK, kwargs={"run_id": str(run.pk)}, key=str(run.pk))
            for part in sorted(set(range(run.parts)) - set(run.done_parts)):
                outbox.enqueue(RUN_PART_TASK, kwargs={"run_id": str(run.pk), "part": part}, key=f"{run.pk}:{part}")
        XrefRun.objects.filter(pk__in=[run.pk for run in runs]).update(updated_at=now)
    if runs:
        logger.warning("xref: runs %s had no worker for %s s: sent again", [str(run.pk) for run in runs],
                       settings.XREF_RUN_STALE_SECONDS)
    return [str(run.pk) for run in runs]


def _common_cache_key(run_id: Any) -> str:
    return f"xref:run:{run_id}:common_keys"


def _run_entities(run: XrefRun) -> list[UUID]:
    from cases.models import CaseParty
    from entities.models import Entity

    if run.case_id is not None:
        return sorted(set(CaseParty.objects.filter(case_id=run.case_id).values_list("entity_id", flat=True)))
    return list(Entity.objects.filter(agency_id=run.agency_id, archived=False).order_by("pk")
                .values_list("pk", flat=True))


_PART_DONE = """
    UPDATE xref_xrefrun SET parts_done = parts_done + 1, done_parts = array_append(done_parts, %(part)s),
           candidates = candidates + %(candidates)s, matches = matches + %(matches)s,
           progress = (parts_done + 1)::float8 / greatest(parts, 1), updated_at = now()
    WHERE id = %(run)s AND status = 'running' AND NOT (%(part)s = ANY(done_parts))
    RETURNING parts_done, parts
"""


def run_part(run_id: Any, part: int) -> bool:
    """One part of a run (the `xref.run_part` task): score its candidate pairs and upsert them, a batch a
    transaction; then count it done, once (a part delivered twice upserts the same rows and counts nothing the
    second time). The last part to finish ends the run. False when there was nothing to do."""
    run = XrefRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RUNNING or part in run.done_parts or not 0 <= part < run.parts:
        return False
    try:
        matching.forget(run.agency_id)  # the run trained its model just now, maybe in another worker process
        candidates = proposed = 0
        found = matching.full_candidates(run.agency_id, part, run.parts, case_id=run.case_id,
                                         common=cache.get(_common_cache_key(run.pk)))
        pairs = sorted((_ordered(a, b) for a, b in found), key=matching.pair_order)
        with matching.pinned({pk for pair in pairs for pk in pair}):  # the part's records, loaded once
            for chunk in _chunks(pairs, settings.XREF_BATCH):
                candidates += len(chunk)
                proposed += _upsert(chunk, run=run).proposed
                _heartbeat(run.pk)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_PART_DONE, {"run": run.pk, "part": part, "candidates": candidates, "matches": proposed})
            done = cursor.fetchone()
            if done is not None and done[0] >= done[1]:
                now = timezone.now()
                XrefRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, progress=1.0, finished_at=now,
                                                         updated_at=now)
    except Exception as exc:
        run_fail(run_id, exc)
        raise
    return done is not None


def run_fail(run_id: Any, exc: BaseException) -> None:
    """A run whose step failed ends failed, with the error (a step that only met a passing outage is retried
    by its task, and the run goes on)."""
    from core.tasks import TRANSIENT

    if isinstance(exc, TRANSIENT):
        return
    now = timezone.now()
    XrefRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:2000], finished_at=now, updated_at=now)
    logger.error("xref run %s failed: %s", run_id, exc)
