"""Persons, organisations and links of the master index (API.md § Persons, § Organizations, § Links).

These serializers parse and present; the rules of a write are `entities.rules`, applied by `entities.services`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef
from django.db.models.functions import JSONObject
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from cases.models import CaseParty
from core import policy
from core.api.fields import EntityRefField, owner_agency_id
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, PlainRepresentation
from core.api.validation import CountryField, CurrencyField, amount_field, percent_field
from core.compiled import Correlated, kept_subquery
from entities import validators
from entities.models import (
    Confidence,
    Entity,
    IdentifierScheme,
    Link,
    Organization,
    OrganizationKind,
    Person,
)

LIST_MAX = 100


# --- the cases an entity takes part in, as far as the caller sees them ------------------------


def case_refs(user: Any) -> Correlated:
    """An entity's parts in the caller's visible, live cases, as a column of the entity's own query:
    [{"id", "reference", "role"}, ...] ordered by reference and role (`cases` in the API)."""
    def build() -> ArraySubquery:
        parties = (CaseParty.objects
                   .filter(entity_id=OuterRef("pk"), archived=False,
                           case__in=policy.cases_visible(user).filter(archived=False))
                   .order_by("case__reference", "role")
                   .values(ref=JSONObject(id="case_id", reference="case__reference", role="role")))
        return ArraySubquery(parties)

    return kept_subquery(("entity case refs", policy.caller_key(user)), Entity, build)


def in_cluster() -> Correlated:
    """Whether an entity is in an identity cluster at all, as a column of its own query: most are not, and
    `attach_same_as` need not look up the clusters of a page none of whose entities is in one."""
    from xref.models import IdentityMember

    return kept_subquery(("entity in cluster",), Entity,
                         lambda: Exists(IdentityMember.objects.filter(entity_id=OuterRef("pk"))))


def attach_same_as(entities: list[Entity], user: Any) -> None:
    """Set `same_as_refs` on each entity: the refs of the others in its identity cluster (confirmed matches,
    transitively) that the caller sees, that are live and of the entity's own agency, with their names. As with
    matches (`core.policy.matches_visible`), a record of another agency never shows as the same as one's own, even
    where the caller sees it through a shared case: that reaches each side only as a deconfliction hit. One query
    for a whole page, however many of its records are in clusters."""
    from django.db.models import Exists, OuterRef, Value

    from xref.models import IdentityMember

    for entity in entities:
        entity.same_as_refs = []  # type: ignore[attr-defined]
    # An entity read with the `in_cluster` column and outside any cluster is the same as no other.
    entities = [entity for entity in entities if getattr(entity, "in_cluster", True)]
    if not entities:
        return
    page = [entity.pk for entity in entities]
    every_agency = bool(getattr(user, "is_superuser", False))
    # Only the members of the page's entities' own agencies are kept below: when those are all the caller's, and the
    # caller sees every record of their agency, each live member is seen, and the policy's scope need not be asked.
    own = all(entity.agency_id == getattr(user, "agency_id", None) for entity in entities)
    scoped = not every_agency and not (own and policy.sees_own_agency(user, Entity))
    shown = policy.visible(user, Entity).filter(pk=OuterRef("entity_id"), archived=False) if scoped else None
    # Every member of the page's clusters, each marked whether the caller sees it live: one query.
    members = (IdentityMember.objects
               .filter(cluster__in=IdentityMember.objects.filter(entity_id__in=page).values("cluster"))
               .annotate(seen=Exists(shown) if shown is not None else Value(True))
               .values_list("entity_id", "cluster", "entity__type", "entity__name", "entity__agency_id", "seen",
                            "entity__archived"))
    cluster_of: dict[Any, Any] = {}
    by_cluster: dict[Any, list[tuple[Any, ...]]] = {}
    for pk, cluster, kind, name, agency_id, seen, archived in members:
        cluster_of[pk] = cluster
        if seen and not archived:
            by_cluster.setdefault(cluster, []).append((pk, kind, name, agency_id))
    for entity in entities:
        refs = [{"type": kind, "id": str(pk), "name": name}
                for pk, kind, name, agency_id in by_cluster.get(cluster_of.get(entity.pk), [])
                if pk != entity.pk and (every_agency or agency_id == entity.agency_id)]
        entity.same_as_refs = sorted(refs, key=lambda ref: (ref["name"], ref["id"]))  # type: ignore[attr-defined]


class EntityListSerializer(serializers.ListSerializer):
    """A page of persons or organisations: their `same_as` looked up for the whole page at once."""

    def to_representation(self, data: Any) -> list[Any]:
        items = list(data.all() if hasattr(data, "all") else data)
        if "same_as" in cast(Any, self.child).fields:  # not when `?fields=` leaves it out
            attach_same_as(items, self.context["request"].user)
        return super().to_representation(items)


CASE_ROLE = inline_serializer("EntityCase", {
    "id": serializers.UUIDField(), "reference": serializers.CharField(), "role": serializers.CharField(),
})


# --- entities ---------------------------------------------------------------------------------


class IdentifierSerializer(PlainRepresentation):
    scheme = serializers.ChoiceField(choices=IdentifierScheme.choices)
    number = serializers.CharField(max_length=100)
    country = CountryField(required=False, allow_blank=True, allow_null=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            return validators.normalize_identifier(attrs["scheme"], attrs["number"], attrs.get("country") or "")
        except validators.InvalidParts as exc:
            raise serializers.ValidationError(exc.errors) from exc


class AddressSerializer(PlainRepresentation):
    text = serializers.CharField(max_length=500)
    country = CountryField(required=False, allow_blank=True, allow_null=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {"text": " ".join(attrs["text"].split()), "country": attrs.get("country") or ""}


def _strings(max_length: int, allow_blank: bool = False, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=max_length, allow_blank=allow_blank),
                                 max_length=LIST_MAX, required=False, **kwargs)


class EntitySerializer(AgencyOwnedSerializer):
    """What persons and organisations share: names, contact points, provenance and the cases they are in."""

    name = serializers.CharField(max_length=300)
    names = _strings(300, allow_blank=True,
                     help_text="Every known variant, native script included; the primary name need not repeat")
    identifiers = serializers.ListField(child=IdentifierSerializer(), max_length=LIST_MAX, required=False)
    addresses = serializers.ListField(child=AddressSerializer(), max_length=LIST_MAX, required=False)
    phones = _strings(64, help_text="Stored in E.164; a number without + is read in the first nationality's "
                                    "(or the jurisdiction's) numbering plan")
    emails = _strings(254)
    same_as = serializers.SerializerMethodField(help_text="Refs of the records confirmed as the same real-world "
                                                          "entity (identity clusters of confirmed matches), "
                                                          "as far as you see them")
    cases = serializers.SerializerMethodField(help_text="Cases the caller sees that this entity takes part in")
    topics = _strings(validators.TOPIC_MAX, help_text="FollowTheMoney topics such as sanction, crime, role.pep; set "
                                                      "by watchlist imports")
    lists = serializers.ListField(child=serializers.CharField(), read_only=True,
                                  help_text="The watchlists (their source) that list this record now")

    def validate_name(self, value: str) -> str:
        name = validators.normalize_name(value)
        if not name:
            raise serializers.ValidationError("A name cannot be blank.")
        return name

    def validate_topics(self, value: list[str]) -> list[str]:
        try:
            return validators.normalize_topics(value)
        except validators.InvalidParts as exc:
            raise serializers.ValidationError(exc.errors) from exc

    def validate_emails(self, value: list[str]) -> list[str]:
        try:
            return validators.normalize_emails(value)
        except validators.InvalidParts as exc:
            raise serializers.ValidationError(exc.errors) from exc

    def validate_phones(self, value: list[str]) -> list[str]:
        try:
            return validators.normalize_phones(value, self.phone_region() or None)
        except validators.InvalidParts as exc:
            raise serializers.ValidationError(exc.errors) from exc

    def phone_region(self) -> str:
        """The numbering plan a phone without + is read in: the first nationality's or the jurisdiction's."""
        return ""

    def incoming_country(self, field: str) -> str:
        """A country field's value after this write, read from the raw input so that fields that depend on it
        are checked in the same pass as every other field; '' when it is not a country."""
        data = self.initial_data if isinstance(getattr(self, "initial_data", None), dict) else {}
        value = data[field] if field in data else getattr(self.instance, field, "")
        if isinstance(value, list):
            value = value[0] if value else ""
        try:
            return validators.normalize_country(value) if isinstance(value, str) else ""
        except validators.InvalidValue:
            return ""

    def current(self, attrs: dict[str, Any], field: str) -> Any:
        """The value a field will have after this write: the input's, else the stored one."""
        if field in attrs:
            return attrs[field]
        return getattr(self.instance, field) if self.instance is not None else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "names" in attrs or "name" in attrs:
            attrs["names"] = validators.normalize_names(self.current(attrs, "name") or "",
                                                        self.current(attrs, "names") or [])
        errors = self.validate_type_fields(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def validate_type_fields(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Parsing errors of the fields only persons or only organisations have; may clean `attrs` in place."""
        return {}

    @extend_schema_field(serializers.ListField(child=EntityRefField()))
    def get_same_as(self, obj: Entity) -> list[dict[str, str]]:
        if not hasattr(obj, "same_as_refs"):  # a detail; a list's page looks them up at once
            attach_same_as([obj], self.context["request"].user)
        return obj.same_as_refs  # type: ignore[attr-defined]

    @extend_schema_field(serializers.ListField(child=CASE_ROLE))
    def get_cases(self, obj: Entity) -> list[dict[str, Any]]:
        if not hasattr(obj, "case_refs"):  # a record not read by the viewset's query (a write's answer)
            refs = type(obj)._base_manager.filter(pk=obj.pk).annotate(refs=case_refs(self.context["request"].user))
            obj.case_refs = refs.values_list("refs", flat=True).get()  # type: ignore[attr-defined]
        return obj.case_refs  # type: ignore[attr-defined]


class PersonSerializer(EntitySerializer):
    gender = serializers.CharField(max_length=16, required=False, allow_blank=True,
                                   help_text="male, female, other or unknown (M and F accepted)")
    nationalities = serializers.ListField(child=CountryField(), max_length=20, required=False)

    class Meta:
        model = Person
        list_serializer_class = EntityListSerializer
        fields = [*BASE_READ_ONLY, "agency", "name", "names", "gender", "birth_date", "birth_place",
                  "nationalities", "identifiers", "addresses", "phones", "emails", "notes", "source", "source_id",
                  "same_as", "topics", "lists", "cases"]
        read_only_fields = BASE_READ_ONLY

    def validate_gender(self, value: str) -> str:
        return _clean_field(validators.normalize_gender, value)

    def validate_birth_date(self, value: Any) -> Any:
        return _clean_field(validators.check_birth_date, value)

    def validate_nationalities(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def phone_region(self) -> str:
        return self.incoming_country("nationalities")


class OrganizationSerializer(EntitySerializer):
    kind = serializers.ChoiceField(choices=OrganizationKind.choices, default=OrganizationKind.COMPANY)
    jurisdiction = CountryField(required=False, allow_blank=True)
    registration_number = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                                help_text="Checked where python-stdnum knows the jurisdiction's "
                                                          "register (CN: unified social credit code)")
    website = serializers.CharField(max_length=300, required=False, allow_blank=True)

    class Meta:
        model = Organization
        list_serializer_class = EntityListSerializer
        fields = [*BASE_READ_ONLY, "agency", "name", "names", "kind", "jurisdiction", "registration_number",
                  "incorporated_on", "dissolved_on", "identifiers", "addresses", "phones", "emails", "website",
                  "notes", "source", "source_id", "same_as", "topics", "lists", "cases"]
        read_only_fields = BASE_READ_ONLY

    def validate_website(self, value: str) -> str:
        return _clean_field(validators.normalize_website, value)

    def phone_region(self) -> str:
        return self.incoming_country("jurisdiction")

    def validate_registration_number(self, value: str) -> str:
        return _clean_field(lambda number: validators.normalize_registration_number(
            number, self.incoming_country("jurisdiction")), value)

    def validate_type_fields(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        jurisdiction = self.current(attrs, "jurisdiction") or ""
        number = self.current(attrs, "registration_number") or ""
        jurisdiction_changed = "jurisdiction" in attrs and jurisdiction != getattr(self.instance, "jurisdiction", "")
        if number and "registration_number" not in attrs and jurisdiction_changed:
            # The stored number must hold in its new jurisdiction too.
            try:
                attrs["registration_number"] = validators.normalize_registration_number(number, jurisdiction)
            except validators.InvalidValue as exc:
                errors["registration_number"] = [str(exc)]
        return errors


def _clean_field(clean: Callable[[Any], Any], value: Any) -> Any:
    try:
        return clean(value)
    except validators.InvalidValue as exc:
        raise serializers.ValidationError(str(exc)) from exc


# --- links ------------------------------------------------------------------------------------


class LinkCaseField(serializers.PrimaryKeyRelatedField):
    """A case of the link's agency that the caller sees; any other id is a 400 on `case`."""

    default_error_messages = {"does_not_exist": 'No case with id "{pk_value}" is available here.'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self) -> Any:
        user = self.context["request"].user
        return policy.cases_visible(user).filter(agency_id=owner_agency_id(self))


class LinkSerializer(AgencyOwnedSerializer):
    # The metaclass takes declared fields off the class, so `source` does not shadow Field.source at run time.
    source = EntityRefField()  # type: ignore[assignment]
    target = EntityRefField()
    share_pct = percent_field()
    amount = amount_field()
    currency = CurrencyField(required=False, allow_blank=True)
    subtype = serializers.CharField(max_length=32, required=False, allow_blank=True,
                                    help_text="e.g. sibling, spouse, parent, child, cousin, in_law, director, "
                                              "nominee_director, shareholder")
    confidence = serializers.ChoiceField(choices=Confidence.choices, default=Confidence.PROBABLE)
    case = LinkCaseField(required=False, allow_null=True, help_text="The case this link was found in (provenance)")

    class Meta:
        model = Link
        fields = [*BASE_READ_ONLY, "agency", "kind", "subtype", "source", "target", "share_pct", "amount",
                  "currency", "start_date", "end_date", "description", "confidence", "case"]
        read_only_fields = BASE_READ_ONLY

    def validate_subtype(self, value: str) -> str:
        return "_".join(value.strip().lower().split())
