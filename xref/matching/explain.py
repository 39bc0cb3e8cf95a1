"""The explanation a case officer reads: the features that moved the score, strongest first, each with what was
compared ("same birth date 1978-12-11, name 0.94 (Wei Zhang ↔ 张伟), same phone +8613800138000").
"""

from __future__ import annotations

from typing import Any

from .features import Compared
from .records import Profile
from .relations import LINK_WORD

MIN_WEIGHT = 0.4  # |log Bayes factor| below this is not worth a phrase
MAX_PHRASES = 6


def _dates(detail: Any) -> str:
    return f"{detail[0].isoformat()} ↔ {detail[1].isoformat()}"


def _common(share: float) -> str:
    return f", shared by {share:.1%} of records" if share >= 0.001 else ""


def phrase(feature: str, compared: Compared, a: Profile, b: Profile, labels: dict[Any, str]) -> str:
    level, sim, detail = compared
    if feature == "name":
        left, right, relation = detail
        if level == 6:
            return f"same name ({left} ↔ {right})" if left != right else f"same name {left}"
        return f"name {sim:.2f} ({left} ↔ {right}{'; ' + relation if relation else ''})"
    if feature == "birth_date":
        if level == 3:
            return f"same birth date {detail.isoformat()}"
        if level == 2:
            return f"birth dates one digit or day and month apart ({_dates(detail)})"
        if level == 1:
            return f"same birth year ({_dates(detail)})"
        return f"different birth dates ({_dates(detail)})"
    if feature == "country":
        word = "nationality" if a.type == "person" else "jurisdiction"
        if level == 1:
            return f"same {word} {', '.join(detail)}"
        return f"different {word} ({', '.join(detail[0])} ↔ {', '.join(detail[1])})"
    if feature == "identifier":
        if level == 3:
            return f"same identifier {detail[0]}{_common(detail[1])}"
        if level == 2:
            return f"identifiers one character apart ({detail[0]} ↔ {detail[1]})"
        return "different identifiers of the same kind"
    if feature == "address":
        x, y = detail[:2]
        if level == 4:
            same = f"same address ({x.text} ↔ {y.text})" if x.text != y.text else f"same address {x.text}"
            return same + _common(detail[2])
        if level:
            return f"address {sim:.2f} ({x.text} ↔ {y.text})"
        return f"different addresses ({x.text} ↔ {y.text})"
    if feature == "postcode":
        if level == 2:
            return f"same postcode {detail}"
        if level == 1:
            return f"same place {detail}"
        return "different postcodes"
    if feature in ("phone", "email"):
        if level == 2:
            return f"same {feature} {detail[0]}{_common(detail[1])}"
        if level == 1:
            return f"similar {feature}s"
        return f"different {feature}s"
    if feature == "related":
        if level == 0:
            return "no shared director, owner or counterparty"
        counterpart, degree, kind, shared = detail
        more = f" and {shared - 1} more" if shared > 1 else ""
        return (f"shared {LINK_WORD.get(kind, kind)} {labels.get(counterpart, counterpart)}{more} "
                f"(related to {degree} records)")
    return f"{feature} {sim:.2f}"


def explain(compared: dict[str, Compared], weights: dict[str, float], a: Profile, b: Profile,
            labels: dict[Any, str]) -> str:
    """The sentence: every feature that moved the score by MIN_WEIGHT or more, strongest first; the name always
    (what the pair is about)."""
    order = sorted(compared, key=lambda f: (-abs(weights.get(f, 0.0)), f))
    chosen = [f for f in order if f == "name" or abs(weights.get(f, 0.0)) >= MIN_WEIGHT][:MAX_PHRASES]
    if "name" in compared and "name" not in chosen:
        chosen[-1] = "name"
    return ", ".join(phrase(f, compared[f], a, b, labels) for f in chosen)
