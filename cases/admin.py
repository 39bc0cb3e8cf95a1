from typing import ClassVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Unit, User, request_user
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
    Verdict,
)
from cases.services import (
    TransitionNotAllowed,
    case_next_reference,
    case_transition_action,
    evidence_create,
    prosecution_stage_move,
)
from core import policy
from core.admin import (
    AuditedModelAdmin,
    CleanedField,
    ReferencesForm,
    ReferencingAdmin,
    ReferencingInlineMixin,
    api_rule,
)
from core.api.validation import CurrencyField


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


class PartyInline(ReferencingInlineMixin, PolicyInline):  # the entity: one of the case's agency
    model = CaseParty
    write_action = "case.party"
    fields = ("entity", "role", "custody_status", "notes")
    autocomplete_fields = ("entity",)


class NoteInline(PolicyInline):
    model = Note
    write_action = "case.note"
    fields = ("body", "author", "created_at")
    readonly_fields = ("author", "created_at")


class ShareInline(PolicyInline):
    model = CaseShare
    write_action = "case.share"
    fields = ("agency", "unit", "access", "shared_by")
    readonly_fields = ("shared_by",)


class CaseAdminForm(forms.ModelForm):
    """The admin obeys the same status machine and clearance rule as the API."""

    request: ClassVar[HttpRequest]  # set by CaseAdmin.get_form on the form class it builds

    class Meta:
        model = Case
        fields = ("title", "summary", "status", "priority", "classification", "unit", "lead", "members",
                  "commodities", "opened_on", "tags")

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        user = request_user(self.request)
        status = data.get("status")
        if self.instance.pk and status and status != self.instance.status:
            try:
                needed = case_transition_action(self.instance.status, status)
            except TransitionNotAllowed as exc:
                self.add_error("status", str(exc))
            else:
                if not policy.cases_writable(user, needed).filter(pk=self.instance.pk).exists():
                    self.add_error("status", f"Your role may not move a case to {status}.")
        elif not self.instance.pk and status and status != "open":
            self.add_error("status", "A new case starts as open.")
        classification = data.get("classification")
        if classification and not policy.may_classify(user, classification):
            self.add_error("classification", "Above your clearance: you could not read this case.")
        if not self.instance._state.adding:
            try:
                policy.check_case_change(user, self.instance, self.changed_data)
            except PermissionDenied as exc:
                self.add_error(None, str(exc))
        return data


@admin.register(Case)
class CaseAdmin(AuditedModelAdmin):
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

    def fill_owner(self, request, obj, change):
        super().fill_owner(request, obj, change)
        if change and "status" in self._changed(request, obj):
            obj.closed_on = timezone.localdate() if obj.status == "closed" else None
        if not change:
            obj.created_by = request.user
            obj.reference = case_next_reference(agency=obj.agency)

    def audit_action(self, before, obj) -> str:
        return "transition" if before.get("status") != obj.status else "update"

    @staticmethod
    def _changed(request, obj):
        current = Case.objects.filter(pk=obj.pk).values_list("status", flat=True).first()
        return {"status"} if current != obj.status else set()

    def fill_inline_owner(self, request, instance):
        if isinstance(instance, Note) and instance.author_id is None:
            instance.author = request.user
        if isinstance(instance, CaseShare) and instance.shared_by_id is None:
            instance.shared_by = request.user


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
    """The rules of the API's prosecutions: the stage machine, the verdict and the sentence."""

    fine_currency = CleanedField(cleaner=api_rule(CurrencyField(allow_blank=True)), help_text="ISO 4217: CNY")

    def clean(self):
        data = super().clean()
        instance: Prosecution = self.instance
        stage = data.get("stage")
        if not instance._state.adding and stage:
            try:
                prosecution_stage_move(instance.stage, stage)
            except TransitionNotAllowed as exc:
                self.add_error("stage", str(exc))
        filed_on, verdict_on = data.get("filed_on"), data.get("verdict_on")
        verdict = data.get("verdict") or Verdict.PENDING
        if verdict_on is not None and verdict == Verdict.PENDING:
            self.add_error("verdict_on", "A verdict date needs a verdict.")
        elif verdict_on is not None and filed_on is not None and verdict_on < filed_on:
            self.add_error("verdict_on", "The verdict cannot come before the filing.")
        sentence = ("custody_months", "fine_amount", "fine_currency", "confiscation")
        if verdict != Verdict.CONVICTED and any(data.get(name) not in (None, "") for name in sentence):
            self.add_error("verdict", "Only a conviction carries a sentence: clear the sentence with this verdict.")
        if (data.get("fine_amount") is None) != (not data.get("fine_currency")):
            self.add_error("fine_currency", "A fine has an amount and a currency, or neither.")
        fine, months = data.get("fine_amount"), data.get("custody_months")
        if fine is not None and fine < 0:
            self.add_error("fine_amount", "Cannot be negative.")
        if months is not None and months > 1200:
            self.add_error("custody_months", "At most 1200 months.")
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

    def audit_action(self, before, obj) -> str:
        if before.get("stage") != obj.stage:
            return "transition"
        return super().audit_action(before, obj)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is Charge:
            charges = Charge.objects.filter(prosecution=form.instance).order_by("seq", "id")
            for seq, charge in enumerate(charges, start=1):  # 1..n, as the API numbers them
                if charge.seq != seq:
                    Charge.objects.filter(pk=charge.pk).update(seq=seq)


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
        limit = settings.EVIDENCE_MAX_BYTES
        if upload is not None and getattr(upload, "size", 0) > limit:
            raise forms.ValidationError(f"The file is {upload.size} bytes; evidence files may be at most {limit} "
                                        "bytes.")
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
        if change:
            return super().save_model(request, obj, form, change)
        stored = evidence_create(case=obj.case, upload=form.cleaned_data["file"], title=obj.title, kind=obj.kind,
                                 actor=request.user)
        request._stored_evidence = stored
        for field in Evidence._meta.concrete_fields:  # the form's instance becomes the stored record
            setattr(obj, field.attname, getattr(stored, field.attname))
        obj._state.adding, obj._state.db = False, stored._state.db
        request._audit_pending = (obj, None)  # AuditedModelAdmin.save_related audits the creation
        return None

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BaseException:
            # The transaction rolled back after the file was stored: leave nothing behind.
            stored = getattr(request, "_stored_evidence", None)
            if stored is not None:
                stored.file.delete(save=False)
            raise
