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

Every filter takes several values (API.md § Basics), repeated (`?status=open&status=closed`) or comma-separated
(`?status=open,closed`), meaning any of them: `any_of` turns each filter of a hardened filterset into one of
several values, each value cleaned by the filter's own field. Not so: the bounds of ranges (`quantity_min`,
`departed_after`: one bound each), booleans, and free text (`q`, a fuzzy `name`: a `TextSearchFilter`, whose
commas are part of the text); a substring filter (`court`) takes several values repeated only, as a comma may be
part of the text it looks for.

A list answers a 400 naming every query parameter it does not know (`{"quantity_kg__gte": ["Unknown query
parameter."]}`) and every `ordering` field it does not sort by, rather than ignoring them; what it knows is what
the schema says it takes (its filters, `ordering` as an enum, `COMMON_PARAMETERS`, and a view's own
`query_parameters`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q, QuerySet
from django_filters import filterset
from django_filters import rest_framework as filters
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.contrib.django_filters import DjangoFilterExtension, _NoHint
from drf_spectacular.plumbing import build_array_type
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.filters import OrderingFilter

MAX_TEXT = 1000
MAX_OFFSET = dt.timedelta(hours=14)  # the widest offset in use (UTC+14, Kiribati); UTC-12 is the narrowest west
MAX_DECIMAL_PLACES = 50
BOOLEAN_TOKENS = {"true": True, "1": True, "false": False, "0": False}
MAX_VALUES = 100  # values of one filter: "any of" a hundred ids is a list; more is a query to cut down

# What every list takes besides its filters: paging, `ordering`, free text, archived rows, and the shapes of the
# answer (`format` for exports and DRF's renderers, `fields` / `brief` for sparse answers).
COMMON_PARAMETERS = frozenset({"page", "page_size", "ordering", "q", "include_archived", "format", "fields", "brief"})
UNKNOWN_PARAMETER = "Unknown query parameter."
SAFE_METHODS = ("GET", "HEAD")
# Lookups whose filter is one bound of a range, or a yes/no: one value each.
SINGLE_VALUE_LOOKUPS = frozenset({"gt", "gte", "lt", "lte", "range", "isnull"})
# Lookups that look for text inside text: a comma may be part of what is looked for, so values are only repeated.
SUBSTRING_LOOKUPS = frozenset({"contains", "icontains", "search", "trigram_similar", "trigram_word_similar"})
SEVERAL = "Several values: repeat the parameter or separate them with commas; any of them matches."
SEVERAL_REPEATED = "Several values: repeat the parameter (a comma is part of the text); any of them matches."
ONE_TEXT = "One value: commas are part of the text."


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
    if isinstance(value, list):
        return [check_value(item) for item in value]
    if isinstance(value, dt.datetime):
        return _check_datetime(value)
    if isinstance(value, Decimal):
        _check_decimal(value)
    for text in _texts(value):
        if len(text) > MAX_TEXT:
            raise forms.ValidationError(f"Ensure this value has at most {MAX_TEXT} characters (it has {len(text)}).",
                                        code="max_length")
    return value


# --- several values ----------------------------------------------------------------------------


class AnyOfWidget(forms.TextInput):
    """Every value of a parameter, repeated or (unless `split_commas` is false) comma-separated; blanks dropped
    (`?status=` and `?status=a,` are no filter, and `a` alone). The browsable API shows them comma-separated."""

    def __init__(self, split_commas: bool = True, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.split_commas = split_commas

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]] if name in data else []
        parts = []
        for value in values:
            for part in (str(value).split(",") if self.split_commas else [str(value)]):
                if part.strip():
                    parts.append(part.strip() if self.split_commas else part)
        return parts

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in data

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, list | tuple):
            return ",".join(str(item) for item in value) or None
        return super().format_value(value)


class AnyOfField(forms.Field):
    """A list of values, each cleaned by `inner` (the filter's own field); the same value once."""

    widget = AnyOfWidget

    def __init__(self, inner: forms.Field, *, split_commas: bool = True, **kwargs: Any) -> None:
        self.inner = inner
        kwargs.setdefault("widget", AnyOfWidget(split_commas=split_commas))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[Any] | None:
        items = value if isinstance(value, list | tuple) else [] if value in EMPTY_VALUES else [value]
        if len(items) > MAX_VALUES:
            raise forms.ValidationError(f"At most {MAX_VALUES} values.", code="max_values")
        cleaned: list[Any] = []
        for item in items:
            item = self.inner.clean(item)
            if item not in EMPTY_VALUES and item not in cleaned:
                cleaned.append(item)
        return cleaned or None


