"""Scoring candidate pairs, and training the model on an agency's own.

Pairs are scored in batches: each batch loads its records (one query), the frequencies of their name tokens and
contact points (one query, cached a minute), and their relations (two queries); each record is folded once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
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
TRAIN_PAIRS = 50_000  # candidate pairs EM looks at, at most (a deterministic sample beyond): plenty for a few m/u


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


def compared_batches(pairs: Iterable[Pair], batch: int = BATCH, *, with_relations: bool = True,
                     ) -> Iterator[tuple[Pair, records.Profile, records.Profile, dict[str, Compared], Context]]:
    """(pair, left, right, {feature: compared}, context) for each pair whose records both still exist."""
    chunk: list[Pair] = []

    def run(chunk: list[Pair]):
        profiles = records.load({i for pair in chunk for i in pair})
        ctx = context(profiles, with_relations=with_relations)
        for a, b in chunk:
            left, right = profiles.get(a), profiles.get(b)
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


def train(agency_id: Any) -> dict[str, Any]:
    """Estimate the agency's model per entity type by EM on its candidate pairs (a deterministic sample of
    TRAIN_PAIRS at most), its confirmed and rejected matches as labelled pairs; store it (`XrefModel`).
    The agency's block size cap (`keys.compute_block_cap`) is fixed here too, so that a run's parts and the
    incremental lookups after it block alike. Returns {entity_type: (pairs, decisions)}."""
    from xref.models import XrefModel

    cap = keys.compute_block_cap(agency_id)
    keys.forget_caps(agency_id)
    keys._CAPS[str(agency_id)] = (time.monotonic(), cap)
    pairs = list(keys.full_candidates(agency_id, 0, 1))
    if len(pairs) > TRAIN_PAIRS:
        pairs = random.Random(str(agency_id)).sample(sorted(pairs), TRAIN_PAIRS)
    patterns: dict[str, Counter[model.Pattern]] = {"person": Counter(), "organization": Counter()}
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


def forget_caches() -> None:
    """Drop every process cache of the engine (key counts, totals, caps, models): tests, and after a bulk load."""
    global _TOTALS
    _COUNTS.clear()
    _TOTALS = (0.0, {})
    keys.forget_caps()
    model.forget()
