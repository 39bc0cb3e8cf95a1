"""The match model: Fellegi-Sunter. Each feature level has m (how often a true match shows it) and u (how often a
candidate pair that is not a match shows it); a pair's log-odds of being one record is the prior's plus the sum of
log(m/u) over its features (a missing feature adds nothing), and its score the posterior probability.

The parameters are learned per agency and entity type by EM on the agency's own candidate pairs (unsupervised:
the matches are the latent class), refined by its decisions: a confirmed pair counts as a known match and a
rejected one as a known non-match, each weighing DECISION_WEIGHT pairs. With no trained model, `DEFAULTS`. Levels are
ordinal: EM keeps m/u non-decreasing from a feature's worst level to its best (`monotone`).

Rarity: for an exact shared identifier, phone or email, u is at least the share of records holding that value,
so a phone every shell company of a mass registration gives says less than a private one.

Different names: records whose names clearly differ (name level 0) are proposed only on evidence that points at
one party rather than at one place: a shared or near identifier, a shared phone or email, or a relation to a
counterpart few records have (`STRONG`). Without one, the score is at most NAME_DIFFERS_CAP, below any sensible
proposal threshold: an address, a city and a jurisdiction are shared by many parties at once (companies at one
business address, a building's tenants), and EM, which learns from the candidate pairs themselves, can take such
a cluster of places for the latent class of matches. Evidence the model itself weighs against a match (a phone or
e-mail so many records hold that it counts for nothing) points at no one.

Relatives: two persons' names that share a family name but each hold a given name the other lacks ("Andy Anderson",
"Anna Anderson"), or that name two generations ("Jr", "Sr"), are relatives' names however alike their letters
(`features.person_relation`). A household shares its address and family name, so these are proposed only on what
points at one person (`ONE_OF_RELATIVES`; between generations an identity document), else capped like different
names. A person's name that differs altogether needs an identity document: a household's members share its
address and phone (`STRONG_PERSON`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from .features import FEATURES, GENERATIONS, RELATIVES, Compared, features_for

DECISION_WEIGHT = 10.0  # a decided pair counts as this many EM pairs
EM_ITERATIONS = 40
MIN_EVIDENCE = 50  # pairs showing a feature beside another before EM may move its m and u
SMOOTHING = 20.0  # pseudo-pairs per feature, spread as the defaults are: a small agency's few pairs move the
# defaults only so far, and no level gets m or u 0
PRIOR_RANGE = (1e-4, 0.9)
FLOOR = 1e-6  # no m or u is taken as less than this: a level never seen is rare, not impossible (log(m/u) finite)
NAME_DIFFERS_CAP = 0.2
# Each feature's lowest level that points at one party: a different name needs one of these to be proposed.
STRONG = {"identifier": 2, "phone": 2, "email": 2, "related": 2}
# ... of a person: an identity document. A household shares its address and phone (and often an e-mail and a
# company), so a person named otherwise at the same address with the same phone is another member of it.
STRONG_PERSON = {"identifier": 2}
# What points at one person among relatives (`features.RELATIVES`): an identity document, the birth date, or a
# phone or e-mail the model counts for a match (a value many records hold counts for little). A family shares its
# family name, its address and its companies; none of those tells its members apart.
ONE_OF_RELATIVES = {"identifier": 2, "phone": 2, "email": 2, "birth_date": 3}
# The exact levels whose u rises with the value's share of records.
RARITY_LEVELS = {"identifier": 3, "phone": 2, "email": 2}

# Starting points (and the model of an agency with none trained): m and u by level, 0 the worst level.
DEFAULTS: dict[str, Any] = {
    "prior": 0.1,
    "m": {
        "name": [0.03, 0.05, 0.08, 0.12, 0.17, 0.20, 0.35],
        "birth_date": [0.03, 0.05, 0.07, 0.85],
        "country": [0.05, 0.95],
        "identifier": [0.15, 0.01, 0.04, 0.80],
        "address": [0.15, 0.10, 0.15, 0.20, 0.40],
        "postcode": [0.15, 0.10, 0.75],
        "phone": [0.30, 0.05, 0.65],
        "email": [0.30, 0.05, 0.65],
        "related": [0.40, 0.10, 0.20, 0.30],
    },
    "u": {
        "name": [0.60, 0.22, 0.10, 0.04, 0.025, 0.01, 0.005],
        "birth_date": [0.90, 0.07, 0.02, 0.01],
        "country": [0.60, 0.40],
        "identifier": [0.98, 0.01, 0.0099, 0.0001],
        "address": [0.90, 0.05, 0.02, 0.015, 0.015],
        "postcode": [0.80, 0.10, 0.10],
        "phone": [0.97, 0.02, 0.01],
        "email": [0.98, 0.015, 0.005],
        "related": [0.90, 0.07, 0.02, 0.01],
    },
}


@dataclass
class Params:
    prior: float
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    entity_type: str = "organization"

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, entity_type: str = "organization") -> Params:
        data = data or {}
        m = {f: list(v) for f, v in DEFAULTS["m"].items()}
        u = {f: list(v) for f, v in DEFAULTS["u"].items()}
        for name, values in (data.get("m") or {}).items():
            if name in m and len(values) == len(m[name]):
                m[name] = [float(x) for x in values]
        for name, values in (data.get("u") or {}).items():
            if name in u and len(values) == len(u[name]):
                u[name] = [float(x) for x in values]
        return cls(float(data.get("prior", DEFAULTS["prior"])), m, u, entity_type)

    def to_json(self) -> dict[str, Any]:
        return {"prior": float(f"{self.prior:.6g}"),
                "m": {f: [float(f"{x:.6g}") for x in v] for f, v in self.m.items()},
                "u": {f: [float(f"{x:.6g}") for x in v] for f, v in self.u.items()}}

    def weight(self, feature: str, compared: Compared) -> float:
        """log(m/u) of one compared feature."""
        level, _, detail = compared
        if level is None:
            return 0.0
        m, u = max(self.m[feature][level], FLOOR), max(self.u[feature][level], FLOOR)
        if RARITY_LEVELS.get(feature) == level and isinstance(detail, tuple) and isinstance(detail[-1], float):
            u = max(u, detail[-1])  # the value's share of records: a common one says less
        return math.log(m / u)

    def posterior(self, compared: dict[str, Compared]) -> tuple[float, dict[str, float]]:
        """(probability the pair is one, {feature: its log Bayes factor})."""
        weights = {f: self.weight(f, c) for f, c in compared.items()}
        logit = math.log(self.prior / (1 - self.prior)) + sum(weights.values())
        score = 1.0 if logit > 30 else 1 / (1 + math.exp(-logit))
        name = compared.get("name")
        if name is not None:
            needed = self._evidence_needed(name)
            if needed is not None and not any((compared[f][0] or 0) >= level and weights[f] > 0
                                              for f, level in needed.items() if f in compared):
                score = min(score, NAME_DIFFERS_CAP)
        return score, weights

    def _evidence_needed(self, name: Compared) -> dict[str, int] | None:
        """The evidence of one party a pair with this name comparison needs to score over NAME_DIFFERS_CAP: any
        of these features at this level or more (None: no cap)."""
        relation = name[2][2] if isinstance(name[2], tuple) and len(name[2]) > 2 else None
        if relation == GENERATIONS:  # father and son may share an address, a phone, even a birth date
            return STRONG_PERSON
        if relation == RELATIVES:
            return ONE_OF_RELATIVES
        if name[0] == 0:
            return STRONG_PERSON if self.entity_type == "person" else STRONG
        return None


# --- which model ----------------------------------------------------------------------------------

_CACHE: dict[tuple[str, str], tuple[float, Params]] = {}
_CACHE_TTL = 30.0


def params_for(agency_id: Any, entity_type: str) -> Params:
    """The agency's trained model of this type, else the default row's, else `DEFAULTS` (cached briefly)."""
    from xref.models import XrefModel

    key = (str(agency_id), entity_type)
    now = time.monotonic()
    cached = _CACHE.get(key)
    if cached and now - cached[0] < _CACHE_TTL:
        return cached[1]
    rows = {str(agency): data for agency, data in XrefModel.objects.filter(entity_type=entity_type)
            .filter(Q(agency_id=agency_id) | Q(agency__isnull=True)).values_list("agency_id", "params")}
    params = Params.from_json(rows.get(str(agency_id)) or rows.get("None"), entity_type)
    _CACHE[key] = (now, params)
    return params


def forget(agency_id: Any = None) -> None:
    """Drop cached models (all, or one agency's) so the next score reads the stored ones."""
    for key in [k for k in _CACHE if agency_id is None or k[0] == str(agency_id)]:
        del _CACHE[key]


# --- EM -------------------------------------------------------------------------------------------

Pattern = tuple[int | None, ...]


def pattern(entity_type: str, compared: dict[str, Compared]) -> Pattern:
    return tuple(compared[f.name][0] if f.name in compared else None for f in features_for(entity_type))


def em(entity_type: str, patterns: Counter[Pattern], *, matches: Iterable[Pattern] = (),
       non_matches: Iterable[Pattern] = (), start: Params | None = None) -> Params:
    """Estimate prior, m and u from candidate pairs' level patterns (counts), with decided pairs as labelled
    ones. Deterministic: the same patterns give the same model."""
    feats = features_for(entity_type)
    params = start or Params.from_json(None, entity_type)
    labelled = [(p, 1.0) for p in matches] + [(p, 0.0) for p in non_matches]
    items = sorted(patterns.items(), key=lambda kv: tuple(-1 if x is None else x for x in kv[0]))
    total = sum(patterns.values())
    if not total and not labelled:
        return params
    learnable = _learnable(feats, patterns, len(labelled)) | (
        {f.name for f in feats} if labelled else set())
    for _ in range(EM_ITERATIONS):
        m_counts = {f.name: [SMOOTHING * x for x in DEFAULTS["m"][f.name]] for f in feats}
        u_counts = {f.name: [SMOOTHING * x for x in DEFAULTS["u"][f.name]] for f in feats}
        log_prior = math.log(params.prior / (1 - params.prior))
        expected = 0.0
        weighted = [(pat, count, None) for pat, count in items] + \
                   [(pat, DECISION_WEIGHT, label) for pat, label in labelled]
        for pat, count, label in weighted:
            if label is None:
                logit = log_prior
                for f, level in zip(feats, pat, strict=True):
                    if level is not None:
                        logit += math.log(max(params.m[f.name][level], FLOOR) / max(params.u[f.name][level], FLOOR))
                p = 1 / (1 + math.exp(-max(-50.0, min(50.0, logit))))
                expected += count * p
            else:
                p = label
            for f, level in zip(feats, pat, strict=True):
                if level is not None:
                    m_counts[f.name][level] += count * p
                    u_counts[f.name][level] += count * (1 - p)
        if total:
            params.prior = min(PRIOR_RANGE[1], max(PRIOR_RANGE[0], expected / total))
        for f in feats:
            if f.name not in learnable:
                continue
            ms, us = sum(m_counts[f.name]), sum(u_counts[f.name])
            params.u[f.name] = [x / us for x in u_counts[f.name]]
            params.m[f.name] = monotone([x / ms for x in m_counts[f.name]], params.u[f.name])
    return params


def monotone(m: list[float], u: list[float]) -> list[float]:
    """m adjusted so that m/u never falls from a level to a better one (pooling adjacent levels that would, as
    isotonic regression does): a closer name, a nearer address is never less evidence of one party than a farther
    one. Without it EM may take a cluster of pairs that agree on a place but not on names (companies at one
    formation agent's address) for the class of matches, and learn that a different name is a match's mark."""
    blocks: list[tuple[float, float, int]] = []  # (m, u, levels) of each run of pooled levels, best last
    for mi, ui in zip(m, u, strict=True):
        pooled = (mi, ui, 1)
        while blocks and blocks[-1][0] * pooled[1] > pooled[0] * blocks[-1][1]:
            pm, pu, n = blocks.pop()
            pooled = (pm + pooled[0], pu + pooled[1], n + pooled[2])
        blocks.append(pooled)
    out: list[float] = []
    for pooled_m, pooled_u, n in blocks:
        for level in range(len(out), len(out) + n):
            out.append(pooled_m * u[level] / pooled_u if pooled_u > 0 else pooled_m / n)
    return out


def _learnable(feats: list[Any], patterns: Counter[Pattern], labelled: int) -> set[str]:
    """The features whose m and u the pairs identify: a feature seen, with another beside it, in MIN_EVIDENCE
    pairs or more. (With one feature alone, any split of its levels into two classes fits equally well: EM would
    learn noise, so such a feature keeps its defaults and only the prior is estimated.)"""
    seen: Counter[str] = Counter()
    for pat, count in patterns.items():
        present = [f.name for f, level in zip(feats, pat, strict=True) if level is not None]
        if len(present) >= 2:
            for name in present:
                seen[name] += count
    return {name for name, count in seen.items() if count + labelled * DECISION_WEIGHT >= MIN_EVIDENCE}


__all__ = ["DEFAULTS", "FEATURES", "Params", "em", "forget", "params_for", "pattern"]
