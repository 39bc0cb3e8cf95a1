"""A first, plain engine behind the package's interface: name-token, phone, email and identifier keys; a name
similarity score. (To be replaced by the learned model.)"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from rapidfuzz import fuzz

from entities.models import Entity
from entities.normalize import company_core, fold

Pair = tuple[UUID, UUID]


@dataclass
class Scored:
    left: UUID
    right: UUID
    score: float
    features: dict[str, float] = field(default_factory=dict)
    explanation: str = ""


def _keys(e: dict[str, Any]) -> set[str]:
    t = e["type"][0]
    norm = company_core if e["type"] == "organization" else fold
    keys = set()
    for name in [e["name"], *e["names"]]:
        for token in norm(name).split():
            if len(token) >= 3:
                keys.add(f"{t}:n:{token}")
    keys |= {f"{t}:ph:{p}" for p in e["phones"]}
    keys |= {f"{t}:em:{m.lower()}" for m in e["emails"]}
    keys |= {f"{t}:id:{n}" for n in e["identifier_numbers"]}
    return keys


def index(entity_ids: Iterable[Any]) -> None:
    from xref.models import BlockKey

    ids = list(entity_ids)
    rows = Entity.objects.filter(pk__in=ids).values("id", "agency_id", "type", "name", "names", "phones", "emails",
                                                     "identifier_numbers", "archived")
    with transaction.atomic():
        BlockKey.objects.filter(entity_id__in=ids).delete()
        BlockKey.objects.bulk_create([BlockKey(entity_id=e["id"], agency_id=e["agency_id"], key=k)
                                      for e in rows if not e["archived"] for k in sorted(_keys(e))])


def candidates(entity_ids: Iterable[Any]) -> list[Pair]:
    ids = [str(i) for i in entity_ids]
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH mine AS (SELECT entity_id, key FROM xref_blockkey WHERE entity_id = ANY(%s::uuid[])),
                 usable AS (SELECT m.key FROM (SELECT DISTINCT key FROM mine) m
                            WHERE (SELECT count(*) FROM (SELECT 1 FROM xref_blockkey b WHERE b.key = m.key
                                                         LIMIT %s) c) <= %s)
            SELECT DISTINCT LEAST(m.entity_id, b.entity_id), GREATEST(m.entity_id, b.entity_id)
            FROM mine m JOIN usable u ON u.key = m.key JOIN xref_blockkey b ON b.key = m.key
            WHERE b.entity_id <> m.entity_id
        """, [ids, settings.XREF_BLOCK_MAX_SIZE + 1, settings.XREF_BLOCK_MAX_SIZE])
        return [(a, b) for a, b in cursor.fetchall()]


def full_candidates(agency_id: Any, part: int, parts: int, case_id: Any = None) -> Iterator[Pair]:
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH usable AS (SELECT key FROM xref_blockkey GROUP BY key HAVING count(*) BETWEEN 2 AND %s),
                 mine AS (SELECT DISTINCT b.key FROM xref_blockkey b JOIN usable u ON u.key = b.key
                          WHERE b.agency_id = %s AND abs(hashtext(b.key)) %% %s = %s)
            SELECT DISTINCT LEAST(a.entity_id, b.entity_id), GREATEST(a.entity_id, b.entity_id)
            FROM mine k JOIN xref_blockkey a ON a.key = k.key JOIN xref_blockkey b ON b.key = k.key
            WHERE a.entity_id < b.entity_id AND (a.agency_id = %s OR b.agency_id = %s)
        """, [settings.XREF_BLOCK_MAX_SIZE, agency_id, parts, part, agency_id, agency_id])
        yield from ((a, b) for a, b in cursor.fetchall())


def score_pairs(pairs: Iterable[Pair]) -> list[Scored]:
    pairs = list(pairs)
    ids = {i for pair in pairs for i in pair}
    rows = {e["id"]: e for e in Entity.objects.filter(pk__in=ids).values("id", "type", "name")}
    out = []
    for a, b in pairs:
        left, right = rows[a], rows[b]
        score = fuzz.token_sort_ratio(fold(left["name"]), fold(right["name"])) / 100
        out.append(Scored(a, b, round(score, 4), {"name": round(score, 4)},
                          f"name {score:.2f} ({left['name']} ↔ {right['name']})"))
    return out


def train(agency_id: Any) -> None:
    """The plain engine learns nothing."""
    zlib.crc32(str(agency_id).encode())
