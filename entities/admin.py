"""Persons, organisations and links in the admin: the API's parsing, the records' rules and writes through
`entities.services` (as every door), and only the agency's own records named."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.db.models import F, Func, Q
from django.shortcuts import redirect
from django.urls import reverse

from core.admin import (
    CleanedField,
    ListField,
    RowColumn,
    RowsField,
    ServiceAdmin,
    ServiceForm,
    add_row_errors,
    api_rule,
)
from core.api.validation import CurrencyField
from entities import services, validators
from entities.models import Entity, EntityType, IdentifierScheme, Link, Organization, Person
from entities.normalize import fold

SCHEMES = (("", "—"), *IdentifierScheme.choices)


def _identifier(item: dict[str, Any]) -> dict[str, str]:
    return validators.normalize_identifier(str(item.get("scheme") or ""), str(item.get("number") or ""),
                                           str(item.get("country") or ""))


def _address(item: dict[str, Any]) -> dict[str, str]:
    text = validators.normalize_name(item.get("text"))
    if not text:
        raise validators.InvalidValue("an address needs its text.")
    if len(text) > 500:
        raise validators.InvalidValue("an address may be at most 500 characters.")
    return {"text": text, "country": validators.normalize_country(item.get("country"))}


# --- persons and organisations -----------------------------------------------------------------


class EntityForm(ServiceForm):
    """The parsing of `entities.validators`, which the API applies too; the rules of `entities.services`."""

    entity_type: ClassVar[str]

    names = RowsField(columns=[RowColumn("name", "Name variant", size=40)], item=validators.normalize_name,
                      label="Other names", help_text="Native script as written (罗建国); the primary name need not "
                                                     "repeat.")
    identifiers = RowsField(columns=[RowColumn("scheme", "Scheme", SCHEMES), RowColumn("number", "Number"),
                                     RowColumn("country", "Country", size=4)], item=_identifier,
                            help_text="Numbers are checked with python-stdnum where the scheme and country have a "
                                      "check. Country: ISO 3166 (CN).")
    addresses = RowsField(columns=[RowColumn("text", "Address", size=50), RowColumn("country", "Country", size=4)],
                          item=_address, help_text="Country: ISO 3166 (HK).")
    phones = RowsField(columns=[RowColumn("phone", "Phone")],
                       help_text="Stored in E.164 (+8613800138000); a number without + is read in the first "
                                 "nationality's (or the jurisdiction's) numbering plan.")
    emails = RowsField(columns=[RowColumn("email", "Email", size=30)], item=validators.normalize_email)
    topics = ListField(item=validators.normalize_topic, help_text="Comma-separated FollowTheMoney topics: sanction, "
                                                                  "crime, role.pep (set by watchlist imports).")

    def phone_region(self, data: dict[str, Any]) -> str:
        return ""

    def clean_name(self) -> str:
        name = validators.normalize_name(self.cleaned_data.get("name"))
        if not name:
            raise forms.ValidationError("A name cannot be blank.")
        return name

    def parse(self, data: dict[str, Any]) -> None:
        """Values that depend on others (names on the primary name, phones on the country), parsed in place."""
        if "names" in data:
            data["names"] = validators.normalize_names(data.get("name") or "", data["names"])
        if "phones" in data:
            try:
                data["phones"] = validators.normalize_phones(data["phones"], self.phone_region(data) or None)
            except validators.InvalidParts as exc:
                add_row_errors(self, "phones", exc.errors)

    def clean(self):
        self.parse(self.cleaned_data)
        return super().clean()

    def check_rules(self, data: dict[str, Any]) -> None:
        if self.errors:
            return  # the rules judge a parsed record, as in the API
        services.entity_check(agency_id=self.owner_agency_id(data), entity_type=self.entity_type,
                              data=self.service_data(), entity=self.stored())


class PersonForm(EntityForm):
    entity_type = EntityType.PERSON
    service_fields = services.ENTITY_FIELDS[EntityType.PERSON]
    gender = forms.ChoiceField(choices=[("", "—"), *((g, g) for g in validators.GENDERS)], required=False)
    nationalities = ListField(item=validators.normalize_country, help_text="ISO 3166 codes, comma-separated: CN, HK")

    def phone_region(self, data: dict[str, Any]) -> str:
        nationalities = data.get("nationalities") or []
        return nationalities[0] if nationalities else ""

    def clean_birth_date(self):
        try:
            return validators.check_birth_date(self.cleaned_data.get("birth_date"))
        except validators.InvalidValue as exc:
            raise forms.ValidationError(str(exc)) from exc


class OrganizationForm(EntityForm):
    entity_type = EntityType.ORGANIZATION
    service_fields = services.ENTITY_FIELDS[EntityType.ORGANIZATION]
    jurisdiction = CleanedField(cleaner=validators.normalize_country, help_text="ISO 3166 code: HK")
    website = CleanedField(cleaner=validators.normalize_website)

    def phone_region(self, data: dict[str, Any]) -> str:
        return data.get("jurisdiction") or ""

    def parse(self, data: dict[str, Any]) -> None:
        super().parse(data)
        number = data.get("registration_number") or ""
        if number:
            try:
                data["registration_number"] = validators.normalize_registration_number(
                    number, data.get("jurisdiction") or "")
            except validators.InvalidValue as exc:
                self.add_error("registration_number", str(exc))


class NationalityFilter(admin.SimpleListFilter):
    title = "nationality"
    parameter_name = "nationality"

    def lookups(self, request, model_admin):
        codes = (model_admin.get_queryset(request).order_by()
                 .annotate(code=Func(F("nationalities"), function="unnest"))
                 .values_list("code", flat=True).distinct())
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request, queryset):
        return queryset.filter(nationalities__contains=[self.value()]) if self.value() else queryset


class FoldedNameSearch(admin.ModelAdmin):
    """Search also by the folded name (`zhang  wei`, `ZHANG Wei`, 张伟 find Zhang Wei; a company without its
    legal form), an identifier or registration number, and a phone. Placed below the policy in the MRO, so the
    access rules apply to everything it finds."""

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return found, may_have_duplicates
        also = Q()
        if folded := fold(term):
            also |= Q(search_text__contains=folded)
        if number := validators.identifier_key(term):
            also |= Q(identifier_numbers__contains=[number])
        if "@" in term:
            also |= Q(emails__contains=[term.lower()])
        else:
            with contextlib.suppress(validators.InvalidValue):
                also |= Q(phones__contains=[validators.phone_query(term)])
        return found | queryset.filter(also), may_have_duplicates


class EntityAdminBase(ServiceAdmin, FoldedNameSearch):
    search_fields: ClassVar[tuple[str, ...]] = ("name", "registration_number")
    list_filter: ClassVar[tuple[Any, ...]] = ("archived",)
    list_select_related = ("agency",)
    list_per_page = 50
    readonly_fields = ("id", "agency", "version", "created_at", "updated_at", "lists")
    create_action = "entity.change"
    RECORD: ClassVar[Any] = ("Record", {"fields": ("archived", "agency", "id", "version", "created_at",
                                                   "updated_at"), "classes": ("collapse",)})
    CONTACTS: ClassVar[Any] = ("Identifiers and contact points",
                               {"fields": ("identifiers", "addresses", "phones", "emails")})
    PROVENANCE: ClassVar[Any] = ("Notes and provenance", {"fields": ("notes", "source", "source_id")})
    WATCHLISTS: ClassVar[Any] = ("Watchlists", {"fields": ("topics", "lists")})

    def update_record(self, request, stored: Entity, data: dict[str, Any]) -> Entity:
        return services.entity_update(entity=stored, actor=request.user, data=data)

    def archive_record(self, request, obj: Entity) -> None:
        services.entity_archive(entity=obj, actor=request.user)

    @admin.display(description="other names")
    def other_names(self, obj: Entity) -> str:
        return ", ".join(obj.names[:3]) + (" …" if len(obj.names) > 3 else "")


@admin.register(Entity)
class EntityAdmin(EntityAdminBase):
    """Backs the autocomplete of every entity reference; persons and organisations have their own pages."""

    list_display = ("name", "type", "agency")

    def has_module_permission(self, request) -> bool:
        return False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """An entity is edited on its person's or organisation's page, with that type's fields and rules."""
        entity = self.get_object(request, object_id)
        if entity is None:
            return super().change_view(request, object_id, form_url, extra_context)  # Django's "not found"
        return redirect(reverse(f"admin:entities_{entity.type}_change", args=[entity.pk]))


