"""Shipments (with their route legs) and licences in the admin, under the API's value rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import F, Func

from core import policy
from core.admin import CleanedField, ReferencesForm, ReferencingAdmin, api_rule
from core.api.validation import CountryField, CurrencyField, HSCodeField
from shipments.models import Licence, Shipment, ShipmentLeg

as_country = api_rule(CountryField(allow_blank=True))
as_currency = api_rule(CurrencyField(allow_blank=True))
as_hs_code = api_rule(HSCodeField(allow_blank=True))
RENUMBER_OFFSET = 10_000  # above any real number of legs, below PositiveSmallIntegerField's limit


def _at_least_zero(form: forms.BaseForm, data: dict[str, Any], *names: str) -> None:
    for name in names:
        value = data.get(name)
        if value is not None and value < 0:
            form.add_error(name, "Cannot be negative.")


# --- shipments ---------------------------------------------------------------------------------


class LegForm(forms.ModelForm):
    from_country = CleanedField(cleaner=as_country, label="From")
    to_country = CleanedField(cleaner=as_country, label="To")

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        departed, arrived = data.get("departed_on"), data.get("arrived_on")
        if departed and arrived and arrived < departed:
            self.add_error("arrived_on", "A leg cannot arrive before it departs.")
        return data


class LegInline(admin.TabularInline):
    """The route, in order. Saved with the shipment and audited as part of it (`Shipment.snapshot_children`)."""

    model = ShipmentLeg
    form = LegForm
    extra = 0
    fields = ("seq", "from_country", "from_port", "to_country", "to_port", "mode", "carrier", "vessel", "container",
              "departed_on", "arrived_on")

    # The shipment's permissions are the legs' permissions.
    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return obj is None or policy.writable(request.user, Shipment).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


class ShipmentForm(ReferencesForm):
    hs_code = CleanedField(cleaner=as_hs_code, max_length=14, label="HS code",
                           help_text="What was actually carried: 2 to 10 digits (8110.10 is read as 811010)")
    declared_hs_code = CleanedField(cleaner=as_hs_code, max_length=14, label="Declared HS code")
    currency = CleanedField(cleaner=as_currency, help_text="ISO 4217: USD")
    origin_country = CleanedField(cleaner=as_country, help_text="ISO 3166: CN")
    destination_country = CleanedField(cleaner=as_country)

    def clean_cases(self):
        # Links to cases the editor cannot see stay: they were never shown, so their removal cannot be meant.
        chosen = list(self.cleaned_data.get("cases") or [])
        if self.instance.pk and not self.instance._state.adding and self.request is not None:
            hidden = self.instance.cases.exclude(pk__in=policy.cases_visible(self.request.user).values("pk"))
            chosen += [case for case in hidden if case not in chosen]
        return chosen

    def clean(self):
        data = super().clean()
        _at_least_zero(self, data, "quantity_kg", "declared_value", "seized_quantity_kg")
        purity = data.get("purity_pct")
        if purity is not None and not 0 <= purity <= 100:
            self.add_error("purity_pct", "A purity is between 0 and 100 %.")
        seized, quantity = data.get("seized_quantity_kg"), data.get("quantity_kg")
        if seized is not None and quantity is not None and seized > quantity:
            self.add_error("seized_quantity_kg", "More was seized than the shipment carried (quantity kg).")
        source_id, owner = data.get("source_id") or "", self.owner_agency_id(data)
        if source_id and owner is not None:
            others = Shipment.objects.filter(agency_id=owner, source=data.get("source") or "", source_id=source_id)
            if others.exclude(pk=self.instance.pk).exists():
                self.add_error("source_id", "Another shipment of this agency has this source and source_id.")
        return data


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
class ShipmentAdmin(ReferencingAdmin):
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

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is ShipmentLeg:
            shipment = form.instance
            legs = list(ShipmentLeg.objects.filter(shipment=shipment).order_by("seq", "pk"))
            if [leg.seq for leg in legs] != list(range(1, len(legs) + 1)):
                # Numbered 1..n as the API numbers them; in two passes, so no step collides with another leg.
                for offset in (RENUMBER_OFFSET, 0):
                    for seq, leg in enumerate(legs, start=1):
                        ShipmentLeg.objects.filter(pk=leg.pk).update(seq=offset + seq)
                        leg.seq = seq
            shipment.derive_from_legs(legs)
            # Not save(): this is the same edit, so the version does not move again; the audit event
            # (written after the formsets) carries the derived values with the legs.
            Shipment.objects.filter(pk=shipment.pk).update(transit_countries=shipment.transit_countries,
                                                           departed_on=shipment.departed_on)


# --- licences ----------------------------------------------------------------------------------


class LicenceForm(ReferencesForm):
    destination_country = CleanedField(cleaner=as_country, help_text="ISO 3166: AE")

    def clean(self):
        data = super().clean()
        _at_least_zero(self, data, "max_quantity_kg")
        valid_from, valid_to = data.get("valid_from"), data.get("valid_to")
        if valid_from and valid_to and valid_to < valid_from:
            self.add_error("valid_to", "A licence cannot expire before it starts (valid from).")
        number, owner = data.get("number"), self.owner_agency_id(data)
        taken = Licence.objects.filter(agency_id=owner, number=number).exclude(pk=self.instance.pk)
        if number and owner is not None and taken.exists():
            self.add_error("number", f"This agency already has a licence numbered {number!r}.")
        return data


@admin.register(Licence)
class LicenceAdmin(ReferencingAdmin):
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
