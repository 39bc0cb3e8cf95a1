from typing import ClassVar, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from accounts.choices import clears
from accounts.models import Unit, User, request_user
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from cases.services import TransitionNotAllowed, case_next_reference, case_transition_action
from core import policy
from core.admin import AuditedModelAdmin


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


class PartyInline(PolicyInline):
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
        if classification and not user.is_superuser and not clears(user.clearance, classification):
            self.add_error("classification", "Above your clearance.")
        return data


@admin.register(Case)
class CaseAdmin(AuditedModelAdmin):
    form = CaseAdminForm

    list_display = ("reference", "title", "status", "priority", "classification", "unit", "lead", "opened_on")
    list_filter = ("status", "priority", "classification", "unit", "commodities", "archived")
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