class TextSearchFilter(filters.CharFilter):
    """Free text (`q`, a fuzzy `name`): one value, whose commas are part of the text."""


def several(method: Callable[..., QuerySet]) -> Callable[..., QuerySet]:
    """Marks a filterset's filter method as taking the list of values itself (one query for any of them); an
    unmarked method is called once per value and the rows of each are joined."""
    method.takes_several = True  # type: ignore[attr-defined]
    return method


def _crosses_many(model: Any, path: str) -> bool:
    """Whether the field path goes through a to-many relation (a row may then match several values)."""
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except (AttributeError, FieldDoesNotExist):
            return False
        if field.many_to_many or field.one_to_many:
            return True
        model = field.related_model
        if model is None:
            return False
    return False


class AnyOfFilter(filters.Filter):
    """Several values of the filter `inner`, meaning any of them: `field__in` for a plain exact filter, else each
    value's condition ORed; a method marked `several` gets the list, any other method each value on its own."""

    def __init__(self, inner: filters.Filter, *, split_commas: bool = True) -> None:
        super().__init__(field_name=inner.field_name, lookup_expr=inner.lookup_expr, label=inner._label)
        self.inner = inner
        self.split_commas = split_commas
        self.creation_counter = inner.creation_counter

    # The filterset sets these on each of its filters; the inner one resolves its method and label through them.
    @property
    def parent(self) -> Any:
        return self.inner.parent

    @parent.setter
    def parent(self, value: Any) -> None:
        self.inner.parent = value

    @property
    def model(self) -> Any:
        return self.inner.model

    @model.setter
    def model(self, value: Any) -> None:
        self.inner.model = value

    @property
    def field(self) -> forms.Field:
        if not hasattr(self, "_field"):
            self._field = AnyOfField(self.inner.field, split_commas=self.split_commas, label=self.inner.label,
                                     required=False)
        return self._field

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        if not value:
            return qs
        inner = self.inner
        if inner.method is None and type(inner).filter in (filters.Filter.filter, filters.ChoiceFilter.filter):
            return self._filter_field(qs, value)
        if inner.method is not None and getattr(inner.filter.method, "takes_several", False):
            return inner.filter.method(qs, inner.field_name, value)
        if len(value) == 1:
            return inner.filter(qs, value[0])
        # Each value's rows, by id: the list's own query (its scope, its order) stays as it is, once.
        rows = qs.model._base_manager.all()
        any_of = Q()
        for one in value:
            any_of |= Q(pk__in=inner.filter(rows, one).values("pk"))
        return qs.filter(any_of)

    def _filter_field(self, qs: QuerySet, value: list[Any]) -> QuerySet:
        inner = self.inner
        if inner.lookup_expr == "exact":
            condition = Q(**{f"{inner.field_name}__in": value})
        else:
            condition = Q()
            for one in value:
                condition |= Q(**{f"{inner.field_name}__{inner.lookup_expr}": one})
        if _crosses_many(qs.model, inner.field_name):
            # Through a to-many relation a row would come once per value it matches: match its id instead.
            condition = Q(pk__in=qs.model._base_manager.filter(condition).values("pk"))
        return qs.exclude(condition) if inner.exclude else qs.filter(condition)


def _single(filter_: filters.Filter) -> bool:
    """A filter that keeps one value: a bound of a range, a yes/no, free text, or one of several already."""
    if isinstance(filter_, TextSearchFilter | filters.BooleanFilter | filters.RangeFilter | filters.BaseCSVFilter
                  | filters.OrderingFilter | AnyOfFilter):
        return True
    if issubclass(filter_.field_class, forms.NullBooleanField):
        return True
    return (filter_.lookup_expr or "exact").split("__")[-1] in SINGLE_VALUE_LOOKUPS


def any_of(filter_: filters.Filter) -> filters.Filter:
    """The filter taking several values (itself when it keeps one)."""
    if isinstance(filter_, filters.MultipleChoiceFilter):
        if isinstance(filter_.extra.get("widget"), AnyOfWidget):
            return filter_
        several_choices = copy.copy(filter_)
        several_choices.extra = {**filter_.extra, "widget": AnyOfWidget()}
        several_choices.__dict__.pop("_field", None)
        return several_choices
    if _single(filter_):
        return filter_
    substring = (isinstance(filter_, filters.CharFilter)
                 and (filter_.lookup_expr or "").split("__")[-1] in SUBSTRING_LOOKUPS)
    return AnyOfFilter(filter_, split_commas=not substring)


