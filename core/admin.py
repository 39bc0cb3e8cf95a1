"""The admin speaks the same access policy as the API, and every edit is audited."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.db import transaction

from core import policy, services
from core.snapshots import snapshot


class PolicyAdminMixin:
    """Rows and permissions from `core.policy`, not from Django's model permissions."""

    model: Any
    create_action: str | None = None

    def get_queryset(self, request):
        return policy.visible(request.user, super().get_queryset(request))  # type: ignore[misc]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or policy.visible(request.user, self.model).filter(pk=obj.pk).exists()

    def has_add_permission(self, request, obj=None) -> bool:
        return self.create_action is not None and policy.allows(request.user, self.create_action)

    def has_change_permission(self, request, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        writable = policy.writable(request.user, self.model)
        return writable.filter(pk=obj.pk).exists() if obj is not None else writable.exists() or (
            self.create_action is not None and policy.allows(request.user, self.create_action)
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing is destroyed; records are archived


class AuditedModelAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Saves go through the audited services, in one transaction with their audit event."""

    readonly_fields: ClassVar[tuple[str, ...]] = ("id", "version", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change else None
            self.fill_owner(request, obj, change)
            super().save_model(request, obj, form, change)
            request._audit_pending = (obj, before)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            obj, before = getattr(request, "_audit_pending", (form.instance, None))
            if before is None:
                services.audit_create(obj, actor=request.user)
            else:
                services.audit_change(obj, before, actor=request.user, action=self.audit_action(before, obj))

    def audit_action(self, before, obj) -> str:
        return "update"

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for deleted in formset.deleted_objects:
            services.archive(deleted, actor=request.user)
        for instance in instances:
            adding = instance._state.adding
            before = None if adding else snapshot(type(instance)._default_manager.get(pk=instance.pk))
            self.fill_inline_owner(request, instance)
            instance.save()
            if adding:
                services.audit_create(instance, actor=request.user)
            else:
                assert before is not None  # taken above for every row that is not being added
                services.audit_change(instance, before, actor=request.user)
        formset.save_m2m()

    def fill_owner(self, request, obj, change) -> None:
        """Agency-owned records take the editor's agency when created."""
        if not change and hasattr(obj, "agency_id") and obj.agency_id is None:
            obj.agency = request.user.agency

    def fill_inline_owner(self, request, instance) -> None:
        """Hook for inline rows (e.g. a note's author)."""
