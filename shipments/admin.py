"""Shipments (with their route legs) and licences in the admin: the API's value formats, the rules of
`shipments.rules` in the forms' `clean()`, and every save through `shipments.services`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.db.models import F, Func

from core import policy
from core.admin import CleanedField, ReferencesForm, ReferencingAdmin, add_rule_errors, api_rule
from core.api.validation import CountryField, CurrencyField, HSCodeField
from core.rules import RuleViolation
from shipments import rules, services
from shipments.models import Licence, Shipment, ShipmentLeg

as_country = api_rule(CountryField(allow_blank=True))
as_currency = api_rule(CurrencyField(allow_blank=True))
as_hs_code = api_rule(HSCodeField(allow_blank=True))


def _apply_rules(form: forms.BaseForm, *checks: Callable[[], None]) -> None:
    for check in checks:
        try:
            check()
        except RuleViolation as exc:
            add_rule_errors(form, exc)


def _form_data(form: forms.ModelForm, model: type[models.Model]) -> dict[str, Any]:
    """The form's cleaned values of the record's own fields (the agency is the service's argument)."""
    fields = {f.name for f in model._meta.get_fields() if getattr(f, "concrete", False)} - {"agency", "id"}
    return {name: value for name, value in form.cleaned_data.items() if name in fields}


def _show_saved(form: forms.ModelForm, saved: models.Model) -> None:
    """The record the service wrote, as the admin's own object (its page, its history entry, its message)."""
    obj = form.instance
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding, obj._state.db = False, saved._state.db


class ServiceSavedAdmin(ReferencingAdmin):
    """Saves and archiving through the app's services, never the form's own save: the same rules, derived
    fields, version, audit event and outbox row as through the API. The forms check the same rules in
    `clean()`, so the service's check finds nothing new (but a race)."""

    def create(self, *, agency: Any, actor: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update(self, obj: Any, *, actor: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def archive(self, obj: Any, *, actor: Any) -> None:
        raise NotImplementedError

    def children(self, formsets: list[Any]) -> dict[str, Any]:
        """Rows of inlines the service writes with the record ({"legs": [...]})."""
        return {}

    def save_model(self, request, obj, form, change):
        pass  # written in save_related, once the inlines are known too

    def save_related(self, request, form, formsets, change):
        data = {**_form_data(form, self.model), **self.children(formsets)}
        for formset in formsets:  # saved by the service, not by themselves: no rows of theirs to name in the log
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        with transaction.atomic():
            if change:
                obj = self.model._default_manager.select_for_update().get(pk=form.instance.pk)
                saved = self.update(obj, actor=request.user, data=data)
            else:
                agency = form.cleaned_data.get("agency") or request.user.agency
                saved = self.create(agency=agency, actor=request.user, data=data)
        _show_saved(form, saved)

    @admin.action(description="Archive the selected records", permissions=["change"])
    def archive_selected(self, request, queryset):
        archived = 0
        for obj in policy.writable(request.user, queryset).filter(archived=False):
            self.archive(obj, actor=request.user)
            archived += 1
        self.message_user(request, f"Archived {archived} record(s).")


# --- shipments ---------------------------------------------------------------------------------


class LegForm(forms.ModelForm):
    from_country = CleanedField(cleaner=as_country, label="From")
    to_country = CleanedField(cleaner=as_country, label="To")

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        _apply_rules(self, lambda: rules.leg_check(departed_on=data.get("departed_on"),
                                                   arrived_on=data.get("arrived_on")))
        return data


class LegInline(admin.TabularInline):
    """The route, in order. Saved with the shipment and audited as part of it (`Shipment.snapshot_children`)."""

    model = ShipmentLeg
    form = LegForm
    extra = 0
    max_num = rules.MAX_LEGS
    validate_max = True
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

    def clean(self):
        data = super().clean()
        owner = self.owner_agency_id(data)
        adding = self.instance._state.adding
        _apply_rules(
            self,
            lambda: rules.shipment_check({name: data.get(name) for name in
                                          (*rules.SHIPMENT_QUANTITIES, "purity_pct")}),
            lambda: rules.shipment_source_id_check(
                agency_id=owner, source=data.get("source") or "", source_id=data.get("source_id") or "",
                exclude_id=None if adding else self.instance.pk),
        )
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
class ShipmentAdmin(ServiceSavedAdmin):
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

    def create(self, *, agency, actor, data):
        return services.shipment_create(agency=agency, actor=actor, data=data)

    def update(self, obj, *, actor, data):
        return services.shipment_update(shipment=obj, actor=actor, data=data)

    def archive(self, obj, *, actor):
        services.shipment_archive(shipment=obj, actor=actor)

    def children(self, formsets):
        legs = [formset for formset in formsets if formset.model is ShipmentLeg]
        return {"legs": _legs_of(legs[0])} if legs else {}


def _legs_of(formset: Any) -> list[dict[str, Any]]:
    """The legs of the inline, in the order of their numbers, without those marked for deletion."""
    rows = []
    for index, leg_form in enumerate(formset.forms):
        data = getattr(leg_form, "cleaned_data", None) or {}
        if not data or data.get("DELETE"):
            continue
        rows.append((data.get("seq") or 0, index, {name: data.get(name) for name in services.LEG_FIELDS
                                                  if name in data}))
    return [leg for _, _, leg in sorted(rows, key=lambda row: row[:2])]


# --- licences ----------------------------------------------------------------------------------


class LicenceForm(ReferencesForm):
    destination_country = CleanedField(cleaner=as_country, help_text="ISO 3166: AE")

    def clean(self):
        data = super().clean()
        adding = self.instance._state.adding
        _apply_rules(
            self,
            lambda: rules.licence_check({name: data.get(name) for name in
                                         (*rules.LICENCE_QUANTITIES, "valid_from", "valid_to")}),
            lambda: rules.licence_number_check(agency_id=self.owner_agency_id(data), number=data.get("number") or "",
                                               exclude_id=None if adding else self.instance.pk),
        )
        return data


@admin.register(Licence)
class LicenceAdmin(ServiceSavedAdmin):
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

    def create(self, *, agency, actor, data):
        return services.licence_create(agency=agency, actor=actor, data=data)

    def update(self, obj, *, actor, data):
        return services.licence_update(licence=obj, actor=actor, data=data)

    def archive(self, obj, *, actor):
        services.licence_archive(licence=obj, actor=actor)
