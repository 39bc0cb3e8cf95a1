"""The import page for clerks: upload a file with its kind and mode, then follow progress and errors."""

from __future__ import annotations

from django.contrib import admin, messages

from core import policy
from core.admin import PolicyAdminMixin
from core.rules import StateConflict

from .models import ImportJob, ImportRowError
from .services import job_cancel

COUNTS = ("status", "total_rows", "processed_rows", "created", "updated", "unchanged", "failed_rows", "error",
          "sha256", "started_at", "finished_at", "created_by", "agency")


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    fields = ("row", "field", "message")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("row", "id")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff  # the job itself is scoped by the policy

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(PolicyAdminMixin, admin.ModelAdmin):
    create_action = "entity.change"
    list_display = ("created_at", "kind", "mode", "source", "status", "progress", "created", "updated",
                    "unchanged", "failed_rows", "created_by")
    list_filter = ("status", "kind", "mode")
    inlines = [ImportRowErrorInline]
    actions = ["cancel"]

    @admin.display(description="progress")
    def progress(self, obj: ImportJob) -> str:
        if not obj.total_rows:
            return f"{obj.processed_rows}/?"
        return f"{obj.processed_rows}/{obj.total_rows} ({100 * obj.processed_rows // obj.total_rows}%)"

    @admin.action(description="Cancel the selected import jobs (after their current batch)", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        """The API's cancel (API.md § Bulk import), through the same service, for the jobs the user may cancel."""
        allowed = policy.writable(request.user, ImportJob)
        done = 0
        for job in queryset.filter(pk__in=allowed.values("pk")).select_related("agency", "created_by"):
            try:
                job_cancel(job=job, actor=request.user)
                done += 1
            except StateConflict as exc:
                self.message_user(request, f"{job}: {exc}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} import job(s) cancelled or asked to stop after their current batch.")

    def get_fields(self, request, obj=None):
        return ("file", "kind", "mode", "source") if obj is None else ("kind", "mode", "source", *COUNTS)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("kind", "mode", "source", *COUNTS)

    def get_inlines(self, request, obj):
        return [ImportRowErrorInline] if obj is not None else []

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # a job is read-only once made

    def save_model(self, request, obj, form, change):
        from .services import job_create

        job = job_create(agency=request.user.agency, actor=request.user, upload=form.cleaned_data["file"],
                         kind=obj.kind, mode=obj.mode, source=obj.source)
        # The admin goes on with the object its form built (the change message, the redirect): it is this job.
        for field in ImportJob._meta.concrete_fields:
            setattr(obj, field.attname, getattr(job, field.attname))
        obj._state.adding = False
