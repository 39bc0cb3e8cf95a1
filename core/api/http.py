"""What every API view answers the same way (API.md § Basics), in one mixin of the base views:

- `?fields=a,b` and `?brief=true` on lists and details: only those fields, and only the prefetches they need;
- `Idempotency-Key` on every POST (core.idempotency);
- `Location` on a creation's answer (the created record's detail);
- `If-None-Match` on a detail with an ETag: 304 when it names the current version.

A request without these parameters and headers costs nothing more than before: each is looked at only when sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core import idempotency

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _ViewBase = GenericAPIView
else:
    _ViewBase = object

SELECTION_ACTIONS = ("list", "retrieve")
LABELS = ("name", "reference")  # a brief record's label: the first of these the resource has
TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no", "")

FIELDS_PARAMETER = OpenApiParameter(
    "fields", OpenApiTypes.STR, explode=False,
    description="Comma-separated field names: only these fields are answered (and only what they need is read). "
                "An unknown name is a 400 naming it.",
)
BRIEF_PARAMETER = OpenApiParameter(
    "brief", OpenApiTypes.BOOL,
    description="`true`: only `id`, the label (`name` or `reference`, where the resource has one) and `url` (the "
                "record's detail). With `fields`, those fields are added.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description='`"<version>"` (the ETag you hold) or `*`: when it names the current version the answer is a 304 '
                "without a body.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="1 to 255 printable ASCII characters (a UUID). The same key from you with the same request "
                "(method, path and body) within 24 hours answers the first answer again (status, body, Location, "
                "ETag) with `Idempotent-Replayed: true`, and does nothing again; the same key with another request "
                "is a 422. While the first request with a key runs, another with that key is a 409: retry it. "
                "Every answer but a 5xx is kept (retry a 5xx with the same key).",
)


@extend_schema_field(OpenApiTypes.URI)
class DetailUrlField(serializers.Field):
    """The absolute URL of the record's detail, named as the view's routes are (`<basename>-detail`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:
        view = self.context["view"]
        return detail_url(view, self.context["request"], getattr(value, view.lookup_field))


def detail_url(view: Any, request: Request, lookup: Any) -> str | None:
    basename = getattr(view, "basename", None)
    if basename is None:
        return None
    kwargs = {name: value for name, value in view.kwargs.items() if name != (view.lookup_url_kwarg or "pk")}
    kwargs[view.lookup_url_kwarg or view.lookup_field] = lookup
    try:
        return request.build_absolute_uri(reverse(f"{basename}-detail", kwargs=kwargs))
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class Selection:
    """The fields a request asked for (in the serializer's order), and whether `url` is added (brief)."""

    names: tuple[str, ...]
    url: bool


def _listed(request: Request, name: str) -> list[str]:
    return [part.strip() for value in request.query_params.getlist(name) for part in value.split(",")
            if part.strip()]


def _prefetch_root(lookup: Any) -> str:
    path = lookup.prefetch_to if isinstance(lookup, Prefetch) else str(lookup)
    return path.split("__", 1)[0]


class HttpHabitsMixin(_ViewBase):
    """The views' common answers above. On a view whose prefetches serve fields of other names, `field_prefetches`
    names them ({field: (prefetch attribute, ...)}), so a selection of the field keeps them."""

    request: Request
    field_prefetches: dict[str, tuple[str, ...]] = {}

    # --- ?fields= and ?brief= ----------------------------------------------------------------------------

    def field_selection(self) -> Selection | None:
        """None unless the request asks for fields (most do not: then nothing else is looked at)."""
        if "_field_selection" in self.__dict__:
            return self.__dict__["_field_selection"]
        selection = None
        params = self.request.query_params
        if (getattr(self, "action", None) in SELECTION_ACTIONS and self.request.method in ("GET", "HEAD")
                and ("fields" in params or "brief" in params)):
            selection = self._parse_selection()
        self.__dict__["_field_selection"] = selection
        return selection

    def _parse_selection(self) -> Selection | None:
        brief = self.request.query_params.get("brief", "").strip().lower()
        if brief not in TRUE + FALSE:
            raise exceptions.ValidationError({"brief": ["Must be true or false."]})
        available = list(self._serializer_fields())
        asked = _listed(self.request, "fields")
        unknown = [name for name in dict.fromkeys(asked) if name not in available]
        if unknown:
            raise exceptions.ValidationError({"fields": [
                f"Unknown field: {name}. Allowed: {', '.join(available)}." for name in unknown]})
        wanted = set(asked)
        if brief in TRUE:
            wanted.add("id" if "id" in available else self.lookup_field)
            wanted.update(next(([label] for label in LABELS if label in available), []))
        elif not asked:
            return None  # `brief=false` alone, or an empty `fields=`: the whole record
        return Selection(names=tuple(name for name in available if name in wanted), url=brief in TRUE)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        selection = self.field_selection()
        lookups = getattr(queryset, "_prefetch_related_lookups", ())
        if selection is None or not lookups:
            return queryset
        # A prefetch serves the field of its name (or of its source), or those `field_prefetches` names it for.
        fields = self._serializer_fields()
        needed = set(selection.names)
        for name in selection.names:
            needed.add(fields[name].source.split(".", 1)[0])
            needed.update(self.field_prefetches.get(name, ()))
        kept = [lookup for lookup in lookups if _prefetch_root(lookup) in needed]
        return queryset.prefetch_related(None).prefetch_related(*kept)

    def _serializer_fields(self) -> Any:
        return cast(Any, self.get_serializer_class()(context=self.get_serializer_context())).fields

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)
        selection = self.field_selection()
        if selection is not None:
            target: Any = getattr(serializer, "child", serializer)
            for name in [name for name in target.fields if name not in selection.names]:
                del target.fields[name]
            if selection.url:
                target.fields["url"] = DetailUrlField()
        return serializer

    # --- Idempotency-Key, Location, If-None-Match ----------------------------------------------------------

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and idempotency.HEADER in request.headers and request.user.is_authenticated:
            key = idempotency.key_of(request)
            assert key is not None
            self._idempotency_guard = idempotency.begin(request, key)

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # An error DRF did not answer skips finalize_response: the key is let go all the same, unkept.
            guard = self.__dict__.pop("_idempotency_guard", None)
            if guard is not None:
                idempotency.release(guard)

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        status = response.status_code
        if status in (201, 202) and getattr(self, "action", None) == "create" and "Location" not in response:
            self._set_location(request, response)
        elif status == 200 and request.method in ("GET", "HEAD") and "ETag" in response \
                and "If-None-Match" in request.headers:
            response = self._not_modified(request, response)
        guard = self.__dict__.pop("_idempotency_guard", None)
        if guard is not None:
            guard.finish(response)
        return response

    def _set_location(self, request: Request, response: HttpResponseBase) -> None:
        data = getattr(response, "data", None)
        field = "id" if self.lookup_field == "pk" else self.lookup_field
        if isinstance(data, dict) and data.get(field) is not None:
            url = detail_url(self, request, data[field])
            if url is not None:
                response["Location"] = url

    @staticmethod
    def _not_modified(request: Request, response: HttpResponseBase) -> HttpResponseBase:
        tags = [tag.strip().removeprefix("W/").strip('"') for tag in request.headers["If-None-Match"].split(",")]
        if "*" not in tags and response["ETag"].strip('"') not in tags:
            return response
        # The same answer, headers and all (ETag, Vary), without its body.
        response.status_code = 304
        if isinstance(response, Response):
            response.data = None
        return response
