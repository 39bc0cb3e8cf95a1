from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts import services
from accounts.models import Agency, ApiToken, Unit, User
from core import policy
from core.admin import PolicyAdminMixin


class AccountsAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Agencies and units, saved through their service (accounts.services), in one transaction with their event."""

    readonly_fields = ("id", "version", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if not change and hasattr(obj, "agency_id") and obj.agency_id is None:
            data["agency"] = request.user.agency  # a unit takes the editor's agency when none was chosen
        self.save_through_service(obj, actor=request.user, data=data)

    def save_through_service(self, obj, *, actor, data) -> None:
        raise NotImplementedError


@admin.register(Agency)
class AgencyAdmin(AccountsAdmin):
    list_display = ("code", "name", "contact")
    search_fields = ("code", "name")

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def save_through_service(self, obj, *, actor, data) -> None:
        services.agency_save(agency=obj, actor=actor, data=data)


@admin.register(Unit)
class UnitAdmin(AccountsAdmin):
    list_display = ("code", "name", "agency")
    list_filter = ("agency",)
    list_select_related = ("agency",)
    search_fields = ("code", "name")
    create_action = "accounts.change"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "agency":
            kwargs["queryset"] = policy.visible(request.user, Agency)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_through_service(self, obj, *, actor, data) -> None:
        services.unit_save(unit=obj, actor=actor, data=data)


@admin.register(User)
class UserAdmin(PolicyAdminMixin, DjangoUserAdmin):
    list_display = ("username", "agency", "unit", "role", "clearance", "is_active", "locked_until")
    list_filter = ("agency", "role", "clearance", "is_active")
    list_select_related = ("agency", "unit__agency")  # each row names its agency and unit ("SSB/econ")
    search_fields = ("username", "first_name", "last_name", "email")
    create_action = "accounts.change"
    actions = ["unlock"]
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),  # Django's own, never None
        ("Agency", {"fields": ("agency", "unit", "role", "clearance", "locked_until")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Agency", {"fields": ("agency", "unit", "role", "clearance")}),
    )

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        return ("is_superuser", "groups", "user_permissions", "last_login", "date_joined", "agency")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "agency":
            kwargs["queryset"] = policy.visible(request.user, Agency)
        if db_field.name == "unit":
            kwargs["queryset"] = policy.visible(request.user, Unit).select_related("agency")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser and not change:
            obj.agency = request.user.agency
        super().save_model(request, obj, form, change)
        services.record_admin_user_change(user=obj, actor=request.user, created=not change,
                                          fields=sorted(form.changed_data))

    @admin.action(description="Unlock the selected accounts")
    def unlock(self, request, queryset):
        for user in policy.writable(request.user, queryset):
            services.user_unlock(user=user, actor=request.user)
        self.message_user(request, "Unlocked.", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "user", "expires_at", "revoked_at", "last_used_at")

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("user")
        return qs if request.user.is_superuser else qs.filter(user__in=policy.writable(request.user, User))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return request.user.is_superuser or policy.allows(request.user, "accounts.change")

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)
