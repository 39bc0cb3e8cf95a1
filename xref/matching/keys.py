"""Blocking: each record's keys, stored in `BlockKey` and looked up by index, so that a record meets only the
records it shares a key with, never all records.

A key is typed by the record's type (`p:` persons, `o:` organisations: persons block with persons) and names what
it holds: `n:` a name token (a name's tokens written together count as one too: "Gist Brocades" meets
"Gistbrocades"), `s:` a name's tokens sorted (any order, any script: 张伟, "Zhang Wei" and "Wei Zhang" fold to
"wei zhang"), `q:` two tokens of one name, `m:` the name's sorted metaphone codes, `y:` birth year with a name token,
`i:` an identifier or registration number, `t:` a phone (E.164), `e:` an email, `a:` an address's postcode or
house number with one of its street tokens, `af:` the address's distinguishing tokens together (its count is how
many records share the address).

Frequency-aware: a key shared by more than XREF_BLOCK_MAX_SIZE records, or by more than XREF_BLOCK_MAX_SHARE of
the agency's records of that type (never below BLOCK_FLOOR), is not a block (a common surname, a mass-registration
address): it says little and would cost many pairs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

import jellyfish
from django.conf import settings
from django.db import connection, transaction

from .records import Profile, id_array, load

Pair = tuple[UUID, UUID]

BLOCK_FLOOR = 50  # a small agency's share cap is never below this many records
MAX_KEY = 200  # BlockKey.key's length
PAIR_TOKENS = 6  # two-token keys from a name's first tokens only


def _metaphone(token: str) -> str:
    return token if token.isdigit() else jellyfish.metaphone(token).lower()


def keys(p: Profile) -> set[str]:
    """The blocking keys of a record."""
    t = "p" if p.type == "person" else "o"
    found: set[str] = set()
    tokens: set[str] = set()
    for name_tokens in p.tokens:
        useful = [w for w in name_tokens if len(w) >= 2 or w.isdigit()]
        tokens.update(useful)
        if len(name_tokens) > 1:
            found.add(f"{t}:n:{''.join(name_tokens)}")
        ordered = sorted(set(name_tokens))
        found.add(f"{t}:s:{' '.join(ordered)}")
        phonetic = sorted({_metaphone(w) for w in name_tokens} - {""})
        if phonetic:
            found.add(f"{t}:m:{' '.join(phonetic)}")
        for a, b in itertools.combinations(sorted(set(useful[:PAIR_TOKENS])), 2):
            found.add(f"{t}:q:{a} {b}")
    found |= {f"{t}:n:{w}" for w in tokens}
    if p.birth_date:
        found |= {f"{t}:y:{p.birth_date.year}:{w}" for w in tokens}
    found |= {f"{t}:i:{n}" for n in p.id_numbers}
    found |= {f"{t}:t:{n}" for n in p.phones}
    found |= {f"{t}:e:{m}" for m in p.emails}
    for address in p.addresses:
        if address.street:
            found.add(f"{t}:af:{address.street}")
        words = [w for w in address.street.split() if not w.isdigit() and len(w) >= 2]
        for anchor in {address.postcode, address.number} - {""}:
            found |= {f"{t}:a:{anchor}:{w}" for w in words}
    return {k[:MAX_KEY] for k in found}


def index(entity_ids: Iterable[Any]) -> None:
    """(Re)write the keys of these entities; an archived or missing entity keeps none. Only what changed is
    written: a full pass over records whose keys are as they were (most of them) reads their rows and writes none."""
    ids = [str(i) for i in entity_ids]
    if not ids:
        return
    profiles = load(ids)
    wanted = {(str(p.id), key): str(p.agency_id) for p in profiles.values() for key in keys(p)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id, entity_id::text, agency_id::text, key FROM xref_blockkey "
                       "WHERE entity_id = ANY(%s::uuid[])", [id_array(ids)])
        stale = []
        for row_id, entity_id, agency_id, key in cursor.fetchall():
            if wanted.get((entity_id, key)) == agency_id:
                del wanted[(entity_id, key)]  # there already (a second row of the same key is stale)
            else:
                stale.append(row_id)
        if stale:
            cursor.execute("DELETE FROM xref_blockkey WHERE id = ANY(%s::bigint[])", [id_array(stale)])
        if wanted:
            new = sorted(wanted.items())
            cursor.execute("INSERT INTO xref_blockkey (entity_id, agency_id, key) "
                           "SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::varchar[])",
                           [id_array(pk for (pk, _), _ in new), id_array(agency for _, agency in new),
                            [key for (_, key), _ in new]])


# --- caps -----------------------------------------------------------------------------------------

_SIZES: dict[Any, tuple[float, dict[str, int]]] = {}
_CAPS: dict[str, tuple[float, int]] = {}
_SIZES_TTL = 60.0
_CAP_TTL = 600.0


def agency_sizes(agency_id: Any) -> dict[str, int]:
    """How many live records of each type the agency has (cached a minute: it moves slowly)."""
    now = time.monotonic()
    cached = _SIZES.get(str(agency_id))
    if cached and now - cached[0] < _SIZES_TTL:
        return cached[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT type, count(*) FROM entities_entity WHERE agency_id = %s AND NOT archived "
                       "GROUP BY type", [agency_id])
        sizes = {("p" if kind == "person" else "o"): n for kind, n in cursor.fetchall()}
    _SIZES[str(agency_id)] = (now, sizes)
    return sizes


def share_cap(agency_id: Any, type_prefix: str) -> int:
    """The most records of the agency a key of this type may be shared by and still be a block."""
    share = settings.XREF_BLOCK_MAX_SHARE * agency_sizes(agency_id).get(type_prefix, 0)
    return max(BLOCK_FLOOR, int(share))


def compute_block_cap(agency_id: Any) -> int:
    """The largest block size (XREF_BLOCK_MAX_SIZE at most) such that the pairs of the agency's keys of that
    size or less, counted from the rarest key up, fit in XREF_PAIR_BUDGET: one scan of the index."""
    caps = {prefix: share_cap(agency_id, prefix) for prefix in ("p", "o")}
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH sized AS (
                SELECT count(*) AS n, count(*) FILTER (WHERE agency_id = %(agency)s) AS na FROM xref_blockkey
                GROUP BY key
                HAVING count(*) BETWEEN 2 AND %(max_size)s AND count(*) FILTER (WHERE agency_id = %(agency)s)
                       BETWEEN 1 AND CASE WHEN left(key, 1) = 'p' THEN %(cap_p)s ELSE %(cap_o)s END
            ),
            by_size AS (SELECT n, sum(n * (n - 1) / 2 - (n - na) * (n - na - 1) / 2) AS pairs FROM sized GROUP BY n),
            running AS (SELECT n, sum(pairs) OVER (ORDER BY n) AS total FROM by_size)
            SELECT max(n) FROM running WHERE total <= %(budget)s
        """, {"agency": agency_id, "max_size": settings.XREF_BLOCK_MAX_SIZE, "cap_p": caps["p"],
              "cap_o": caps["o"], "budget": settings.XREF_PAIR_BUDGET})
        found = cursor.fetchone()[0]
    return int(found or 2)


