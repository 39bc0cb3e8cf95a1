"""The filtering of every list: one backend, one set of checks, whatever filterset a view declares.

A bad value of any filter is a 400 naming its parameter (DRF's `{"param": ["message"]}`), never a 500. The
checks live here, once, rather than in each filter: `FilterBackend` (the project's filter backend, see
`REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]`) hardens the filterset of every view, a declared `filterset_class`,
one built from `filterset_fields`, or a plain django-filter `FilterSet` alike, so a new filter is covered
the day it is added. What the checks add to the form fields' own validation:

- text longer than `MAX_TEXT` characters is refused (NUL characters are already refused by Django's fields);
- a date-time must carry a real UTC offset (within ±14:00) and is turned into UTC, so the database never
  sees an offset it cannot parse, nor an instant outside the representable years;
- a number has at most `MAX_DECIMAL_PLACES` decimal places (besides django-filter's ±1e50 and finiteness);
- a boolean is `true`/`false`/`1`/`0` (any case); anything else is refused, not silently ignored;
- error messages are passed on as written: django-filter's own translation `%`-formats them, so a message
  quoting a value that holds `%` became a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django_filters import filterset
from django_filters import rest_framework as filters
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.filters import OrderingFilter

MAX_TEXT = 1000
MAX_OFFSET = dt.timedelta(hours=14)  # the widest offset in use (UTC+14, Kiribati); UTC-12 is the narrowest west
MAX_DECIMAL_PLACES = 50
BOOLEAN_TOKENS = {"true": True, "1": True, "false": False, "0": False}


class StrictBooleanField(forms.Field):
    """`true`/`false`/`1`/`0` in any case; empty is no filter; anything else a 400 (not ignored)."""

    default_error_messages = {"invalid": "Expected true or false."}

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        try:
            return BOOLEAN_TOKENS[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _check_datetime(value: dt.datetime) -> dt.datetime:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise forms.ValidationError("The UTC offset must be between -14:00 and +14:00.", code="offset")
    try:
        return value.astimezone(dt.UTC) if offset is not None else value
    except OverflowError:
        raise forms.ValidationError("The date-time is out of range.", code="out_of_range") from None


def _check_decimal(value: Decimal) -> None:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        raise forms.ValidationError(f"Ensure that there are no more than {MAX_DECIMAL_PLACES} decimal places.",
                                    code="max_decimal_places")


def check_value(value: Any) -> Any:
    """A cleaned value of a filter, checked beyond its field; returns it as the query should use it."""
    if isinstance(value, dt.datetime):
        return _check_datetime(value)
    if isinstance(value, Decimal):
        _check_decimal(value)
    for text in _texts(value):
        if len(text) > MAX_TEXT:
            raise forms.ValidationError(f"Ensure this value has at most {MAX_TEXT} characters (it has {len(text)}).",
                                        code="max_length")
    return value


class StrictFilterForm(forms.Form):
    """The form of a hardened filterset: every cleaned value goes through `check_value`."""

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        # An empty value is no filter, for a filter of several choices too (`?status=`, `?status=a&status=`).
        if isinstance(data, QueryDict):
            multiple = [name for name, field in self.base_fields.items()
                        if isinstance(field, forms.MultipleChoiceField) and "" in data.getlist(name)]
            if multiple:
                data = data.copy()
                for name in multiple:
                    data.setlist(name, [value for value in data.getlist(name) if value != ""])
        super().__init__(data, *args, **kwargs)

    def _clean_fields(self) -> None:
        super()._clean_fields()  # type: ignore[misc]
        for name in list(self.cleaned_data):
            try:
                self.cleaned_data[name] = check_value(self.cleaned_data[name])
            except forms.ValidationError as exc:
                self.add_error(name, exc)


_form_classes: dict[type, type[forms.Form]] = {}


class StrictFilterSetMixin:
    """What makes a filterset strict: its form checks every value; boolean filters take only real booleans."""

    filters: dict[str, filters.Filter]

    def get_form_class(self) -> type[forms.Form]:
        # Made once per filterset class (its filters are its class's: no filterset here changes them per request),
        # not twice per request; a form copies its fields when made, so one class serves every request.
        form_class = _form_classes.get(type(self))
        if form_class is None:
            form_class = super().get_form_class()  # type: ignore[misc]
            fields = {}
            for name, field in form_class.base_fields.items():
                if isinstance(field, forms.NullBooleanField):
                    fields[name] = StrictBooleanField(required=False, label=field.label, help_text=field.help_text)
            form_class = _form_classes[type(self)] = type(form_class.__name__, (StrictFilterForm, form_class), fields)
        return form_class


class StrictFilterSet(StrictFilterSetMixin, filters.FilterSet):
    """A plain filterset, strict: the base of the ones the backend builds from a view's `filterset_fields`."""


