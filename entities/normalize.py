"""Name normalisation shared by search, filters, importers and cross-referencing.

Names are folded to lower-case ASCII (anyascii), Hanzi additionally to pinyin syllables
(pypinyin) so that "张伟" and "Zhang Wei" meet, punctuation becomes space, and company
legal forms ("Co., Ltd.", "LLC", "有限公司") are dropped so that a company is found by its
name alone. normality/fingerprints do this too but need PyICU compiled against ICU, which
a machine with only Python does not have; this module needs pure-Python packages only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from anyascii import anyascii
from pypinyin import lazy_pinyin

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['`\u2019\u02bc]")

# Legal forms, folded as `fold` folds them; multi-word forms first.
LEGAL_FORMS = [
    "co ltd", "company limited", "limited liability company", "public limited company", "pte ltd",
    "sdn bhd", "joint stock company", "l l c", "s a", "s r l", "b v", "n v", "a g",
    "ltd", "limited", "llc", "inc", "incorporated", "corp", "corporation", "co", "company", "plc", "gmbh",
    "sarl", "srl", "spa", "bv", "nv", "ag", "oy", "ab", "as", "jsc", "pjsc", "ooo", "tov", "llp", "lp",
    "pte", "pty", "fze", "fzco", "fzc", "dmcc", "jsc", "sa", "sas", "kk", "tnhh", "cty", "jsc",
    "you xian gong si", "you xian ze ren gong si", "gu fen you xian gong si", "gong si", "ji tuan",
    # pinyin written by word, and more languages' forms (Dutch, German, Iberian, Polish, Russian and Kazakh,
    # Malay, Japanese, Indian)
    "youxian gongsi", "youxian zeren gongsi", "gufen youxian gongsi", "gongsi", "jituan",
    "naamloze vennootschap", "besloten vennootschap", "aktiengesellschaft", "kg", "ohg",
    "sociedad anonima", "societe anonyme", "s l", "ltda", "eurl", "sasu", "sp z o o", "spzoo",
    "zao", "oao", "pao", "too", "sendirian berhad", "berhad", "bhd", "kabushiki kaisha", "pvt", "private limited",
]
_FORMS_RE = re.compile(r"\b(?:" + "|".join(sorted({re.escape(f) for f in LEGAL_FORMS}, key=len, reverse=True))
                       + r")\b")


@functools.lru_cache(maxsize=1 << 16)  # pure, and names repeat (party columns, re-imports)
def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces; Hanzi become pinyin syllables."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    if _HAN.search(text):
        text = " ".join(lazy_pinyin(text, errors=lambda chars: chars))
    # An apostrophe joins (O'Brien; the soft sign of "Васильев", which anyascii writes as one: "vasil'ev").
    return " ".join(_NON_WORD.split(_APOSTROPHES.sub("", anyascii(text).lower()))).strip()


@functools.lru_cache(maxsize=1 << 16)  # pure, and names repeat (party columns, re-imports)
def company_core(text: str) -> str:
    """A company's name without its legal form: 'Antimony Trading Co., Ltd.' → 'antimony trading'."""
    folded = fold(text)
    core = " ".join(_FORMS_RE.sub(" ", folded).split())
    return core or folded


def search_text(names: Iterable[str], *, is_company: bool) -> str:
    """Everything a fuzzy search on names should match, one line per distinct variant."""
    seen: list[str] = []
    for name in names:
        variants = [fold(name), company_core(name) if is_company else ""]
        if _HAN.search(name):
            # Pinyin is written by syllable ("guang xi") or by word ("guangxi"): keep a joined form too.
            variants += [v.replace(" ", "") for v in variants if v]
        for variant in variants:
            if variant and variant not in seen:
                seen.append(variant)
    return "\n".join(seen)


def name_keys(names: Iterable[str], *, is_company: bool) -> list[str]:
    """The exact-match keys of a record's names: folded, and for a company without its legal form."""
    key = company_core if is_company else fold
    return sorted({key(name) for name in names if name and key(name)})
