"""Alerts in the admin: the red flags with their reasons, filtered and searched, worked one by one (status, case)
or in bulk (dismiss, escalate, reopen).

Every change goes through `alerts.services.alert_update`, as through the API (its rules, version and audit); the
rows and who may change them come from `core.policy`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from core.admin import ServiceAdmin, ServiceForm

from . import rules, services
from .models import Alert, AlertStatus

EXPLANATION_SHOWN = 160  # characters of an explanation in the list
# Where each kind of record named by an alert is edited (an entity's page sends on to its person's or
# organisation's).
ADMIN_PAGES = {"shipment": "admin:shipments_shipment_change", "person": "admin:entities_entity_change",
               "organization": "admin:entities_entity_change", "case": "admin:cases_case_change",
               "licence": "admin:shipments_licence_change"}
RELATED_KEYS = ("type", "id", "label")  # every related item's; the others are shown after its label


def admin_link(kind: str, pk: Any, label: str) -> str:
    try:
        url = reverse(ADMIN_PAGES[kind], args=[pk])
    except (KeyError, NoReverseMatch):
        return format_html("{}", label)
    return format_html('<a href="{}">{}</a>', url, label)


class AlertForm(ServiceForm):
    """An alert's page changes only its status and the case it is attached to, which `alert_update` writes."""

    service_fields = frozenset({"status", "case"})
    state_field = "status"

    def check_rules(self, data: dict[str, Any]) -> None:
        stored = self.stored()
        if self.errors or stored is None:
            return
        user = getattr(self.request, "user", None)
        rules.check_update(user, stored, {name: data.get(name) for name in self.service_fields})


ALERT_FIELDS = ("rule", "severity", "subject_shown", "explanation", "related_shown", "status", "case",
                "closed_reason", "status_changed_by", "status_changed_at")
RECORD_FIELDS = ("agency", "archived", "id", "version", "created_at", "updated_at")


@admin.register(Alert)
class AlertAdmin(ServiceAdmin):
    form = AlertForm
    list_display = ("rule", "severity", "status", "label", "case", "created_at")
    list_filter = ("rule", "severity", "status", "archived")
    list_select_related = ("case",)
    autocomplete_fields = ("case",)  # the agency's cases are many: searched, not listed
    search_fields = ("label", "explanation")
    ordering = ("-created_at", "id")
    list_per_page = 50
    fieldsets = ((None, {"fields": ALERT_FIELDS}),
                 ("Record", {"fields": RECORD_FIELDS, "classes": ("collapse",)}))
    readonly_fields = tuple(f for f in (*ALERT_FIELDS, *RECORD_FIELDS) if f not in AlertForm.service_fields)
    actions = ("dismiss_selected", "escalate_selected", "reopen_selected")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # alerts are raised by the rules, not typed in

    @admin.display(description="subject")
    def subject_shown(self, obj: Alert) -> str:
        kind = "shipment" if obj.shipment_id else "person"  # both entity types have the same page
        return admin_link(kind, obj.shipment_id or obj.entity_id, obj.label)

    @admin.display(description="related")
    def related_shown(self, obj: Alert) -> str:
        items = [item for item in obj.related or () if isinstance(item, dict)]
        if not items:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}{}</li>", (
            (item.get("type", "?"), admin_link(str(item.get("type")), item.get("id"), str(item.get("label", ""))),
             _extra(item)) for item in items)))

    # --- one alert: its page -------------------------------------------------------------------

    def update_record(self, request: HttpRequest, stored: Alert, data: dict[str, Any]) -> Alert:
        # The form always sends the status: only a new one is a user's decision (one the system closed stays so
        # when only its case changes).
        changes = {"case": data.get("case")}
        if data.get("status") != stored.status:
            changes["status"] = data.get("status")
        return services.alert_update(request.user, stored, **changes)

    # --- many alerts: the bulk actions ---------------------------------------------------------

    def set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        self.change_each(request, queryset, lambda alert: services.alert_update(request.user, alert, status=status),
                         done=f"{{count}} alert(s) set to {status}.")

    @admin.action(description="Dismiss the selected alerts", permissions=["change"])
    def dismiss_selected(self, request, queryset) -> None:
        self.set_status(request, queryset, AlertStatus.DISMISSED)

    @admin.action(description="Escalate the selected alerts", permissions=["change"])
    def escalate_selected(self, request, queryset) -> None:
        self.set_status(request, queryset, AlertStatus.ESCALATED)

    @admin.action(description="Reopen the selected alerts", permissions=["change"])
    def reopen_selected(self, request, queryset) -> None:
        self.set_status(request, queryset, AlertStatus.OPEN)


def _extra(item: dict[str, Any]) -> str:
    """A related item's other keys (a watchlist entry's list, programmes, score, reasons), readably."""
    extra = {key: value for key, value in item.items() if key not in RELATED_KEYS}
    if not extra:
        return ""
    parts = [f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
             for key, value in extra.items()]
    return format_html(" ({})", "; ".join(parts))
