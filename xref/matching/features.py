"""Per-feature comparisons of two records: each gives a level (an ordinal the model weighs: 0 the worst), a
similarity in 0-1 (what the API shows), and what was compared (what the explanation quotes); None when either
record lacks the field, so that a missing value is no evidence either way.

Name similarity weighs each token by its rarity (inverse frequency among the indexed records), so that
"Chicago" or "Trading" counts for little and a rare surname for much; tokens are compared order-insensitively,
with Jaro-Winkler for spelling variants, a letter for an initial, a prefix for an abbreviation, and the name's
tokens written together ("Gist Brocades", "Gistbrocades"). Hanzi are compared as pinyin (`entities.normalize`).
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from .records import Profile, skeleton

Level = int | None
Compared = tuple[Level, float, Any]  # (level, similarity, detail)


@dataclass
class Context:
    """What comparisons need beyond the two records: key frequencies, relations (filled per batch)."""

    counts: dict[str, int] = field(default_factory=dict)  # blocking key -> records holding it
    totals: dict[str, int] = field(default_factory=dict)  # type prefix -> records indexed
    related: dict[Any, dict[Any, tuple[int, str]]] = field(default_factory=dict)  # entity -> {counterpart:
    #   (how many records it is related to, how: directorship | ownership | shipment)}
    labels: dict[Any, str] = field(default_factory=dict)  # counterpart -> its name

    weights: dict[tuple[str, str], float] = field(default_factory=dict)

    def weight(self, prefix: str, token: str) -> float:
        """A token's weight: its inverse document frequency among the records of the type."""
        found = self.weights.get((prefix, token))
        if found is None:
            total = self.totals.get(prefix, 0) + 1
            count = self.counts.get(f"{prefix}:n:{token}", 1)
            found = self.weights[(prefix, token)] = max(0.1, math.log((total + 1) / (count + 0.5)))
        return found

    def share(self, key: str, prefix: str) -> float:
        """The share of records holding this key besides the pair that shares it: how common a value is (0 for
        a value only these two hold)."""
        total = self.totals.get(prefix, 0)
        if total < 2:
            return 0.0
        return max(0, self.counts.get(key, 2) - 2) / total


# --- names ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 18)  # pure; the tokens of a batch's records meet again and again
def _token_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:
        return 0.85 if a[0] == b[0] else 0.0  # an initial
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return 0.9  # an abbreviation ("internat", "konink")
    if min(len(a), len(b)) >= 3:
        sim = JaroWinkler.normalized_similarity(a, b)
        return sim if sim >= 0.88 else 0.0
    return 0.0


def token_names(a: tuple[str, ...], b: tuple[str, ...], weight: Callable[[str], float]) -> tuple[float, float]:
    """(similarity, containment) of two names' tokens: similarity is symmetric; containment is how much of the
    better-covered name the other holds (1 when one name's tokens are all in the other)."""
    if not a or not b:
        return 0.0, 0.0
    wa = [weight(t) for t in a]
    wb = [weight(t) for t in b]
    best_b = [0.0] * len(b)
    got_a = 0.0
    for i, ta in enumerate(a):
        best = 0.0
        for j, tb in enumerate(b):
            s = _token_similarity(ta, tb)
            if s > best:
                best = s
            if s > best_b[j]:
                best_b[j] = s
        got_a += wa[i] * best
    got_b = sum(w * s for w, s in zip(wb, best_b, strict=True))
    total_a, total_b = sum(wa), sum(wb)
    sim = (got_a + got_b) / (total_a + total_b)
    cont = max(got_a / total_a, got_b / total_b)
    return sim, cont


NAME_LEVELS = 7  # 6 exact, 5 near, 4 one within the other, 3 close, 2 partly, 1 faint, 0 different

# What a person's name may say of two records beside its similarity (the third part of the name's detail).
RELATIVES = "given names differ"  # a shared family name, and on each side a given name the other lacks
GENERATIONS = "generations differ"  # "Jr" and "Sr", "I" and "II"
# A person's generation as names write it. A lone "i" is a generation only beside another one ("Morris I Klein",
# "Morris II Klein"); elsewhere it is an initial.
_GENERATION = {"jr": "junior", "junior": "junior", "jnr": "junior", "sr": "senior", "senior": "senior",
               "snr": "senior", "ii": "2", "2nd": "2", "iii": "3", "3rd": "3", "iv": "4", "4th": "4"}