def block_cap(agency_id: Any) -> int:
    """The agency's block size cap: the one its last training stored, else computed (one scan of the index,
    shared by every worker through the cache for an hour), kept in the process ten minutes."""
    from django.core.cache import cache

    from xref.models import XrefModel

    now = time.monotonic()
    cached = _CAPS.get(str(agency_id))
    if cached and now - cached[0] < _CAP_TTL:
        return cached[1]
    stored = [p.get("block_cap") for p in XrefModel.objects.filter(agency_id=agency_id)
              .values_list("params", flat=True) if isinstance(p, dict)]
    cap = min((int(c) for c in stored if c), default=0)
    if not cap:
        shared_key = f"xref:block_cap:{agency_id}"
        cap = cache.get(shared_key) or 0
        if not cap:
            cap = compute_block_cap(agency_id)
            cache.set(shared_key, cap, 3600)
    _CAPS[str(agency_id)] = (now, cap)
    return cap


def analyze() -> None:
    """After indexing many records: refresh the planner's statistics of the index, which a full pass's candidate
    query is planned on (on stale ones, e.g. a table just filled by an import, it picks a nested loop that runs
    for minutes instead of seconds; autovacuum would get there, later)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE xref_blockkey")


def forget_caps(agency_id: Any = None) -> None:
    """Drop the caps this process keeps (all, or one agency's: then the shared one too)."""
    if agency_id is not None:
        from django.core.cache import cache

        cache.delete(f"xref:block_cap:{agency_id}")
    for key in [k for k in _CAPS if agency_id is None or k == str(agency_id)]:
        del _CAPS[key]
    for key in [k for k in _SIZES if agency_id is None or k == str(agency_id)]:
        del _SIZES[key]


# --- candidates -----------------------------------------------------------------------------------


def candidates(entity_ids: Iterable[Any]) -> list[Pair]:
    """The candidate pairs (left < right) of these entities, by index lookups on their keys."""
    ids = [str(i) for i in entity_ids]
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT agency_id FROM entities_entity WHERE id = ANY(%s::uuid[])", [ids])
        max_size = max((block_cap(agency) for (agency,) in cursor.fetchall()), default=0)
        if not max_size:
            return []
        cursor.execute("""
            SELECT DISTINCT m.agency_id, m.key,
                   (SELECT count(*) FROM (SELECT 1 FROM xref_blockkey b WHERE b.key = m.key LIMIT %s) c)
            FROM xref_blockkey m WHERE m.entity_id = ANY(%s::uuid[])
        """, [max_size + 1, ids])
        sized = [(agency, key, n) for agency, key, n in cursor.fetchall() if 2 <= n <= block_cap(agency)]
        # The agency's share: counted only for keys big enough to reach it.
        checks = [(agency, key) for agency, key, n in sized if n > BLOCK_FLOOR and n > share_cap(agency, key[0])]
        too_common: set[tuple[Any, str]] = set()
        for agency, key in checks:
            cap = share_cap(agency, key[0])
            cursor.execute("SELECT count(*) FROM (SELECT 1 FROM xref_blockkey WHERE key = %s AND agency_id = %s "
                           "LIMIT %s) c", [key, agency, cap + 1])
            if cursor.fetchone()[0] > cap:
                too_common.add((agency, key))
        usable = sorted({key for agency, key, _ in sized if (agency, key) not in too_common})
        if not usable:
            return []
        cursor.execute("""
            SELECT DISTINCT LEAST(m.entity_id, b.entity_id), GREATEST(m.entity_id, b.entity_id)
            FROM xref_blockkey m JOIN xref_blockkey b ON b.key = m.key AND b.entity_id <> m.entity_id
            WHERE m.entity_id = ANY(%s::uuid[]) AND m.key = ANY(%s::varchar[])
        """, [ids, usable])
        return sorted(cursor.fetchall())


def _scope(agency_id: Any, case_id: Any) -> tuple[str, list[Any]]:
    """SQL (a condition on `m`, the scope's side of a pair) and its parameters: the agency's records, or the
    parties of one case."""
    if case_id is None:
        return "m.agency_id = %s", [agency_id]
    return ("m.entity_id IN (SELECT entity_id FROM cases_caseparty WHERE case_id = %s AND NOT archived)",
            [case_id])


def common_keys(agency_id: Any) -> list[str]:
    """The keys too common to be blocks for the agency (held by more records than its block cap, or by more than
    its share cap of its records): one scan of the index. A full pass finds them once and gives them to each part
    (`full_candidates`), instead of each part scanning the index again."""
    caps = {prefix: share_cap(agency_id, prefix) for prefix in ("p", "o")}
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT key FROM xref_blockkey GROUP BY key
            HAVING count(*) > %s OR count(*) FILTER (WHERE agency_id = %s)
                                    > CASE WHEN left(key, 1) = 'p' THEN %s ELSE %s END
            ORDER BY key
        """, [block_cap(agency_id), agency_id, caps["p"], caps["o"]])
        return [key for (key,) in cursor.fetchall()]


def full_candidates(agency_id: Any, part: int, parts: int, case_id: Any = None,
                    common: Sequence[str] | None = None) -> Iterator[Pair]:
    """One part of a full pass's candidate pairs: those with a record in the scope (the agency's records, or a
    case's parties), the other side anywhere. Parts split the scope's records by a hash of their id, and a pair
    of two in-scope records belongs to its smaller id's part, so every pair is in exactly one part. `common`: the
    agency's `common_keys` when the caller has them (else found here)."""
    scope, params = _scope(agency_id, case_id)
    in_scope_other = scope.replace("m.", "b.")
    if common is None:
        common = common_keys(agency_id)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT DISTINCT LEAST(m.entity_id, b.entity_id), GREATEST(m.entity_id, b.entity_id)
            FROM xref_blockkey m JOIN xref_blockkey b ON b.key = m.key AND b.entity_id <> m.entity_id
            WHERE {scope} AND mod(hashtext(m.entity_id::text)::bigint + 2147483648, %s) = %s
              AND m.key <> ALL(%s::varchar[])
              AND (m.entity_id < b.entity_id OR NOT ({in_scope_other}))
        """, [*params, parts, part, list(common), *params])  # noqa: S608
        yield from cursor.fetchall()