def prepare(filterset_class: type) -> None:
    """Every filter of the filterset class made to take several values, once per class."""
    if "_any_of" not in filterset_class.__dict__:
        filterset_class.base_filters = {name: any_of(filter_)  # type: ignore[attr-defined]
                                        for name, filter_ in filterset_class.base_filters.items()}  # type: ignore[attr-defined]
        filterset_class._any_of = True  # type: ignore[attr-defined]


_parameter_names: dict[type, frozenset[str]] = {}


def parameter_names(filterset_class: type) -> frozenset[str]:
    """The query parameters a filterset class reads (a range's widget reads one per suffix), worked out once."""
    names = _parameter_names.get(filterset_class)
    if names is None:
        found: set[str] = set()
        for name, filter_ in filterset_class.base_filters.items():  # type: ignore[attr-defined]
            suffixes = getattr(filter_.field.widget, "suffixes", None) or [""]
            found.update(f"{name}_{suffix}" if suffix else name for suffix in suffixes)
        names = _parameter_names[filterset_class] = frozenset(found)
    return names


def unknown_parameters(request: Any, known: Iterable[str]) -> dict[str, list[ErrorDetail]]:
    """Each query parameter neither in `known` nor one every list takes, named with its message."""
    if request.method not in SAFE_METHODS:
        return {}
    known = set(known) | COMMON_PARAMETERS
    return {name: [ErrorDetail(UNKNOWN_PARAMETER, code="unknown")]
            for name in request.query_params if name not in known}


def check_query_parameters(request: Any, known: Iterable[str]) -> None:
    """A 400 naming every query parameter of a GET that is neither in `known` nor one every list takes."""
    unknown = unknown_parameters(request, known)
    if unknown:
        raise exceptions.ValidationError(unknown)


def query_parameter_names(parameters: Iterable[Any]) -> set[str]:
    return {p.name for p in parameters if isinstance(p, OpenApiParameter) and p.location == OpenApiParameter.QUERY}


class QueryParametersMixin:
    """A view's query parameters are the OpenAPI parameters it declares in `query_parameters` (the schema's too,
    core.api.schema) and `COMMON_PARAMETERS`; any other is a 400. A list filtered by `FilterBackend` is checked
    there, with its filters; everything else (search, graph, details and their actions) here."""

    query_parameters: Sequence[OpenApiParameter] = ()

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # after authentication: 401 comes first
        filtered = any(isinstance(backend, type) and issubclass(backend, FilterBackend)
                       for backend in getattr(self, "filter_backends", ()))
        if not (filtered and is_list(self)):
            check_query_parameters(request, query_parameter_names(self.query_parameters))


def is_list(view: Any) -> bool:
    """Whether the view answers a list (its filters apply) rather than a record found by its id."""
    action = getattr(view, "action", None)
    if action is not None:
        return bool(action == "list")
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
    return lookup not in (getattr(view, "kwargs", None) or {})


class StrictFilterForm(forms.Form):
    """The form of a hardened filterset: every cleaned value goes through `check_value`."""

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        prepare(type(self))
        super().__init__(*args, **kwargs)

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
        prepare(filterset_class)
        return filterset_class
    if filterset_class not in _hardened:
        _hardened[filterset_class] = type(filterset_class.__name__, (StrictFilterSetMixin, filterset_class),
                                          {"__module__": filterset_class.__module__,
                                           "__doc__": filterset_class.__doc__})
        prepare(_hardened[filterset_class])
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
    """django-filter's backend, with every filterset hardened and its errors passed on intact; on a list, a query
    parameter the list does not take is a 400 too (with the filters' errors, in one answer)."""

    filterset_base = StrictFilterSet

    def get_filterset_class(self, view: Any, queryset: QuerySet | None = None) -> Any:
        filterset_class = super().get_filterset_class(view, queryset)
        return harden(filterset_class) if filterset_class is not None else None

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        if not is_list(view):
            # A record is found by its id alone: a list's filters do not narrow it, nor are they its parameters.
            check_query_parameters(request, query_parameter_names(getattr(view, "query_parameters", ())))
            return queryset
        filterset_class = self.get_filterset_class(view, queryset)
        known = query_parameter_names(getattr(view, "query_parameters", ()))
        if filterset_class is not None:
            known |= parameter_names(filterset_class)
        errors = unknown_parameters(request, known)
        filterset = None
        if filterset_class is not None and reads_any(filterset_class, request.query_params):
            filterset = filterset_class(**self.get_filterset_kwargs(request, queryset, view))
            if not filterset.is_valid():
                errors.update(form_errors(filterset.form))
        if errors:
            raise exceptions.ValidationError(errors)
        return filterset.qs if filterset is not None else queryset


