"""Relationship evidence: what two records are related to. Two companies with the same director or owner, two
persons directing the same company, two parties trading with the same counterparty are more likely one; the
fewer records the shared counterpart is related to, the more it says (`features.compare_related`).

Loaded per batch of pairs: each record's counterparts (ownership and directorship links either way, and the
other parties of its shipments), with each counterpart's degree (how many records it is related to) and name.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import connection

KINDS = ("directorship", "ownership")
LINK_WORD = {"directorship": "director", "ownership": "owner", "shipment": "shipment counterparty"}

_RELATED = """
    SELECT source_id, target_id, kind FROM entities_link
    WHERE NOT archived AND kind = ANY(%(kinds)s) AND source_id = ANY(%(ids)s::uuid[])
    UNION ALL
    SELECT target_id, source_id, kind FROM entities_link
    WHERE NOT archived AND kind = ANY(%(kinds)s) AND target_id = ANY(%(ids)s::uuid[])
    UNION ALL
    SELECT DISTINCT p.party, q.party, 'shipment' FROM shipments_shipment s
    CROSS JOIN LATERAL unnest(ARRAY[s.consignor_id, s.consignee_id, s.notify_party_id, s.ordering_party_id]) p(party)
    CROSS JOIN LATERAL unnest(ARRAY[s.consignor_id, s.consignee_id, s.notify_party_id, s.ordering_party_id]) q(party)
    WHERE NOT s.archived AND p.party = ANY(%(ids)s::uuid[]) AND q.party IS NOT NULL AND q.party <> p.party
      AND (s.consignor_id = ANY(%(ids)s::uuid[]) OR s.consignee_id = ANY(%(ids)s::uuid[])
           OR s.notify_party_id = ANY(%(ids)s::uuid[]) OR s.ordering_party_id = ANY(%(ids)s::uuid[]))
"""


def load(ids: list[Any]) -> tuple[dict[Any, dict[Any, tuple[int, str]]], dict[Any, str]]:
    """({entity: {counterpart: (degree, kind)}}, {counterpart: name}) of these entities."""
    ids = [str(i) for i in ids]
    if not ids:
        return {}, {}
    with connection.cursor() as cursor:
        cursor.execute(_RELATED, {"ids": ids, "kinds": list(KINDS)})
        rows = cursor.fetchall()
        if not rows:
            return {}, {}
        counterparts = sorted({str(other) for _, other, _ in rows})
        cursor.execute(f"""
            SELECT c, count(DISTINCT o) FROM ({_RELATED.replace("%(ids)s", "%(cs)s")}) r(c, o, k) GROUP BY c
        """, {"cs": counterparts, "kinds": list(KINDS)})  # noqa: S608
        degrees = dict(cursor.fetchall())
        cursor.execute("SELECT id, name FROM entities_entity WHERE id = ANY(%s::uuid[])", [counterparts])
        labels = dict(cursor.fetchall())
    related: dict[Any, dict[Any, tuple[int, str]]] = defaultdict(dict)
    for entity, other, kind in rows:
        related[entity][other] = (degrees.get(other, 1), kind)
    return dict(related), labels
