from typing import Any, ClassVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import Http404, HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Unit, User, request_user
from cases import rules, services
from cases.api.evidence import evidence_file_response
from cases.models import (
    Case,
    CaseParty,
    CaseShare,
    Charge,
    Commodity,
    CustodyEntry,
    Evidence,
    Note,
    Prosecution,
)
from core import policy
from core.admin import (
    AuditedModelAdmin,
    CleanedField,
    ReferencesForm,
    ReferencingAdmin,
    ReferencingInlineMixin,
    add_rule_errors,
    api_rule,
)
from core.api.validation import CurrencyField
from core.rules import RuleViolation, StateConflict


def _adopt(obj: models.Model, stored: models.Model) -> None:
    """The admin's form instance becomes the record a service stored (the admin redirects and logs with it)."""
    for field in type(stored)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(stored, field.attname))
    obj._state.adding, obj._state.db = False, stored._state.db


def _locked(obj: models.Model) -> Any:
    """The stored row of the record a form edits, locked: the services compare the form's values with it."""
    return type(obj)._default_manager.select_for_update(of=("self",)).get(pk=obj.pk)


def _form_values(form: forms.BaseForm, fields: frozenset[str] | set[str]) -> dict[str, Any]:
    return {name: value for name, value in form.cleaned_data.items() if name in fields}


class PolicyInline(admin.TabularInline):
    write_action: str  # the policy action that lets a user edit these rows of a case
    extra = 0
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return obj is None or policy.cases_writable(request.user, self.write_action).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_view_permission(self, request, obj=None):
        return True

    def get_queryset(self, request):
        return super().get_queryset(request).filter(archived=False)


