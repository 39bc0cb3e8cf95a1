from django.contrib import admin

from audit.models import AuditEvent
from core import policy


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the table is append-only and PostgreSQL refuses changes anyway."""

    list_display = ("seq", "at", "agency_code", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "agency_code")
    search_fields = ("actor", "object_id", "request_id")
    ordering = ("-at",)

    def get_queryset(self, request):
        return policy.visible(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]

    def has_module_permission(self, request):
        return policy.allows(request.user, "audit.view")

    def has_view_permission(self, request, obj=None):
        return policy.allows(request.user, "audit.view")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
