"""Filters of persons, organisations and links; query values are normalised as stored values are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db.models import F, Func, Q, QuerySet, Value
from django.db.models.functions import Upper
from django_filters import rest_framework as filters

from cases.models import CaseParty
from core import policy
from core.api.filters import BaseFilterSet, TextSearchFilter, several
from entities import validators
from entities.models import Link, LinkKind, Organization, OrganizationKind, Person
from entities.normalize import company_core, fold


class _NormalizedField(forms.CharField):
    """A query value cleaned by one of the validators; a value it refuses is a 400 on the filter."""

    normalize = staticmethod(lambda value: value)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if not value:
            return value
        try:
            return type(self).normalize(value)
        except validators.InvalidValue as exc:
            raise forms.ValidationError(str(exc)) from exc


class _CountryField(_NormalizedField):
    normalize = staticmethod(validators.normalize_country)


class _PhoneField(_NormalizedField):
    normalize = staticmethod(validators.phone_query)


class CountryFilter(filters.CharFilter):
    field_class = _CountryField


class PhoneFilter(filters.CharFilter):
    field_class = _PhoneField


def identifier_keys(values: list[str]) -> list[str]:
    """The numbers as the identifier index holds them (spacing and dashes dropped); those that keep nothing go."""
    return list(dict.fromkeys(key for key in map(validators.identifier_key, values) if key))


class EntityFilterSet(BaseFilterSet):
    """What persons and organisations are both filtered by."""

    name = TextSearchFilter(method="filter_name", label="Name, fuzzy (trigram; case, accents, script and "
                                                          "word order do not matter); ranks by similarity")
    phone = PhoneFilter(method="filter_phone", label="Phone (normalised to E.164 first)")
    email = filters.CharFilter(method="filter_email", label="Email (case-insensitive)")
    case = filters.UUIDFilter(method="filter_case", label="Case id (visible to you) the entity is a party of")
    source = filters.CharFilter(field_name="source")
    list = filters.CharFilter(method="filter_list", label="Watchlist source (e.g. ofac-sdn) listing the record now")
    topic = filters.CharFilter(method="filter_topic", label="FollowTheMoney topic (e.g. sanction, role.pep)")

    def fold_query(self, value: str) -> str:
        return fold(value)

    def filter_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = self.fold_query(value)
        if not query:
            return queryset.none()
        # `search_text %> query` is word_similarity(query, search_text) above pg_trgm's threshold,
        # which the trigram GIN index `entity_search_trgm` answers.
        return (queryset.filter(search_text__trigram_word_similar=query)
                .annotate(similarity=TrigramWordSimilarity(query, "search_text"))
                .order_by("-similarity", "name", "id"))

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q(name__icontains=value) | Q(notes__icontains=value)
        folded = fold(value)
        if folded:
            query |= Q(search_text__contains=folded)  # already folded to lower case
        key = validators.identifier_key(value)
        if key:
            query |= Q(identifier_numbers__contains=[key])
        return queryset.filter(query)

    @several
    def filter_list(self, queryset: QuerySet, name: str, value: Sequence[str]) -> QuerySet:
        return queryset.filter(lists__overlap=value)

    @several
    def filter_topic(self, queryset: QuerySet, name: str, value: Sequence[str]) -> QuerySet:
        return queryset.filter(topics__overlap=[topic.lower() for topic in value])

    @several
    def filter_phone(self, queryset: QuerySet, name: str, value: Sequence[str]) -> QuerySet:
        return queryset.filter(phones__overlap=value)

    @several
    def filter_email(self, queryset: QuerySet, name: str, value: Sequence[str]) -> QuerySet:
        # Stored addresses are lower-cased; the address as typed covers rows written before that rule.
        emails = {form for email in value for form in (email.strip().lower(), email.strip())}
        return queryset.filter(emails__overlap=sorted(emails))

    @several
    def filter_case(self, queryset: QuerySet, name: str, value: Sequence[Any]) -> QuerySet:
        # Only a case the caller sees: a hidden case's parties are not revealed by probing its id.
        parties = CaseParty.objects.filter(case_id__in=value, archived=False,
                                           case__in=policy.cases_visible(self.request.user))
        return queryset.filter(pk__in=parties.values("entity_id"))


class PersonFilterSet(EntityFilterSet):
    nationality = CountryFilter(method="filter_nationality", label="ISO 3166-1 alpha-2")
    birth_date = filters.DateFilter(field_name="birth_date")
    identifier = filters.CharFilter(method="filter_identifier", label="Identifier number (spacing and dashes "
                                                                      "do not matter)")

    class Meta:
        model = Person
        fields: list[str] = []

    @several
    def filter_nationality(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(nationalities__overlap=value)

    @several
    def filter_identifier(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        keys = identifier_keys(value)
        return queryset.filter(identifier_numbers__overlap=keys) if keys else queryset.none()


class OrganizationFilterSet(EntityFilterSet):
    kind = filters.MultipleChoiceFilter(choices=OrganizationKind.choices)
    jurisdiction = CountryFilter(field_name="jurisdiction", label="ISO 3166-1 alpha-2")
    registration_number = filters.CharFilter(method="filter_registration_number",
                                             label="Registration number (spacing and dashes do not matter)")
    incorporated_after = filters.DateFilter(field_name="incorporated_on", lookup_expr="gte")
    incorporated_before = filters.DateFilter(field_name="incorporated_on", lookup_expr="lte")

    class Meta:
        model = Organization
        fields: list[str] = []

    def fold_query(self, value: str) -> str:
        # Stored search text holds each name without its legal form too: so must the query.
        return company_core(value)

    @several
    def filter_registration_number(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        keys = identifier_keys(value)
        if not keys:
            return queryset.none()
        # The identifier index narrows to rows holding the number; the second test keeps those where it is
        # the registration number rather than another identifier.
        compacted = Upper(Func(F("registration_number"), Value(r"[^[:alnum:]]+"), Value(""), Value("g"),
                               function="REGEXP_REPLACE"))
        return queryset.filter(identifier_numbers__overlap=keys).alias(reg_key=compacted).filter(reg_key__in=keys)


class LinkFilterSet(BaseFilterSet):
    q_fields = ("description", "subtype")

    kind = filters.MultipleChoiceFilter(choices=LinkKind.choices)
    entity = filters.UUIDFilter(method="filter_entity", label="Entity id at either end")
    case = filters.UUIDFilter(field_name="case_id")

    class Meta:
        model = Link
        fields: list[str] = []

    @several
    def filter_entity(self, queryset: QuerySet, name: str, value: list[Any]) -> QuerySet:
        return queryset.filter(Q(source_id__in=value) | Q(target_id__in=value))