@admin.register(Person)
class PersonAdmin(EntityAdminBase):
    form = PersonForm
    list_display = ("name", "other_names", "gender", "birth_date", "nationality_list", "agency", "archived")
    list_filter = ("gender", NationalityFilter, "birth_date", "source", "archived")
    date_hierarchy = "birth_date"
    fieldsets = (
        (None, {"fields": ("name", "names", "gender", "birth_date", "birth_place", "nationalities")}),
        EntityAdminBase.CONTACTS,
        EntityAdminBase.PROVENANCE,
        EntityAdminBase.WATCHLISTS,
        EntityAdminBase.RECORD,
    )

    def create_record(self, request, agency: Any, data: dict[str, Any]) -> Person:
        return services.person_create(agency=agency, actor=request.user, data=data)

    @admin.display(description="nationalities")
    def nationality_list(self, obj: Entity) -> str:
        return ", ".join(obj.nationalities)


@admin.register(Organization)
class OrganizationAdmin(EntityAdminBase):
    form = OrganizationForm
    list_display = ("name", "other_names", "kind", "jurisdiction", "registration_number", "incorporated_on",
                    "agency", "archived")
    list_filter = ("kind", "jurisdiction", "incorporated_on", "source", "archived")
    fieldsets = (
        (None, {"fields": ("name", "names", "kind", "jurisdiction", "registration_number", "incorporated_on",
                           "dissolved_on", "website")}),
        EntityAdminBase.CONTACTS,
        EntityAdminBase.PROVENANCE,
        EntityAdminBase.WATCHLISTS,
        EntityAdminBase.RECORD,
    )

    def create_record(self, request, agency: Any, data: dict[str, Any]) -> Organization:
        return services.organization_create(agency=agency, actor=request.user, data=data)