def _generations(tokens: tuple[str, ...], beside: bool) -> set[str]:
    found = {_GENERATION[t] for t in tokens if t in _GENERATION}
    if beside and "i" in tokens:
        found.add("1")
    return found


def person_relation(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    """Whether two persons' names, however alike in letters, name two members of one family: generations that
    differ, or a family name both hold (a token of one agreeing with a token of the other) beside a given name on
    each side that is no spelling, initial or short form of any of the other's tokens ("John Smith", "Patricia
    Smith"; "Andy Anderson", "Anna Anderson"). Not the same person's two spellings ("Bob J Smith", "B Smith")."""
    ga, gb = _generations(a, False), _generations(b, False)
    if ga or gb:
        ga, gb = _generations(a, bool(gb)), _generations(b, bool(ga))
        if ga and gb and not ga & gb:
            return GENERATIONS
    a = tuple(t for t in a if t not in _GENERATION)
    b = tuple(t for t in b if t not in _GENERATION)
    best_b = [0.0] * len(b)
    shared = alone_a = False
    for ta in a:
        best = 0.0
        for j, tb in enumerate(b):
            s = _token_similarity(ta, tb)
            best = max(best, s)
            best_b[j] = max(best_b[j], s)
        shared |= best >= 0.88 and len(ta) > 1
        alone_a |= best == 0.0 and _unlike(ta, b)
    alone_b = any(s == 0.0 and _unlike(t, a) for t, s in zip(b, best_b, strict=True))
    return RELATIVES if shared and alone_a and alone_b else None


def _unlike(token: str, others: tuple[str, ...]) -> bool:
    """A full token that is no letter-by-letter variant of any of the others ("Aliaksandr", "Aleksandr" are one
    name's two transliterations; "Marie", "Mark" two names)."""
    return len(token) > 1 and all(fuzz.ratio(token, other) < 75 for other in others)


def compare_name(a: Profile, b: Profile, ctx: Context) -> Compared:
    """The names' level and similarity, and the detail (the two names compared, and for persons whether they are
    two relatives' names: `person_relation`, which the model weighs beside the level: the letters of a family name
    both hold make "Andy Anderson" and "Anna Anderson" alike letter by letter, though the given names differ)."""
    prefix = a.type[0]
    person = a.type == "person"

    def weight(token: str) -> float:
        return ctx.weight(prefix, token)

    best: tuple[int, float] = (-1, 0.0)
    detail: tuple[str, str, str | None] = (a.written[0] if a.written else "", b.written[0] if b.written else "",
                                           None)
    for i, ta in enumerate(a.tokens):
        for j, tb in enumerate(b.tokens):
            if not ta or not tb:
                continue
            sa, sb = a.sorted_forms[i], b.sorted_forms[j]
            relation = person_relation(ta, tb) if person else None
            if sa == sb or a.joined[i] == b.joined[j]:
                level, sim = 6, 1.0
            else:
                sim, cont = token_names(ta, tb, weight)
                sim = max(sim, fuzz.ratio(sa, sb) / 100, fuzz.ratio(a.joined[i], b.joined[j]) / 100 - 0.02)
                if a.abjad[i] != b.abjad[j]:  # one of them written without its vowels
                    skeletal = token_names(tuple(map(skeleton, ta)), tuple(map(skeleton, tb)), weight)[0]
                    sim = max(sim, 0.95 * skeletal)
                if sim >= 0.92:
                    level = 5
                elif cont >= 0.99:
                    level = 4
                elif sim >= 0.8:
                    level = 3
                elif sim >= 0.65 or cont >= 0.75:
                    level = 2
                elif sim >= 0.5:
                    level = 1
                else:
                    level = 0
            if (level, sim, relation is None) > (*best, detail[2] is None):
                best = (level, sim)
                detail = (a.written[i], b.written[j], relation)
    if best[0] < 0:
        return None, 0.0, None
    return best[0], round(best[1], 4), detail


# --- birth date -----------------------------------------------------------------------------------


def _one_digit_apart(a: datetime.date, b: datetime.date) -> bool:
    x, y = a.isoformat(), b.isoformat()
    return sum(1 for p, q in zip(x, y, strict=True) if p != q) == 1


def compare_birth_date(a: Profile, b: Profile, ctx: Context) -> Compared:
    x, y = a.birth_date, b.birth_date
    if not x or not y:
        return None, 0.0, None
    if x == y:
        return 3, 1.0, x
    if (x.year == y.year and x.month == y.day and x.day == y.month) or _one_digit_apart(x, y):
        return 2, 0.8, (x, y)
    if x.year == y.year:
        return 1, 0.5, (x, y)
    return 0, 0.0, (x, y)


# --- countries, identifiers -----------------------------------------------------------------------


def compare_country(a: Profile, b: Profile, ctx: Context) -> Compared:
    if not a.countries or not b.countries:
        return None, 0.0, None
    shared = a.countries & b.countries
    if shared:
        return 1, 1.0, sorted(shared)
    return 0, 0.0, (sorted(a.countries), sorted(b.countries))


def compare_identifier(a: Profile, b: Profile, ctx: Context) -> Compared:
    if not a.id_numbers or not b.id_numbers:
        return None, 0.0, None
    shared = a.id_numbers & b.id_numbers
    if shared:
        number = min(shared)
        return 3, 1.0, (number, ctx.share(f"{a.type[0]}:i:{number}", a.type[0]))
    for x in a.id_numbers:
        for y in b.id_numbers:
            if len(x) >= 6 and Levenshtein.distance(x, y) <= 1:
                return 2, 0.8, (x, y)
    if a.id_schemes & b.id_schemes:
        return 0, 0.0, None  # the same kind of document, another number
    return None, 0.0, None


# --- addresses ------------------------------------------------------------------------------------


def _even(token: str) -> float:
    return 1.0


def compare_address(a: Profile, b: Profile, ctx: Context) -> Compared:
    """Two addresses agree as far as their own street names do (with the house number): the street type
    ("Boulevard"), the city and the postcode are shared by many streets, and the city and postcode are the
    `postcode` feature's evidence, not counted here again."""
    if not a.addresses or not b.addresses:
        return None, 0.0, None
    best: tuple[int, float] = (-1, 0.0)
    detail: Any = None
    share = 0.0
    for x in a.addresses:
        for y in b.addresses:
            if not x.street or not y.street:
                continue
            same_number = bool(x.number) and x.number == y.number
            differ_number = bool(x.number) and bool(y.number) and x.number != y.number
            set_ratio = fuzz.token_set_ratio(x.street, y.street) / 100
            sort_ratio = fuzz.token_sort_ratio(x.street, y.street) / 100
            if x.street == y.street:
                level, sim = 4, 1.0
                share = ctx.share(f"{a.type[0]}:af:{x.street}", a.type[0])
            elif differ_number:
                level, sim = 0, min(sort_ratio, 0.5)
            elif x.words and y.words:  # the street's own name decides, not the words many streets share
                named, within = token_names(x.words, y.words, _even)
                named = max(named, fuzz.ratio(" ".join(x.words), " ".join(y.words)) / 100)
                if same_number and (named >= 0.9 or within >= 0.99):  # "2900 Polk", "2900 W Polk St"
                    level, sim = 3, named
                elif same_number and named >= 0.75:
                    level, sim = 2, named
                elif named >= 0.85:
                    level, sim = 1, named * 0.8
                else:
                    level, sim = 0, named * 0.5
            elif same_number and set_ratio >= 0.9:
                level, sim = 3, set_ratio
            elif same_number and (sort_ratio >= 0.7 or set_ratio >= 0.8):
                level, sim = 2, max(sort_ratio, 0.7)
            elif set_ratio >= 0.7:
                level, sim = 1, set_ratio * 0.8
            else:
                level, sim = 0, sort_ratio * 0.5
            if (level, sim) > best:
                best, detail = (level, sim), ((x, y, share) if level == 4 else (x, y))
    if best[0] < 0:
        return None, 0.0, None
    return best[0], round(best[1], 4), detail


def compare_postcode(a: Profile, b: Profile, ctx: Context) -> Compared:
    codes_a = {x.postcode for x in a.addresses if x.postcode}
    codes_b = {x.postcode for x in b.addresses if x.postcode}
    if codes_a & codes_b:
        return 2, 1.0, min(codes_a & codes_b)
    places_a = {x.locality for x in a.addresses if x.locality}
    places_b = {x.locality for x in b.addresses if x.locality}
    if places_a & places_b:
        return 1, 0.7, min(places_a & places_b)
    if (codes_a and codes_b) or (places_a and places_b):
        return 0, 0.0, None
    return None, 0.0, None


# --- contact points -------------------------------------------------------------------------------


def _compare_contacts(a: Profile, ours: frozenset[str], theirs: frozenset[str], key: str, part: Callable[[str], str],
                      ctx: Context) -> Compared:
    """Phones or e-mails: one held by both (level 2, its share of records in the detail), else a part of one
    held by both (level 1: the last seven digits, the mailbox's name), else none (0)."""
    if not ours or not theirs:
        return None, 0.0, None
    shared = ours & theirs
    if shared:
        value = min(shared)
        return 2, 1.0, (value, ctx.share(f"{a.type[0]}:{key}:{value}", a.type[0]))
    if {part(x) for x in ours} & {part(y) for y in theirs}:
        return 1, 0.6, None
    return 0, 0.0, None


def compare_phone(a: Profile, b: Profile, ctx: Context) -> Compared:
    return _compare_contacts(a, a.phones, b.phones, "t", lambda phone: phone[-7:], ctx)


def compare_email(a: Profile, b: Profile, ctx: Context) -> Compared:
    return _compare_contacts(a, a.emails, b.emails, "e", lambda email: email.split("@")[0], ctx)


# --- relations ------------------------------------------------------------------------------------


def compare_related(a: Profile, b: Profile, ctx: Context) -> Compared:
    """Shared directors, owners, owned companies or shipment counterparties, the rarer the stronger: a
    counterpart related to few records says more than a freight forwarder every exporter uses."""
    ra, rb = ctx.related.get(a.id), ctx.related.get(b.id)
    if not ra or not rb:
        return None, 0.0, None
    shared = (set(ra) & set(rb)) - {a.id, b.id}
    if not shared:
        return 0, 0.0, None
    rarest = min(shared, key=lambda c: (ra[c][0], str(c)))
    degree, kind = ra[rarest]
    level = 3 if degree <= 3 else 2 if degree <= 20 else 1
    return level, round(min(1.0, 2 / max(degree, 2)) ** 0.5, 4), (rarest, degree, kind, len(shared))


@dataclass(frozen=True)
class Feature:
    name: str
    levels: int
    compare: Callable[[Profile, Profile, Context], Compared]
    types: tuple[str, ...] = ("person", "organization")


FEATURES = [
    Feature("name", NAME_LEVELS, compare_name),
    Feature("birth_date", 4, compare_birth_date, ("person",)),
    Feature("country", 2, compare_country),
    Feature("identifier", 4, compare_identifier),
    Feature("address", 5, compare_address),
    Feature("postcode", 3, compare_postcode),
    Feature("phone", 3, compare_phone),
    Feature("email", 3, compare_email),
    Feature("related", 4, compare_related),
]
FEATURES_BY_NAME = {f.name: f for f in FEATURES}


_BY_TYPE = {t: [f for f in FEATURES if t in f.types] for t in ("person", "organization")}


def features_for(entity_type: str) -> list[Feature]:
    return _BY_TYPE[entity_type]


def compare(a: Profile, b: Profile, ctx: Context) -> dict[str, Compared]:
    """Every feature of the pair's type: {feature: (level, similarity, detail)}, missing ones left out.

    What one agreement implies is counted once: the same address has the same postcode, and an organisation's
    address (its street, postcode or city) lies in its jurisdiction. Counted twice, the place of many companies
    weighs as two independent agreements, and EM can take the pairs of one city for the class of matches."""
    out: dict[str, Compared] = {}
    for f in features_for(a.type):
        if f.name == "postcode" and (out.get("address", (0,))[0] or 0) >= 3:
            continue  # the same address has the same postcode: counted once
        got = f.compare(a, b, ctx)
        if got[0] is not None:
            out[f.name] = got
    if a.type == "organization" and "country" in out and (
            (out.get("address", (0,))[0] or 0) >= 3 or (out.get("postcode", (0,))[0] or 0) >= 1):
        del out["country"]  # the jurisdiction of a place both share
    return out
