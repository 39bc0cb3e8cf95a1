"""Shipments (with their route legs) and licences in the admin: the API's value formats, the rules of
`shipments.rules` in the forms' `clean()`, and every save through `shipments.services`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import F, Func

from core.admin import CleanedField, RecordRowsInline, ServiceAdmin, ServiceForm, api_rule, inline_rows
from core.api.validation import CountryField, CurrencyField, HSCodeField
from core.rules import check_all
from shipments import rules, services
from shipments.models import Licence, Shipment, ShipmentLeg

as_country = api_rule(CountryField(allow_blank=True))
as_currency = api_rule(CurrencyField(allow_blank=True))
as_hs_code = api_rule(HSCodeField(allow_blank=True))


# --- shipments ---------------------------------------------------------------------------------


class LegForm(ServiceForm):
    service_fields = frozenset(services.LEG_FIELDS)
    from_country = CleanedField(cleaner=as_country, label="From")
    to_country = CleanedField(cleaner=as_country, label="To")

    def check_rules(self, data: dict[str, Any]) -> None:
        rules.leg_check(departed_on=data.get("departed_on"), arrived_on=data.get("arrived_on"))


class LegInline(RecordRowsInline):
    """The route, numbered 1..n on saving (no number to type): by departure date when every leg has one, else as
    listed. Saved with the shipment and audited as part of it (`Shipment.snapshot_children`)."""

    model = ShipmentLeg
    form = LegForm
    max_num = rules.MAX_LEGS
    validate_max = True
    verbose_name_plural = "route legs (by departure date when every leg has one, else as listed)"
    fields = ("from_country", "from_port", "to_country", "to_port", "mode", "carrier", "vessel", "container",
              "departed_on", "arrived_on")


class ShipmentForm(ServiceForm):
    hs_code = CleanedField(cleaner=as_hs_code, max_length=14, label="HS code",
                           help_text="What was actually carried: 2 to 10 digits (8110.10 is read as 811010)")
    declared_hs_code = CleanedField(cleaner=as_hs_code, max_length=14, label="Declared HS code")
    currency = CleanedField(cleaner=as_currency, help_text="ISO 4217: USD")
    origin_country = CleanedField(cleaner=as_country, help_text="ISO 3166: CN")
    destination_country = CleanedField(cleaner=as_country)

    def check_rules(self, data: dict[str, Any]) -> None:
        stored = self.stored()
        check_all(
            lambda: rules.shipment_check({name: data.get(name) for name in
                                          (*rules.SHIPMENT_QUANTITIES, "purity_pct")}),
            lambda: rules.shipment_source_id_check(
                agency_id=self.owner_agency_id(data), source=data.get("source") or "",
                source_id=data.get("source_id") or "", exclude_id=stored and stored.pk),
        )


class TransitCountryFilter(admin.SimpleListFilter):
    title = "transit country"
    parameter_name = "transit"

    def lookups(self, request, model_admin):
        codes = (model_admin.get_queryset(request).order_by()
                 .annotate(code=Func(F("transit_countries"), function="unnest"))
                 .values_list("code", flat=True).distinct())
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request, queryset):
        return queryset.filter(transit_countries__contains=[self.value()]) if self.value() else queryset


class LicenceFilter(admin.SimpleListFilter):
    title = "licence"
    parameter_name = "licensed"

    def lookups(self, request, model_admin):
        return [("yes", "With a licence"), ("no", "Without a licence")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(licence__isnull=self.value() == "no")
        return queryset


class MisdeclaredFilter(admin.SimpleListFilter):
    title = "declaration"
    parameter_name = "misdeclared"

    def lookups(self, request, model_admin):
        return [("yes", "Declared HS code differs")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(declared_hs_code="").exclude(hs_code="").exclude(hs_code=F("declared_hs_code"))
        return queryset


@admin.register(Shipment)
class ShipmentAdmin(ServiceAdmin):
    form = ShipmentForm
    inlines = (LegInline,)
    list_display = ("reference", "commodity", "hs_code", "declared_hs_code", "quantity_kg", "origin_country",
                    "route", "destination_country", "departed_on", "status", "consignor", "consignee", "licence",
                    "agency")
    list_filter = ("status", "commodity", "origin_country", "destination_country", TransitCountryFilter,
                   LicenceFilter, MisdeclaredFilter, "departed_on", "source", "archived")
    search_fields = ("reference", "declared_description", "hs_code", "declared_hs_code", "consignor__name",
                     "consignee__name", "source_id")
    list_select_related = ("commodity", "consignor", "consignee", "licence", "agency")
    date_hierarchy = "departed_on"
    autocomplete_fields = ("commodity", "consignor", "consignee", "notify_party", "ordering_party", "licence",
                           "cases")
    readonly_fields = ("id", "agency", "transit_countries", "departed_on", "version", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("reference", "status", "commodity", "hs_code", "declared_hs_code",
                           "declared_description", "quantity_kg", "purity_pct", "declared_value", "currency")}),
        ("Route", {"fields": ("origin_country", "destination_country", "transit_countries", "departed_on"),
                   "description": "Transit countries and the departure date are derived from the legs below."}),
        ("Parties and licence", {"fields": ("consignor", "consignee", "notify_party", "ordering_party", "licence")}),
        ("Seizure", {"fields": ("seized_on", "seized_quantity_kg", "seizure_location")}),
        ("Cases and provenance", {"fields": ("cases", "source", "source_id")}),
        ("Record", {"fields": ("archived", "agency", "id", "version", "created_at", "updated_at"),
                    "classes": ("collapse",)}),
    )
    create_action = "entity.change"

    @admin.display(description="transit")
    def route(self, obj: Shipment) -> str:
        return " → ".join(obj.transit_countries)

    def create_record(self, request, agency, data):
        return services.shipment_create(agency=agency, actor=request.user, data=data)

    def update_record(self, request, stored, data):
        return services.shipment_update(shipment=stored, actor=request.user, data=data)

    def archive_record(self, request, obj):
        return services.shipment_archive(shipment=obj, actor=request.user)

    def children(self, formsets):
        legs = inline_rows(formsets, ShipmentLeg)
        if legs is None:
            return {}
        if all(leg.get("departed_on") for leg in legs):  # a leg entered late still takes its place on the route
            legs = sorted(legs, key=lambda leg: leg["departed_on"])  # stable: legs of one day stay as listed
        return {"legs": legs}


# --- licences ----------------------------------------------------------------------------------


class LicenceForm(ServiceForm):
    destination_country = CleanedField(cleaner=as_country, help_text="ISO 3166: AE")

    def check_rules(self, data: dict[str, Any]) -> None:
        stored = self.stored()
        check_all(
            lambda: rules.licence_check({name: data.get(name) for name in
                                         (*rules.LICENCE_QUANTITIES, "valid_from", "valid_to")}),
            lambda: rules.licence_number_check(agency_id=self.owner_agency_id(data), number=data.get("number") or "",
                                               exclude_id=stored and stored.pk),
        )


@admin.register(Licence)
class LicenceAdmin(ServiceAdmin):
    form = LicenceForm
    list_display = ("number", "holder", "commodity", "max_quantity_kg", "destination_country", "end_user",
                    "valid_from", "valid_to", "status", "agency")
    list_filter = ("status", "commodity", "destination_country", "valid_to", "archived")
    search_fields = ("number", "holder__name", "end_user__name")
    list_select_related = ("holder", "commodity", "end_user", "agency")
    autocomplete_fields = ("holder", "commodity", "end_user")
    readonly_fields = ("id", "agency", "version", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("number", "status", "holder", "commodity", "max_quantity_kg", "destination_country",
                           "end_user", "valid_from", "valid_to")}),
        ("Record", {"fields": ("archived", "agency", "id", "version", "created_at", "updated_at"),
                    "classes": ("collapse",)}),
    )
    create_action = "entity.change"

    def create_record(self, request, agency, data):
        return services.licence_create(agency=agency, actor=request.user, data=data)

    def update_record(self, request, stored, data):
        return services.licence_update(licence=stored, actor=request.user, data=data)

    def archive_record(self, request, obj):
        return services.licence_archive(licence=obj, actor=request.user)
