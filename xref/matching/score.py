"""Scoring candidate pairs, and training the model on an agency's own.

Pairs are scored in batches: each batch loads its records (one query), the frequencies of their name tokens and
contact points (one query, cached a minute), and their relations (two queries); each record is folded once.
Within `pinned(ids)` (a run's part, a training part, one upsert) those are loaded once for all these records and
every batch answers from them: a part's tens of thousands of pairs meet the same records again and again.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from . import keys, model, records, relations
from .explain import explain
from .features import Compared, Context, compare

Pair = tuple[UUID, UUID]
BATCH = 2000
COUNTS_TTL = 60.0
TRAIN_PAIRS = 200_000  # candidate pairs EM looks at, at most (a deterministic sample beyond)
TRAIN_PARTS = 16  # the full pass's parts training takes its pairs from, one after the other, until it has enough


@dataclass
class Scored:
    left: UUID
    right: UUID
    score: float
    features: dict[str, float] = field(default_factory=dict)
    explanation: str = ""


_COUNTS: dict[str, tuple[float, int]] = {}
_TOTALS: tuple[float, dict[str, int]] = (0.0, {})


def _key_counts(keys: set[str]) -> dict[str, int]:
    """How many records hold each key (index counts, cached a minute)."""
    now = time.monotonic()
    found = {k: v[1] for k in keys if (v := _COUNTS.get(k)) and now - v[0] < COUNTS_TTL}
    missing = sorted(keys - found.keys())
    if missing:
        with connection.cursor() as cursor:
            cursor.execute("SELECT key, count(*) FROM xref_blockkey WHERE key = ANY(%s::varchar[]) GROUP BY key",
                           [missing])
            fetched = dict(cursor.fetchall())
        if len(_COUNTS) > 500_000:
            _COUNTS.clear()
        for k in missing:
            _COUNTS[k] = (now, fetched.get(k, 0))
            found[k] = fetched.get(k, 0)
    return found


def _totals() -> dict[str, int]:
    global _TOTALS
    now = time.monotonic()
    if now - _TOTALS[0] >= COUNTS_TTL:
        with connection.cursor() as cursor:
            cursor.execute("SELECT type, count(*) FROM entities_entity WHERE NOT archived GROUP BY type")
            _TOTALS = (now, {("p" if kind == "person" else "o"): n for kind, n in cursor.fetchall()})
    return _TOTALS[1]


def context(profiles: dict[Any, records.Profile], *, with_relations: bool = True) -> Context:
    wanted: set[str] = set()
    for p in profiles.values():
        t = p.type[0]
        wanted |= {f"{t}:n:{w}" for w in p.all_tokens}
        wanted |= {f"{t}:t:{x}" for x in p.phones} | {f"{t}:e:{x}" for x in p.emails}
        wanted |= {f"{t}:i:{x}" for x in p.id_numbers}
        wanted |= {f"{t}:af:{x.street}" for x in p.addresses if x.street}
    related, labels = relations.load(list(profiles)) if with_relations else ({}, {})
    return Context(counts=_key_counts(wanted), totals=_totals(), related=related, labels=labels)


@dataclass
class _Pinned:
    ids: set[Any]  # every id asked for, live or not
    profiles: dict[Any, records.Profile]  # the live ones'
    contexts: dict[bool, Context] = field(default_factory=dict)  # by with_relations, made when first needed

    def context(self, with_relations: bool) -> Context:
        if with_relations not in self.contexts:
            self.contexts[with_relations] = context(self.profiles, with_relations=with_relations)
        return self.contexts[with_relations]


_PINNED: list[_Pinned] = []


def _uuid(value: Any) -> Any:
    return value if isinstance(value, UUID) else UUID(str(value))


@contextmanager
def pinned(ids: Iterable[Any]) -> Iterator[None]:
    """Within the block, the profiles, relations and key counts of these entities are loaded once, here, and
    `profiles`, `score_pairs` and training answer from them. (Within an enclosing block that holds them all,
    nothing is loaded again.)"""
    wanted = {_uuid(i) for i in ids}
    outer = _PINNED[-1] if _PINNED else None
    if outer is not None and wanted <= outer.ids:
        _PINNED.append(outer)
    else:
        _PINNED.append(_Pinned(wanted, records.load(wanted)))
    try:
        yield
    finally:
        _PINNED.pop()


def _covering(ids: set[Any]) -> _Pinned | None:
    top = _PINNED[-1] if _PINNED else None
    return top if top is not None and ids <= top.ids else None


def profiles(ids: Iterable[Any]) -> dict[Any, records.Profile]:
    """The live (not archived) profiles of these entities: from `pinned` when it holds them, else loaded."""
    wanted = {_uuid(i) for i in ids}
    held = _covering(wanted)
    if held is None:
        return records.load(wanted)
    return {pk: held.profiles[pk] for pk in wanted if pk in held.profiles}


def compared_batches(pairs: Iterable[Pair], batch: int = BATCH, *, with_relations: bool = True,
                     ) -> Iterator[tuple[Pair, records.Profile, records.Profile, dict[str, Compared], Context]]:
    """(pair, left, right, {feature: compared}, context) for each pair whose records both still exist."""
    chunk: list[Pair] = []

    def run(chunk: list[Pair]):
        ids = {_uuid(i) for pair in chunk for i in pair}
        held = _covering(ids)
        if held is not None:
            profiles, ctx = held.profiles, held.context(with_relations)
        else:
            profiles = records.load(ids)
            ctx = context(profiles, with_relations=with_relations)
        for a, b in chunk:
            left, right = profiles.get(_uuid(a)), profiles.get(_uuid(b))
            if left is None or right is None or left.type != right.type:
                continue
            yield (a, b), left, right, compare(left, right, ctx), ctx

    for pair in pairs:
        chunk.append(pair)
        if len(chunk) >= batch:
            yield from run(chunk)
            chunk = []
    if chunk:
        yield from run(chunk)


def score_pairs(pairs: Iterable[Pair]) -> list[Scored]:
    """A `Scored` for each pair (left, right as given) whose records both exist, live, and are of one type."""
    out = []
    for (a, b), left, right, compared, ctx in compared_batches(pairs):
        agency = left.agency_id if str(a) < str(b) else right.agency_id
        params = model.params_for(agency, left.type)
        score, weights = params.posterior(compared)
        features = {f: c[1] for f, c in compared.items()}
        out.append(Scored(a, b, round(min(1.0, max(0.0, score)), 4), features,
                          explain(compared, weights, left, right, ctx.labels)))
    return out


# --- training -------------------------------------------------------------------------------------


def _decided(agency_id: Any) -> list[tuple[Pair, str]]:
    from xref.models import Match

    rows = Match.objects.filter(status__in=["confirmed", "rejected"], archived=False).filter(
        left_agency_id=agency_id) | Match.objects.filter(status__in=["confirmed", "rejected"], archived=False,
                                                          right_agency_id=agency_id)
    return [((left, right), status) for left, right, status in rows.values_list("left_id", "right_id", "status")]


def pair_order(pair: Pair) -> tuple[int, int]:
    """A sort key of pairs: the order of their UUIDs themselves, compared as ints (sorting UUIDs calls Python for
    every comparison)."""
    return _uuid(pair[0]).int, _uuid(pair[1]).int


def _training_pairs(agency_id: Any) -> list[list[Pair]]:
    """The candidate pairs EM learns from, in groups (each group's records are loaded together): the pairs of the
    first of TRAIN_PARTS parts of a full pass (`keys.full_candidates`) until they number TRAIN_PAIRS, so that a
    large agency's pairs are never all found, held and sorted; a deterministic sample of TRAIN_PAIRS of those.
    An agency with TRAIN_PAIRS candidate pairs or fewer trains on them all."""
    found: list[list[Pair]] = []
    total = 0
    common = keys.common_keys(agency_id)
    for part in range(TRAIN_PARTS):
        found.append(sorted(keys.full_candidates(agency_id, part, TRAIN_PARTS, common=common), key=pair_order))
        total += len(found[-1])
        if total >= TRAIN_PAIRS:
            break
    if total <= TRAIN_PAIRS:
        return found
    everything = sorted((pair for group in found for pair in group), key=pair_order)
    chosen = set(random.Random(str(agency_id)).sample(everything, TRAIN_PAIRS))
    return [[pair for pair in group if pair in chosen] for group in found]


def train(agency_id: Any) -> dict[str, Any]:
    """Estimate the agency's model per entity type by EM on its candidate pairs (TRAIN_PAIRS at most, from the
    first parts of a full pass: `_training_pairs`), its confirmed and rejected matches as labelled pairs; store it
    (`XrefModel`).
    The agency's block size cap (`keys.compute_block_cap`) is fixed here too, so that a run's parts and the
    incremental lookups after it block alike. Returns {entity_type: (pairs, decisions)}."""
    from xref.models import XrefModel

    cap = keys.compute_block_cap(agency_id)
    keys.forget_caps(agency_id)
    keys._CAPS[str(agency_id)] = (time.monotonic(), cap)
    patterns: dict[str, Counter[model.Pattern]] = {"person": Counter(), "organization": Counter()}
    for pairs in _training_pairs(agency_id):
        with pinned({i for pair in pairs for i in pair}):
            for _pair, left, _right, compared, _ctx in compared_batches(pairs):
                patterns[left.type][model.pattern(left.type, compared)] += 1
    labelled: dict[str, dict[str, list[model.Pattern]]] = {t: {"confirmed": [], "rejected": []} for t in patterns}
    decided = _decided(agency_id)
    for pair, left, _right, compared, _ctx in compared_batches(p for p, _ in decided):
        status = dict(decided)[pair]
        labelled[left.type][status].append(model.pattern(left.type, compared))
    result = {}
    with transaction.atomic():
        for entity_type, counts in patterns.items():
            marks = labelled[entity_type]
            if not counts and not marks["confirmed"] and not marks["rejected"]:
                continue
            params = model.em(entity_type, counts, matches=marks["confirmed"], non_matches=marks["rejected"])
            n_decided = len(marks["confirmed"]) + len(marks["rejected"])
            XrefModel.objects.update_or_create(
                agency_id=agency_id, entity_type=entity_type,
                defaults={"params": {**params.to_json(), "block_cap": cap}, "pairs": sum(counts.values()),
                          "decisions": n_decided,
                          "trained_at": timezone.now()})
            result[entity_type] = (sum(counts.values()), n_decided)
    model.forget(agency_id)
    return result


def forget(agency_id: Any) -> None:
    """Drop this process's cached model and block cap of one agency, so the next lookup reads what its latest
    training stored (a run's parts, in whichever worker process they land, after the run trained)."""
    keys.forget_caps(agency_id)
    model.forget(agency_id)


def forget_caches() -> None:
    """Drop every process cache of the engine (key counts, totals, caps, models): tests, and after a bulk load."""
    global _TOTALS
    _COUNTS.clear()
    _TOTALS = (0.0, {})
    keys.forget_caps()
    model.forget()
