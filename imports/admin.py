"""The import page for clerks: upload a file with its kind and mode, then follow progress and errors."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core import policy
from core.admin import PolicyAdminMixin
from core.rules import StateConflict

from .errors import COLUMNS, errors_csv_response, values_text
from .models import ImportJob
from .services import job_cancel

COUNTS = ("status", "progress_bar", "total_rows", "processed_rows", "created", "updated", "unchanged", "failed_rows",
          "error", "sha256", "started_at", "finished_at", "created_by", "agency")
ERRORS_SHOWN = 100  # a job's page lists its first errors; all of them are in its CSV

@admin.register(ImportJob)
class ImportJobAdmin(PolicyAdminMixin, admin.ModelAdmin):
    create_action = "entity.change"
    list_display = ("created_at", "kind", "mode", "source", "status", "progress", "created", "updated",
                    "unchanged", "failed_rows", "created_by")
    list_filter = ("status", "kind", "mode")
    list_select_related = ("created_by", "agency")
    actions = ["cancel"]

    @admin.display(description="progress")
    def progress(self, obj: ImportJob) -> str:
        if not obj.total_rows:
            return f"{obj.processed_rows}/?"
        return f"{obj.processed_rows}/{obj.total_rows} ({100 * obj.processed_rows // obj.total_rows}%)"

    @admin.display(description="progress")
    def progress_bar(self, obj: ImportJob) -> str:
        if not obj.total_rows:
            return format_html('<progress aria-label="rows processed"></progress> {} rows processed, total not yet '
                               "counted", obj.processed_rows)
        return format_html('<progress value="{}" max="{}" aria-label="rows processed">{}%</progress> {}',
                           obj.processed_rows, obj.total_rows, 100 * obj.processed_rows // obj.total_rows,
                           self.progress(obj))

    @admin.display(description="errors")
    def errors_shown(self, obj: ImportJob) -> str:
        """The first errors in row order, and the link to all of them: a job may have many thousands."""
        shown = [(row, field, message, values_text(values)) for row, field, message, values
                 in obj.errors.order_by("row", "id").values_list(*COLUMNS)[:ERRORS_SHOWN + 1]]
        if not shown:
            return "None."
        more = len(shown) > ERRORS_SHOWN
        shown = shown[:ERRORS_SHOWN]
        total = obj.errors.count() if more else len(shown)
        link = format_html('<a href="{}" download>Download all {} errors (CSV)</a>',
                           reverse("admin:imports_importjob_errors", args=[obj.pk]), total)
        heading = (format_html("The first {} of {} errors, by row. ", ERRORS_SHOWN, total) if more
                   else format_html("{} error(s), by row. ", total))
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", shown)
        return format_html('<p>{}{}</p><table class="import-errors"><thead><tr><th>row</th><th>field</th>'
                           "<th>message</th><th>the row's values</th></tr></thead><tbody>{}</tbody></table>",
                           heading, link, rows)

    def get_urls(self):
        errors = self.admin_site.admin_view(self.errors_view)
        return [path("<path:object_id>/errors.csv", errors, name="imports_importjob_errors"), *super().get_urls()]

    def errors_view(self, request, object_id):
        """Every error of a job as CSV, streamed; for whoever may see the job."""
        job = self.get_object(request, unquote(object_id))
        if job is None or not self.has_view_permission(request, job):
            raise Http404("No such import job.")
        return errors_csv_response(job)

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
        return ("file", "kind", "mode", "source") if obj is None else ("kind", "mode", "source", *COUNTS,
                                                                       "errors_shown")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("kind", "mode", "source", *COUNTS, "errors_shown")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by", "agency")

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