# --- links -------------------------------------------------------------------------------------


class LinkForm(ServiceForm):
    service_fields = services.LINK_FIELDS
    currency = CleanedField(cleaner=api_rule(CurrencyField(allow_blank=True)), help_text="ISO 4217: USD")
    # The API's bounds (core.api.validation.percent_field, amount_field): the model's columns have none.
    share_pct = forms.DecimalField(required=False, min_value=0, max_value=100, max_digits=6, decimal_places=3)
    amount = forms.DecimalField(required=False, min_value=0, max_digits=18, decimal_places=2)

    def clean_subtype(self) -> str:
        return "_".join((self.cleaned_data.get("subtype") or "").strip().lower().split())

    def check_rules(self, data: dict[str, Any]) -> None:
        if self.errors:
            return  # the rules judge a parsed record, as in the API
        services.link_check(agency_id=self.owner_agency_id(data), data=self.service_data(), link=self.stored())


@admin.register(Link)
class LinkAdmin(ServiceAdmin):
    form = LinkForm
    list_display = ("source", "kind", "subtype", "target", "share_pct", "amount", "currency", "confidence",
                    "start_date", "end_date", "case", "archived")
    list_filter = ("kind", "subtype", "confidence", "archived")
    search_fields = ("source__name", "target__name", "subtype", "description")
    list_select_related = ("source", "target", "case", "agency")
    autocomplete_fields = ("source", "target", "case")
    readonly_fields = ("id", "agency", "version", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("source", "kind", "subtype", "target", "confidence", "start_date", "end_date")}),
        ("Ownership and financing", {"fields": ("share_pct", "amount", "currency")}),
        ("Provenance", {"fields": ("description", "case", "provenance_source", "provenance_id")}),
        ("Record", {"fields": ("archived", "agency", "id", "version", "created_at", "updated_at"),
                    "classes": ("collapse",)}),
    )
    create_action = "link.change"

    def create_record(self, request, agency: Any, data: dict[str, Any]) -> Link:
        return services.link_create(agency=agency, actor=request.user, data=data)

    def update_record(self, request, stored: Link, data: dict[str, Any]) -> Link:
        return services.link_update(link=stored, actor=request.user, data=data)

    def archive_record(self, request, obj: Link) -> None:
        services.link_archive(link=obj, actor=request.user)