class CaseRecordForm(ReferencesForm):
    """A row of a case (party, note, share) runs its rules (cases.rules) in `clean()`, as the services will."""

    def check_rules(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        """Raise RuleViolation for what the row's rules refuse."""

    def case_agency_id(self, data: dict[str, Any]) -> Any:
        """The agency of the case the row belongs to (a case being created: the editor's, whose it will be)."""
        case = data.get("case")  # the inline's parent
        if case is not None and case.agency_id is not None:
            return case.agency_id
        return getattr(getattr(self.request, "user", None), "agency_id", None)

    def clean(self):
        data = super().clean()
        if data.get("DELETE") or not self.has_changed():
            return data
        try:
            self.check_rules(self.case_agency_id(data), data)
        except RuleViolation as exc:
            add_rule_errors(self, exc)
        return data


class PartyForm(CaseRecordForm):
    def check_rules(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        if data.get("entity") is not None:
            rules.party_entity(case_agency_id=case_agency_id, entity=data["entity"])


class NoteForm(CaseRecordForm):
    def check_rules(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        if "body" in data:
            rules.note_body(data["body"])


class ShareForm(CaseRecordForm):
    def check_rules(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        rules.share_target(case_agency_id=case_agency_id, agency=data.get("agency"), unit=data.get("unit"))


class PartyInline(ReferencingInlineMixin, PolicyInline):  # the entity: one of the case's agency
    model = CaseParty
    form = PartyForm
    write_action = "case.party"
    fields = ("entity", "role", "custody_status", "notes")
    autocomplete_fields = ("entity",)


class NoteInline(ReferencingInlineMixin, PolicyInline):
    model = Note
    form = NoteForm
    write_action = "case.note"
    fields = ("body", "author", "created_at")
    readonly_fields = ("author", "created_at")


class ShareInline(ReferencingInlineMixin, PolicyInline):
    model = CaseShare
    form = ShareForm
    write_action = "case.share"
    fields = ("agency", "unit", "access", "shared_by")
    readonly_fields = ("shared_by",)


# The services that write each kind of row of a case's inlines: (create, update, archive, the row's fields).
INLINE_SERVICES: dict[type[models.Model], tuple[Any, Any, Any, frozenset[str]]] = {
    CaseParty: (lambda case, actor, data: services.party_add(case=case, actor=actor, data=data),
                lambda row, actor, data: services.party_update(party=row, actor=actor, data=data),
                lambda row, actor: services.party_archive(party=row, actor=actor), services.PARTY_FIELDS),
    Note: (lambda case, actor, data: services.note_create(case=case, actor=actor, data=data),
           lambda row, actor, data: services.note_update(note=row, actor=actor, data=data),
           lambda row, actor: services.note_archive(note=row, actor=actor), services.NOTE_FIELDS),
    CaseShare: (lambda case, actor, data: services.share_create(case=case, actor=actor, data=data),
                lambda row, actor, data: services.share_update(share=row, actor=actor, data=data),
                lambda row, actor: services.share_revoke(share=row, actor=actor), services.SHARE_FIELDS),
}


class CaseAdminForm(forms.ModelForm):
    """The admin runs the case's rules (status machine, clearance, the role a move needs) in `clean()`."""

    request: ClassVar[HttpRequest]  # set by CaseAdmin.get_form on the form class it builds

    class Meta:
        model = Case
        fields = ("title", "summary", "status", "priority", "classification", "unit", "lead", "members",
                  "commodities", "opened_on", "tags")

    def service_data(self) -> dict[str, Any]:
        """The form's values for the services. A new case's blank unit, lead and opening date are left out, so
        it takes the defaults a case created through the API takes."""
        data = _form_values(self, services.CASE_FIELDS)
        if self.instance._state.adding:
            data = {name: value for name, value in data.items() if value not in (None, "")}
        return data

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        case = None if self.instance._state.adding else self.instance
        try:
            services.case_check_change(actor=request_user(self.request), case=case, data=self.service_data())
        except RuleViolation as exc:
            add_rule_errors(self, exc)
        except (StateConflict, rules.MoveRefused) as exc:
            self.add_error("status", str(exc))
        except PermissionDenied as exc:
            self.add_error(None, str(exc))
        return data


@admin.register(Case)
class CaseAdmin(AuditedModelAdmin):
    """Cases and their parties, notes and shares are written through cases.services, as by the API."""

    form = CaseAdminForm

    list_display = ("reference", "title", "status", "priority", "classification", "unit", "lead", "opened_on")
    list_filter = ("status", "priority", "classification", ("unit", admin.RelatedOnlyFieldListFilter), "commodities",
                   "archived")
    search_fields = ("reference", "title", "summary")
    list_select_related = ("unit", "lead", "agency")
    date_hierarchy = "opened_on"
    filter_horizontal = ("members", "commodities")
    readonly_fields = ("id", "reference", "agency", "version", "created_at", "updated_at", "closed_on")
    inlines = (PartyInline, NoteInline, ShareInline)
    create_action = "case.create"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = cast(type[CaseAdminForm], super().get_form(request, obj, change, **kwargs))
        form.request = request
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "unit":
            kwargs["queryset"] = policy.visible(request.user, Unit)
        if db_field.name == "lead":
            kwargs["queryset"] = policy.visible(request.user, User)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":
            kwargs["queryset"] = policy.visible(request.user, User)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        actor = request_user(request)
        if change:
            stored = services.case_update(case=_locked(obj), actor=actor, data=form.service_data())
        else:
            stored = services.case_create(agency=obj.agency if obj.agency_id else actor.agency, actor=actor,
                                          data=form.service_data())
        _adopt(obj, stored)

    def save_related(self, request, form, formsets, change):
        # The case's own many-to-many fields were written by its service; the inlines' rows go through theirs.
        with transaction.atomic():
            for formset in formsets:
                self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        create, update, archive, fields = INLINE_SERVICES[formset.model]
        actor = request_user(request)
        # What formset.save() would have recorded, for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row_form in formset.forms:
            instance = row_form.instance
            if instance._state.adding:
                if row_form.has_changed() and not formset._should_delete_form(row_form):
                    formset.new_objects.append(create(form.instance, actor, _form_values(row_form, fields)))
            elif formset._should_delete_form(row_form):
                formset.deleted_objects.append(archive(_locked(instance), actor))
            elif row_form.has_changed():
                row = update(_locked(instance), actor, _form_values(row_form, fields))
                formset.changed_objects.append((row, row_form.changed_data))


@admin.register(Commodity)
class CommodityAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "control_regime", "controlled_since", "licence_required")
    search_fields = ("code", "name")

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_staff


# --- prosecutions and evidence -------------------------------------------------------------

LAST_SEQ = 32767  # PositiveSmallIntegerField's largest value


class CaseRecordInline(admin.TabularInline):
    """Rows that are part of a case's record (a prosecution's charges): the record's permissions are theirs."""

    extra = 0

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return obj is None or policy.writable(request.user, type(obj)).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


class ChargeForm(forms.ModelForm):
    seq = forms.IntegerField(required=False, min_value=0, label="No.", help_text="Blank: after the others")

    def clean_seq(self) -> int:
        seq = self.cleaned_data.get("seq")
        return seq if seq is not None else LAST_SEQ  # numbered 1..n once saved


class ChargeInline(CaseRecordInline):
    """Saved with the prosecution and audited as part of it (`Prosecution.snapshot_children`)."""

    model = Charge
    form = ChargeForm
    fields = ("seq", "statute", "description")


class ProsecutionAdminForm(ReferencesForm):
    """The rules of the API's prosecutions (cases.rules): the stage machine, the verdict and the sentence."""

    fine_currency = CleanedField(cleaner=api_rule(CurrencyField(allow_blank=True)), help_text="ISO 4217: CNY")

    def service_data(self) -> dict[str, Any]:
        return _form_values(self, services.PROSECUTION_FIELDS | {"archived"})

    def clean(self):
        data = super().clean()
        fine, months = data.get("fine_amount"), data.get("custody_months")
        if fine is not None and fine < 0:
            self.add_error("fine_amount", "Cannot be negative.")
        if months is not None and months > 1200:
            self.add_error("custody_months", "At most 1200 months.")
        adding = self.instance._state.adding
        case = data.get("case") if adding else self.instance.case
        if case is None:
            return data
        try:
            services.prosecution_check(case=case, prosecution=None if adding else self.instance,
                                       data=self.service_data())
        except RuleViolation as exc:
            add_rule_errors(self, exc)
        except StateConflict as exc:
            self.add_error("stage", str(exc))
        return data


@admin.register(Prosecution)
class ProsecutionAdmin(ReferencingAdmin):
    form = ProsecutionAdminForm
    inlines = (ChargeInline,)
    list_display = ("defendant", "case", "stage", "verdict", "court", "filed_on", "verdict_on", "custody_months",
                    "archived")
    list_filter = ("stage", "verdict", ("case", admin.RelatedOnlyFieldListFilter), "court", "filed_on", "archived")
    search_fields = ("defendant__name", "case__reference", "case__title", "court", "prosecutor_office")
    list_select_related = ("case", "defendant")
    autocomplete_fields = ("case", "defendant")
    readonly_fields = ("id", "version", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("case", "defendant", "court", "prosecutor_office", "stage", "filed_on")}),
        ("Verdict and sentence", {"fields": ("verdict", "verdict_on", "custody_months", "fine_amount",
                                             "fine_currency", "confiscation")}),
        ("Record", {"fields": ("archived", "id", "version", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    create_action = "case.party"

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "case") if obj is not None else fields  # a prosecution stays in its case

    def archive_record(self, request, obj) -> None:
        """The admin's archive action (ReferencingAdmin.archive_selected) archives through the service."""
        services.prosecution_archive(prosecution=obj, actor=request_user(request))

    def save_model(self, request, obj, form, change):
        """Written with its charges by `save_related`: one service call for the prosecution and its charges."""

    def save_related(self, request, form, formsets, change):
        data = form.service_data()
        charge_sets = [formset for formset in formsets if formset.model is Charge]
        if charge_sets:  # the charges as the inline leaves them (an inline not shown leaves them as they are)
            charge_forms = [f for formset in charge_sets for f in formset.forms
                            if f.cleaned_data.get("statute") and not formset._should_delete_form(f)]
            charge_forms.sort(key=lambda f: f.cleaned_data["seq"])  # numbered 1..n in this order, as the API does
            data["charges"] = [{"statute": f.cleaned_data["statute"], "description": f.cleaned_data.get("description")}
                               for f in charge_forms]
        for formset in formsets:  # what formset.save() would have recorded, for the admin's change message
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        actor = request_user(request)
        with transaction.atomic():
            if change:
                stored = services.prosecution_update(prosecution=_locked(form.instance), actor=actor, data=data)
            else:
                data.pop("archived", None)
                stored = services.prosecution_create(case=form.cleaned_data["case"], actor=actor, data=data)
        _adopt(form.instance, stored)


class CustodyInline(admin.TabularInline):
    """The chain of custody: read-only, written by uploads and downloads."""

    model = CustodyEntry
    extra = 0
    fields = ("at", "by", "action", "note")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EvidenceAdminForm(ReferencesForm):
    def clean_file(self):
        upload = self.cleaned_data.get("file")
        too_large = rules.evidence_too_large(getattr(upload, "size", 0), settings.EVIDENCE_MAX_BYTES)
        if upload is not None and too_large:
            raise forms.ValidationError(too_large)
        return upload


@admin.register(Evidence)
class EvidenceAdmin(ReferencingAdmin):
    """Uploaded here or through the API alike: SHA-256 and size computed, custody opened (cases.services).
    Afterwards only the title and kind change; the file is never replaced, and each download is logged."""

    form = EvidenceAdminForm
    inlines = (CustodyInline,)
    list_display = ("title", "kind", "case", "original_name", "size", "short_sha256", "uploaded_by", "created_at",
                    "archived")
    list_filter = ("kind", ("case", admin.RelatedOnlyFieldListFilter), "created_at", "archived")
    search_fields = ("title", "kind", "original_name", "=sha256", "case__reference")
    list_select_related = ("case", "uploaded_by")
    autocomplete_fields = ("case",)
    readonly_fields = ("case", "download", "original_name", "content_type", "size", "sha256", "uploaded_by", "id",
                       "version", "created_at", "updated_at")
    create_action = "case.party"

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("case", "title", "kind", "file")}),)
        return (
            (None, {"fields": ("case", "title", "kind", "download")}),
            ("File", {"fields": ("original_name", "content_type", "size", "sha256", "uploaded_by")}),
            ("Record", {"fields": ("archived", "id", "version", "created_at", "updated_at"),
                        "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="SHA-256")
    def short_sha256(self, obj: Evidence) -> str:
        return f"{obj.sha256[:12]}…" if obj.sha256 else ""

    @admin.display(description="file")
    def download(self, obj: Evidence) -> str:
        url = reverse("admin:cases_evidence_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a> ({} bytes; every download is recorded in the chain of custody)',
                           url, obj.original_name or "download", obj.size)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [path("<path:object_id>/download/", download, name="cases_evidence_download"), *super().get_urls()]

    def download_view(self, request, object_id):
        evidence = self.get_object(request, unquote(object_id))
        if evidence is None or not self.has_view_permission(request, evidence):
            raise Http404("No such evidence.")
        return evidence_file_response(evidence, actor=request.user)

    def save_model(self, request, obj, form, change):
        actor = request_user(request)
        if change:
            stored = services.evidence_update(evidence=_locked(obj), actor=actor,
                                              data=_form_values(form, services.EVIDENCE_FIELDS | {"archived"}))
        else:
            stored = services.evidence_create(case=obj.case, upload=form.cleaned_data["file"], title=obj.title,
                                              kind=obj.kind, actor=actor)
            request._stored_evidence = stored
        _adopt(obj, stored)

    def archive_record(self, request, obj) -> None:
        """The admin's archive action (ReferencingAdmin.archive_selected) archives through the service."""
        services.evidence_archive(evidence=obj, actor=request_user(request))

    def save_related(self, request, form, formsets, change):
        """Nothing more: the service audited the evidence, and its chain of custody is read-only here."""
        for formset in formsets:  # what formset.save() would have recorded, for the admin's change message
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BaseException:
            # The transaction rolled back after the file was stored: leave nothing behind.
            stored = getattr(request, "_stored_evidence", None)
            if stored is not None:
                stored.file.delete(save=False)
            raise
