from django.contrib import admin

from core.admin import AuditedModelAdmin
from entities.models import Entity, Link, Organization, Person


class EntityAdminBase(AuditedModelAdmin):
    search_fields = ("name", "search_text", "registration_number")
    list_filter = ("archived",)
    readonly_fields = ("id", "agency", "version", "created_at", "updated_at")
    create_action = "entity.change"


@admin.register(Entity)
class EntityAdmin(EntityAdminBase):
    """Backs the autocomplete of every entity reference; persons and organisations have their own pages."""

    list_display = ("name", "type", "agency")

    def has_module_permission(self, request) -> bool:
        return False


@admin.register(Person)
class PersonAdmin(EntityAdminBase):
    list_display = ("name", "birth_date", "nationalities", "agency")
    exclude = ("type", "kind", "jurisdiction", "registration_number", "incorporated_on", "dissolved_on", "website")


@admin.register(Organization)
class OrganizationAdmin(EntityAdminBase):
    list_display = ("name", "kind", "jurisdiction", "registration_number", "agency")
    list_filter = ("kind", "jurisdiction", "archived")
    exclude = ("type", "gender", "birth_date", "birth_place", "nationalities")


@admin.register(Link)
class LinkAdmin(AuditedModelAdmin):
    list_display = ("source", "kind", "subtype", "target", "confidence", "start_date", "end_date")
    list_filter = ("kind", "confidence", "archived")
    autocomplete_fields = ("source", "target", "case")
    readonly_fields = ("id", "agency", "version", "created_at", "updated_at")
    create_action = "link.change"
