"""`GET /api/v1/search/?q=`: persons, organisations, cases and shipments in one ranked list.

Two stages. PostgreSQL finds the candidates of each type, scoped by the access policy, with
pg_trgm's word similarity on the trigram-indexed `search_text` of entities (so the GIN index
does the work), on the text fields of cases, and on the trigram-indexed reference and description
of shipments, which are also found through their parties' names. Python then scores every
candidate with rapidfuzz against each folded name variant, so that word order, a missing
space ("guangxi" / "guang xi") and a typo cost little while an exact name still ranks first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from anyascii import anyascii
from django.contrib.postgres.lookups import Unaccent
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Greatest, Upper
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rapidfuzz import fuzz
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core import policy
from core.api.filters import QueryParametersMixin
from core.api.pagination import Pagination
from entities.models import Entity, EntityType
from entities.normalize import company_core, fold
from shipments.models import Shipment, Unaccented, searched_description

SEARCH_TYPES = ("person", "organization", "case", "shipment")
TYPE_ORDER = {name: i for i, name in enumerate(SEARCH_TYPES)}
MIN_QUERY_LENGTH = 2
MAX_QUERY_LENGTH = 200
# pg_trgm's `<%` operator keeps rows whose word similarity reaches this (its default, 0.6, misses
# "guangxi tiye" against "guang xi ti ye").
WORD_SIMILARITY_THRESHOLD = 0.4
# The best candidates of each type that are ranked and paginated; a query matching more is too vague to page through.
CANDIDATES_PER_TYPE = 1000
# Score of a reference (case or shipment) equal to, starting with, or containing the query.
REFERENCE_EXACT, REFERENCE_PREFIX, REFERENCE_CONTAINS = 1.0, 0.9, 0.8
SUMMARY_CONTAINS = 0.5
DESCRIPTION_CONTAINS = 0.6
# A shipment is found through its parties' names: the best PARTIES persons and organisations scoring at least
# PARTY_MIN_SCORE; it scores PARTY_FACTOR times its best party's score (below the party itself).
PARTY_FIELDS = ("consignor_id", "consignee_id", "notify_party_id", "ordering_party_id")
PARTIES = 50
PARTY_MIN_SCORE = 0.8
PARTY_FACTOR = 0.7


@dataclass(frozen=True)
class SearchHit:
    type: str
    id: Any
    label: str
    score: float


@dataclass(frozen=True)
class SearchQuery:
    """The query as typed and in the folded forms the names are stored in."""

    raw: str  # whitespace collapsed, case kept
    name_forms: tuple[str, ...]  # fold(q), and its pinyin syllables split apart when that differs
    company_forms: tuple[str, ...]  # name_forms and the query without a legal form, for organisations
    identifier: str  # the query as an identifier number is indexed (upper-case letters and digits)

    @classmethod
    def parse(cls, q: str) -> SearchQuery:
        raw = " ".join(q.split())
        folded = fold(raw)
        name_forms = _unique([folded, split_pinyin(folded)])
        core = company_core(raw) if folded else ""
        company_forms = _unique([*name_forms, core, split_pinyin(core)])
        identifier = "".join(ch for ch in raw.upper() if ch.isalnum())
        return cls(raw=raw, name_forms=name_forms, company_forms=company_forms, identifier=identifier)


def _unique(forms: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for f in forms if f))


# --- pinyin written without spaces ----------------------------------------------------------


@functools.cache
def _pinyin_syllables() -> frozenset[str]:
    """Every toneless pinyin syllable pypinyin knows, as `fold` writes them (ü as v and as u)."""
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_normal

    syllables: set[str] = set()
    for readings in PINYIN_DICT.values():
        for reading in readings.split(","):
            plain = to_normal(reading)
            for form in (plain.replace("ü", "v"), anyascii(plain).lower()):
                # Interjections such as "hm" or "ng" would let almost any word split.
                if form.isascii() and form.isalpha() and any(v in form for v in "aeiouv"):
                    syllables.add(form)
    return frozenset(syllables)


def split_pinyin(folded: str) -> str:
    """'guangxi tiye' → 'guang xi ti ye', as `fold` writes the Hanzi of 广西锑业; '' when nothing splits.

    Each word that is a run of two or more pinyin syllables is split into the fewest syllables.
    """
    if not folded:
        return ""
    syllables = _pinyin_syllables()
    words = []
    for word in folded.split():
        best: list[list[str] | None] = [None] * (len(word) + 1)
        best[0] = []
        for start in range(len(word)):
            head = best[start]
            if head is None:
                continue
            for end in range(start + 1, min(len(word), start + 6) + 1):
                candidate = best[end]
                if word[start:end] in syllables and (candidate is None or len(head) + 1 < len(candidate)):
                    best[end] = [*head, word[start:end]]
        parts = best[len(word)]
        words.append(" ".join(parts) if parts and len(parts) > 1 else word)
    split = " ".join(words)
    return split if split != folded else ""


# --- scoring --------------------------------------------------------------------------------


def similarity(a: str, b: str) -> float:
    """0 to 1: the best of plain, token-sorted and space-blind edit similarity."""
    return max(
        fuzz.ratio(a, b),
        fuzz.token_sort_ratio(a, b),
        fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")),
    ) / 100


def name_score(forms: tuple[str, ...], variants: list[str], word_similarity: float) -> float:
    """A whole-name match scores by edit similarity; a query contained in a longer name (word similarity
    near 1) scores a little below an exact match, higher the less the name adds to it."""
    full = max((similarity(form, variant) for form in forms for variant in variants), default=0.0)
    return min(1.0, max(full, 0.8 * word_similarity + 0.15 * full))


def _reference_score(reference: str, raw: str) -> float:
    ref, query = reference.lower(), raw.lower()
    if ref == query:
        return REFERENCE_EXACT
    if ref.startswith(query):
        return REFERENCE_PREFIX
    return REFERENCE_CONTAINS if query in ref else 0.0


def _greatest(expressions: list[Any]) -> Any:
    return expressions[0] if len(expressions) == 1 else Greatest(*expressions)


# --- candidates per type --------------------------------------------------------------------


def entity_candidates(*, user: Any, query: SearchQuery, types: tuple[str, ...]) -> QuerySet:
    """Visible, live persons / organisations whose names are word-similar to the query (GIN-indexed `<%`)."""
    entity_types = [t for t in (EntityType.PERSON, EntityType.ORGANIZATION) if t in types]
    person_forms = query.name_forms
    company_forms = query.company_forms if EntityType.ORGANIZATION in entity_types else query.name_forms
    match = Q()
    for form in person_forms:
        match |= Q(search_text__trigram_word_similar=form)
    for form in company_forms:
        if form not in person_forms:
            match |= Q(type=EntityType.ORGANIZATION, search_text__trigram_word_similar=form)
    if len(query.identifier) >= 4:
        match |= Q(identifier_numbers__contains=[query.identifier])
    if not match:
        return Entity.objects.none()
    word_sim = Case(
        When(type=EntityType.ORGANIZATION,
             then=_greatest([TrigramWordSimilarity(form, "search_text") for form in company_forms])),
        default=_greatest([TrigramWordSimilarity(form, "search_text") for form in person_forms]),
    )
    return (
        policy.visible(user, Entity)
        .filter(archived=False, type__in=entity_types)
        .filter(match)
        .annotate(word_sim=word_sim)
        .order_by("-word_sim", "name", "id")
        .values("id", "type", "name", "search_text", "identifier_numbers", "word_sim")
    )


def _entity_hits(user: Any, query: SearchQuery, types: tuple[str, ...]) -> list[SearchHit]:
    hits = []
    for row in entity_candidates(user=user, query=query, types=types)[:CANDIDATES_PER_TYPE]:
        forms = query.company_forms if row["type"] == EntityType.ORGANIZATION else query.name_forms
        score = name_score(forms, row["search_text"].split("\n"), row["word_sim"] or 0.0)
        if query.identifier and query.identifier in row["identifier_numbers"]:
            score = 1.0
        hits.append(SearchHit(type=row["type"], id=row["id"], label=row["name"], score=score))
    return hits


def _case_hits(user: Any, query: SearchQuery) -> list[SearchHit]:
    match = Q(reference__icontains=query.raw) | Q(title__unaccent__icontains=query.raw) | Q(
        summary__unaccent__icontains=query.raw)
    forms = query.name_forms
    title_sim: Any = Value(0.0)
    if forms:
        title_sim = _greatest([TrigramWordSimilarity(form, Unaccent(F("title"))) for form in forms])
        match |= Q(title_sim__gte=WORD_SIMILARITY_THRESHOLD)
    rows = (
        policy.cases_visible(user)
        .filter(archived=False)
        .annotate(title_sim=title_sim)
        .filter(match)
        .order_by("-title_sim", "-opened_on", "reference")
        .values("id", "reference", "title", "summary", "title_sim")[:CANDIDATES_PER_TYPE]
    )
    hits = []
    for row in rows:
        score = _reference_score(row["reference"], query.raw)
        if forms:
            score = max(score, name_score(forms, [fold(row["title"])], row["title_sim"]))
        if query.raw.lower() in row["summary"].lower():
            score = max(score, SUMMARY_CONTAINS)
        hits.append(SearchHit(type="case", id=row["id"], label=f"{row['reference']} {row['title']}", score=score))
    return hits


def shipment_candidates(*, user: Any, query: SearchQuery, parties: dict[Any, float]) -> QuerySet:
    """Visible, live shipments whose reference or declared description contains the query, whose description is
    word-similar to it (`<%`), or whose consignor, consignee, notify or ordering party is one of `parties`.

    Each condition is answered by an index (the trigram indexes on the reference and the unaccented description;
    the parties through their own trigram index, found before, and the shipments' party foreign keys), so the
    shipments are never all read."""
    description = searched_description()
    match = Q(reference__icontains=query.raw) | Q(
        description_text__contains=Upper(Unaccented(Value(query.raw))))
    forms = query.name_forms
    description_sim: Any = Value(0.0)
    if forms:
        description_sim = _greatest([TrigramWordSimilarity(form, description) for form in forms])
        for form in forms:
            match |= Q(description_text__trigram_word_similar=form)
    for field in PARTY_FIELDS if parties else ():
        match |= Q(**{f"{field}__in": list(parties)})
    return (
        policy.visible(user, Shipment)
        .filter(archived=False)
        .alias(description_text=description)
        .filter(match)
        .annotate(description_sim=description_sim)
        .order_by("-description_sim", "reference", "id")
        .values("id", "reference", "declared_description", "description_sim", *PARTY_FIELDS)
    )


def _shipment_hits(user: Any, query: SearchQuery, parties: list[SearchHit]) -> list[SearchHit]:
    party_scores = _party_scores(parties)
    hits = []
    for row in shipment_candidates(user=user, query=query, parties=party_scores)[:CANDIDATES_PER_TYPE]:
        score = max(_reference_score(row["reference"], query.raw), 0.7 * (row["description_sim"] or 0.0))
        if query.raw.lower() in row["declared_description"].lower():
            score = max(score, DESCRIPTION_CONTAINS)
        for field in PARTY_FIELDS:
            score = max(score, PARTY_FACTOR * party_scores.get(row[field], 0.0))
        hits.append(SearchHit(type="shipment", id=row["id"], label=row["reference"], score=score))
    return hits


def _party_scores(parties: list[SearchHit]) -> dict[Any, float]:
    """The best `PARTIES` persons and organisations found (at `PARTY_MIN_SCORE` or more): id → score."""
    best = sorted((hit for hit in parties if hit.score >= PARTY_MIN_SCORE), key=lambda hit: -hit.score)
    return {hit.id: hit.score for hit in best[:PARTIES]}


def search(*, user: Any, q: str, types: tuple[str, ...] = SEARCH_TYPES) -> list[SearchHit]:
    """Every visible, live record matching `q`, best first (score, then type, then label)."""
    query = SearchQuery.parse(q)
    hits: list[SearchHit] = []
    with transaction.atomic():
        entities: list[SearchHit] = []
        if query.name_forms:
            with connection.cursor() as cursor:  # for this transaction only
                cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
                               [str(WORD_SIMILARITY_THRESHOLD)])
            # A shipment's parties are searched by name too: with shipments, both kinds of entity are looked for.
            wanted = ("person", "organization") if "shipment" in types else types
            if {"person", "organization"} & set(wanted):
                entities = _entity_hits(user, query, wanted)
        hits += [hit for hit in entities if hit.type in types]
        if "case" in types:
            hits += _case_hits(user, query)
        if "shipment" in types:
            hits += _shipment_hits(user, query, entities)
    hits = [SearchHit(h.type, h.id, h.label, round(h.score, 4)) for h in hits]
    hits.sort(key=lambda h: (-h.score, TYPE_ORDER[h.type], h.label.lower(), str(h.id)))
    return hits


# --- API ------------------------------------------------------------------------------------


class SearchParamsSerializer(serializers.Serializer):
    q = serializers.CharField(min_length=MIN_QUERY_LENGTH, max_length=MAX_QUERY_LENGTH)
    type = serializers.CharField(required=False, allow_blank=True)

    def validate_type(self, value: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
        unknown = [t for t in chosen if t not in SEARCH_TYPES]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown type {', '.join(unknown)}; choose from {', '.join(SEARCH_TYPES)}.")
        return chosen or SEARCH_TYPES


class SearchHitSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=SEARCH_TYPES)
    id = serializers.UUIDField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    score = serializers.FloatField(min_value=0, max_value=1, help_text="1 is an exact match")


class SearchView(QueryParametersMixin, GenericAPIView):
    """Persons, organisations, cases and shipments in one ranked list."""

    pagination_class = Pagination
    serializer_class = SearchHitSerializer
    filter_backends: list = []
    query_parameters = [
        OpenApiParameter("q", {"type": "string", "minLength": MIN_QUERY_LENGTH, "maxLength": MAX_QUERY_LENGTH},
                         required=True,
                         description="Free text, at least 2 characters: a name in any script or word order, "
                                     "a case or shipment reference, an identifier number. One value: commas are "
                                     "part of the text."),
        OpenApiParameter("type", {"type": "array", "items": {"type": "string", "enum": list(SEARCH_TYPES)}},
                         explode=True, style="form",
                         description="The types to return (default: all). Several values: repeat the parameter or "
                                     "separate them with commas; any of them."),
    ]

    @extend_schema(
        operation_id="search",
        responses={200: SearchHitSerializer(many=True), 400: OpenApiResponse(description="q missing or too short")},
    )
    def get(self, request: Request) -> Response:
        data = request.query_params.dict()
        if "type" in request.query_params:  # repeated as well as comma-separated
            data["type"] = ",".join(request.query_params.getlist("type"))
        params = SearchParamsSerializer(data=data)
        params.is_valid(raise_exception=True)
        hits = search(user=request.user, q=params.validated_data["q"],
                      types=params.validated_data.get("type") or SEARCH_TYPES)
        page: list[SearchHit] | None = self.paginate_queryset(hits)  # type: ignore[arg-type]  # any sequence
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
