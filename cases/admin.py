from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
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
from core.admin import CleanedField, RecordRowsInline, ServiceAdmin, ServiceForm, ServiceInline, api_rule, inline_rows
from core.api.validation import CurrencyField


class CaseRowsInline(ServiceInline):
    """A case's parties, notes and shares: written by those who may do `write_action` on the case."""

    write_action: str
    show_change_link = False

    def may_write(self, request, obj):
        return policy.cases_writable(request.user, self.write_action).filter(pk=obj.pk).exists()

    def get_queryset(self, request):
        return super().get_queryset(request).filter(archived=False)


class CaseRowForm(ServiceForm):
    """A row of a case (party, note, share) runs its rules (cases.rules) in `clean()`, as its service will."""

    def case_agency_id(self, data: dict[str, Any]) -> Any:
        """The agency of the case the row belongs to (a case being created: the editor's, whose it will be)."""
        case = data.get("case")  # the inline's parent
        if case is not None and case.agency_id is not None:
            return case.agency_id
        return getattr(getattr(self.request, "user", None), "agency_id", None)

    def check_rules(self, data: dict[str, Any]) -> None:
        if not data.get("DELETE") and self.has_changed():
            self.check_row(self.case_agency_id(data), data)

    def check_row(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        """Raise RuleViolation for what the row's rules refuse."""


class PartyForm(CaseRowForm):
    service_fields = services.PARTY_FIELDS

    def check_row(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        if data.get("entity") is not None:
            rules.party_entity(case_agency_id=case_agency_id, entity=data["entity"])


class NoteForm(CaseRowForm):
    service_fields = services.NOTE_FIELDS

    def check_row(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        if "body" in data:
            rules.note_body(data["body"])


class ShareForm(CaseRowForm):
    service_fields = services.SHARE_FIELDS

    def check_row(self, case_agency_id: Any, data: dict[str, Any]) -> None:
        rules.share_target(case_agency_id=case_agency_id, agency=data.get("agency"), unit=data.get("unit"))


class PartyInline(CaseRowsInline):  # the entity: one of the case's agency
    model = CaseParty
    form = PartyForm
    write_action = "case.party"
    fields = ("entity", "role", "custody_status", "notes")
    autocomplete_fields = ("entity",)

    def create_row(self, request, parent, data):
        return services.party_add(case=parent, actor=request_user(request), data=data)

    def update_row(self, request, stored, data):
        return services.party_update(party=stored, actor=request_user(request), data=data)

    def archive_row(self, request, stored):
        return services.party_archive(party=stored, actor=request_user(request))


class NoteInline(CaseRowsInline):
    model = Note
    form = NoteForm
    write_action = "case.note"
    fields = ("body", "author", "created_at")
    readonly_fields = ("author", "created_at")

    def create_row(self, request, parent, data):
        return services.note_create(case=parent, actor=request_user(request), data=data)

    def update_row(self, request, stored, data):
        return services.note_update(note=stored, actor=request_user(request), data=data)

    def archive_row(self, request, stored):
        return services.note_archive(note=stored, actor=request_user(request))


class ShareInline(CaseRowsInline):
    model = CaseShare
    form = ShareForm
    write_action = "case.share"
    fields = ("agency", "unit", "access", "shared_by")
    readonly_fields = ("shared_by",)

    def create_row(self, request, parent, data):
        return services.share_create(case=parent, actor=request_user(request), data=data)

    def update_row(self, request, stored, data):
        return services.share_update(share=stored, actor=request_user(request), data=data)

    def archive_row(self, request, stored):
        return services.share_revoke(share=stored, actor=request_user(request))


class CaseAdminForm(ServiceForm):
    """The admin runs the case's rules (status machine, clearance, the role a move needs) in `clean()`."""

    service_fields = services.CASE_FIELDS
    state_field = "status"

    class Meta:
        model = Case
        fields = ("title", "summary", "status", "priority", "classification", "unit", "lead", "members",
                  "commodities", "opened_on", "tags")

    def service_data(self) -> dict[str, Any]:
        """The form's values for the services. A new case's blank unit, lead and opening date are left out, so
        it takes the defaults a case created through the API takes."""
        data = super().service_data()
        if self.instance._state.adding:
            data = {name: value for name, value in data.items() if value not in (None, "")}
        return data

    def check_rules(self, data: dict[str, Any]) -> None:
        assert self.request is not None  # set by ServiceAdmin.get_form
        try:
            services.case_check_change(actor=request_user(self.request), case=self.stored(), data=self.service_data())
        except rules.MoveRefused as exc:
            self.add_error("status", str(exc))
        except PermissionDenied as exc:
            self.add_error(None, str(exc))


@admin.register(Case)
class CaseAdmin(ServiceAdmin):
    """Cases and their parties, notes and shares are written through cases.services, as by the API."""

    form = CaseAdminForm

    list_display = ("reference", "title", "status", "priority", "classification", "unit", "lead", "opened_on")
    list_filter = ("status", "priority", "classification", ("unit", admin.RelatedOnlyFieldListFilter), "commodities",
                   "archived")
    search_fields = ("reference", "title", "summary")
    list_select_related = ("unit__agency", "lead", "agency")  # a unit is shown with its agency
    date_hierarchy = "opened_on"
    autocomplete_fields = ("members", "commodities")
    readonly_fields = ("id", "reference", "agency", "version", "created_at", "updated_at", "closed_on")
    inlines = (PartyInline, NoteInline, ShareInline)
    create_action = "case.create"
    actions = ()  # a case is not archived here

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "unit":
            kwargs["queryset"] = policy.visible(request.user, Unit).select_related("agency")
        if db_field.name == "lead":
            kwargs["queryset"] = policy.visible(request.user, User)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":
            kwargs["queryset"] = policy.visible(request.user, User)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def create_record(self, request, agency, data):
        return services.case_create(agency=agency, actor=request_user(request), data=data)

    def update_record(self, request, stored, data):
        return services.case_update(case=stored, actor=request_user(request), data=data)


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


class ChargeForm(ServiceForm):
    service_fields = frozenset({"statute", "description"})
    seq = forms.IntegerField(required=False, min_value=0, label="No.", help_text="Blank: after the others")

    def clean_seq(self) -> int:
        seq = self.cleaned_data.get("seq")
        return seq if seq is not None else LAST_SEQ  # numbered 1..n once saved


class ChargeInline(RecordRowsInline):
    """Saved with the prosecution and audited as part of it (`Prosecution.snapshot_children`)."""

    model = Charge
    form = ChargeForm
    fields = ("seq", "statute", "description")


class ProsecutionAdminForm(ServiceForm):
    """The rules of the API's prosecutions (cases.rules): the stage machine, the verdict and the sentence."""

    service_fields = services.PROSECUTION_FIELDS | {"case", "archived"}
    state_field = "stage"
    fine_currency = CleanedField(cleaner=api_rule(CurrencyField(allow_blank=True)), help_text="ISO 4217: CNY")

    def check_rules(self, data: dict[str, Any]) -> None:
        fine, months = data.get("fine_amount"), data.get("custody_months")
        if fine is not None and fine < 0:
            self.add_error("fine_amount", "Cannot be negative.")
        if months is not None and months > 1200:
            self.add_error("custody_months", "At most 1200 months.")
        stored = self.stored()
        case = data.get("case") if stored is None else stored.case
        if case is not None:
            services.prosecution_check(case=case, prosecution=stored, data=self.service_data())


@admin.register(Prosecution)
class ProsecutionAdmin(ServiceAdmin):
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

    def create_record(self, request, agency, data):
        data = dict(data)
        case = data.pop("case")
        data.pop("archived", None)  # a new prosecution is not archived
        return services.prosecution_create(case=case, actor=request_user(request), data=data)

    def update_record(self, request, stored, data):
        return services.prosecution_update(prosecution=stored, actor=request_user(request), data=data)

    def archive_record(self, request, obj):
        return services.prosecution_archive(prosecution=obj, actor=request_user(request))

    def children(self, formsets):
        charges = inline_rows(formsets, Charge)  # numbered 1..n in this order, as the API does
        return {} if charges is None else {"charges": charges}


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


class EvidenceAdminForm(ServiceForm):
    service_fields = services.EVIDENCE_FIELDS | {"archived", "case", "file"}

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        too_large = rules.evidence_too_large(getattr(upload, "size", 0), settings.EVIDENCE_MAX_BYTES)
        if upload is not None and too_large:
            raise forms.ValidationError(too_large)
        return upload


@admin.register(Evidence)
class EvidenceAdmin(ServiceAdmin):
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

    def create_record(self, request, agency, data):
        stored = services.evidence_create(case=data["case"], upload=data["file"], title=data["title"],
                                          kind=data.get("kind", ""), actor=request_user(request))
        request._stored_evidence = stored
        return stored

    def update_record(self, request, stored, data):
        return services.evidence_update(evidence=stored, actor=request_user(request), data=data)

    def archive_record(self, request, obj):
        return services.evidence_archive(evidence=obj, actor=request_user(request))

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BaseException:
            # The transaction rolled back after the file was stored: leave nothing behind.
            stored = getattr(request, "_stored_evidence", None)
            if stored is not None:
                stored.file.delete(save=False)
            raise