class BaseFilterSet(StrictFilterSetMixin, filters.FilterSet):
    """`q`, `created_after` and `updated_after` on every list; `q` searches `q_fields`."""

    q = TextSearchFilter(method="filter_q", label="Free-text search")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    q_fields: tuple[str, ...] = ()

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q()
        for field in self.q_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query) if self.q_fields else queryset


class StableOrdering(OrderingFilter):
    """DRF's `ordering`, strict and stable: a field the list does not sort by is a 400 naming `ordering` (not
    ignored); the parameter may be repeated as well as comma-separated; and the primary key is the last key, so
    rows that tie on the fields asked for (two commodities controlled since one date) come in one order on every
    request, and pages never overlap. The schema gives the allowed values as an enum."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        if not is_list(view):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def allowed(self, queryset: Any, view: Any, request: Any) -> list[str]:
        return [name for name, _ in self.get_valid_fields(queryset, view, {"request": request})]

    def get_ordering(self, request: Any, queryset: QuerySet, view: Any) -> Any:
        terms = [term.strip() for value in request.query_params.getlist(self.ordering_param)
                 for term in value.split(",") if term.strip()]
        if terms:
            allowed = self.allowed(queryset, view, request)
            unknown = [term for term in terms if term.removeprefix("-") not in allowed]
            if unknown:
                raise exceptions.ValidationError({self.ordering_param: [ErrorDetail(
                    f"Unknown ordering field: {', '.join(unknown)[:MAX_TEXT]}. Allowed: {', '.join(allowed)} "
                    "(each with - before it for descending).", code="unknown")]})
            ordering: Any = list(dict.fromkeys(terms))
        else:
            ordering = self.get_default_ordering(view)
        if ordering and not any(term.lstrip("-") in ("pk", "id") for term in ordering):
            return [*ordering, "pk"]
        return ordering

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        if not is_list(view):
            return []
        queryset = getattr(view, "queryset", None)
        allowed = self.allowed(queryset, view, getattr(view, "request", None))
        if not allowed:
            return []
        return [{
            "name": self.ordering_param, "required": False, "in": "query",
            "description": "The fields to sort by, comma-separated (or repeated), each with `-` before it for "
                           "descending; any other is a 400.",
            "schema": {"type": "array", "items": {"type": "string",
                                                  "enum": [f"{sign}{name}" for name in allowed for sign in ("", "-")]}},
            "style": "form", "explode": False,
        }]


class FilterSchema(DjangoFilterExtension):
    """The schema of the project's filters: a filter of several values is an array of its values' schema (the
    parameter repeated), and every filter says whether it takes several values; a list's filters only (a detail
    is found by its id). A filter's type is its field's, not its method's (the method gets what the field made)."""

    target_class = "core.api.filters.FilterBackend"
    priority = 1

    def get_schema_operation_parameters(self, auto_schema: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if not is_list(auto_schema.view):
            return []
        return super().get_schema_operation_parameters(auto_schema, *args, **kwargs)

    def _get_filter_method_hint(self, filter_method: Any) -> Any:
        return _NoHint

    def resolve_filter_field(self, auto_schema: Any, model: Any, filterset_class: Any, field_name: str,
                             filter_field: Any) -> list[dict[str, Any]]:
        if not isinstance(filter_field, AnyOfFilter):
            parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
            note = (ONE_TEXT if isinstance(filter_field, TextSearchFilter)
                    else SEVERAL if isinstance(filter_field, filters.MultipleChoiceFilter) else "")
            for parameter in parameters if note else ():
                parameter["description"] = _described(parameter.get("description"), note)
            return parameters
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field.inner)
        for parameter in parameters:
            parameter["schema"] = build_array_type(parameter["schema"])
            parameter["explode"], parameter["style"] = True, "form"
            parameter["description"] = _described(parameter.get("description"),
                                                   SEVERAL if filter_field.split_commas else SEVERAL_REPEATED)
        return parameters


def _described(description: str | None, note: str) -> str:
    if not description:
        return note
    if description.startswith("* `"):  # drf-spectacular's list of choices alone
        return f"{note}\n\n{description}"
    head, sep, choices = description.partition("\n\n*")  # the list of choices stays last
    return f"{head.rstrip('.')}. {note}{sep}{choices}"