_hardened: dict[type, type] = {}


def harden(filterset_class: type[filterset.BaseFilterSet]) -> type[filterset.BaseFilterSet]:
    """The filterset class made strict (itself when it already is); the same class each time.

    Only declared classes come here unhardened (the backend builds the others on `StrictFilterSet`), so the
    cache holds one entry per declared filterset.
    """
    if issubclass(filterset_class, StrictFilterSetMixin):
        return filterset_class
    if filterset_class not in _hardened:
        _hardened[filterset_class] = type(filterset_class.__name__, (StrictFilterSetMixin, filterset_class),
                                          {"__module__": filterset_class.__module__,
                                           "__doc__": filterset_class.__doc__})
    return _hardened[filterset_class]


def form_errors(form: forms.Form) -> dict[str, list[ErrorDetail]]:
    """The form's errors in DRF's shape, each message as written (formatted only with its own params)."""
    return {name: [ErrorDetail(message, code=error.code) for error in errors for message in error.messages]
            for name, errors in form.errors.as_data().items()}


_filter_names: dict[type, tuple[str, ...]] = {}


def reads_any(filterset_class: type[filterset.BaseFilterSet], params: Any) -> bool:
    """Whether any of the query's parameters is one a filter of the filterset reads: its name, or its name and a
    suffix (a range's `_min`, `_after`, …). When none is, every filter gets an empty value and passes the rows
    through as they are (a detail, a list with only `page` or `ordering`): the filterset need not be built and
    its form cleaned, milliseconds of every such request."""
    names = _filter_names.get(filterset_class)
    if names is None:
        names = _filter_names[filterset_class] = tuple(filterset_class.base_filters)
    return any(key == name or key.startswith(f"{name}_") for key in params for name in names)


class FilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, with every filterset hardened and its errors passed on intact."""

    filterset_base = StrictFilterSet

    def get_filterset_class(self, view: Any, queryset: QuerySet | None = None) -> Any:
        filterset_class = super().get_filterset_class(view, queryset)
        return harden(filterset_class) if filterset_class is not None else None

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not reads_any(filterset_class, request.query_params):
            return queryset
        filterset = filterset_class(**self.get_filterset_kwargs(request, queryset, view))
        if not filterset.is_valid():
            raise exceptions.ValidationError(form_errors(filterset.form))
        return filterset.qs


class BaseFilterSet(StrictFilterSetMixin, filters.FilterSet):
    """`q`, `created_after` and `updated_after` on every list; `q` searches `q_fields`."""

    q = filters.CharFilter(method="filter_q", label="Free-text search")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    q_fields: tuple[str, ...] = ()

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q()
        for field in self.q_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query) if self.q_fields else queryset


class StableOrdering(OrderingFilter):
    """DRF's `ordering`, with the primary key as the last key: rows that tie on the fields asked for (two
    commodities controlled since one date) come in one order on every request, and pages never overlap."""

    def get_ordering(self, request: Any, queryset: QuerySet, view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not any(term.lstrip("-") in ("pk", "id") for term in ordering):
            return [*ordering, "pk"]
        return ordering
