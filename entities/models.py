"""The agency's master index: one record per real-world person or organisation, shared by many cases.

Persons and organisations live in one table (`Entity`, FollowTheMoney's LegalEntity) so that a
reference to "a party" is one foreign key, search and cross-referencing scan one index, and
bulk imports can use bulk inserts. `Person` and `Organization` are proxies that see one type each.
"""

from __future__ import annotations

from typing import ClassVar

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from core.models import AgencyOwnedModel

from .normalize import name_keys, search_text


class EntityType(models.TextChoices):
    PERSON = "person"
    ORGANIZATION = "organization"


class OrganizationKind(models.TextChoices):
    COMPANY = "company"
    SHELL_COMPANY = "shell_company"
    PRODUCER = "producer"
    TRADER = "trader"
    FREIGHT_FORWARDER = "freight_forwarder"
    BANK = "bank"
    GOVERNMENT = "government"
    OTHER = "other"


class IdentifierScheme(models.TextChoices):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    TAX_ID = "tax_id"
    OTHER = "other"


class Entity(AgencyOwnedModel):
    type = models.CharField(max_length=12, choices=EntityType.choices, db_index=True)
    name = models.CharField(max_length=300)
    names = ArrayField(models.CharField(max_length=300), default=list, blank=True,
                       help_text="Every known variant, native script included")
    # persons
    gender = models.CharField(max_length=16, blank=True)
    birth_date = models.DateField(null=True, blank=True, db_index=True)
    birth_place = models.CharField(max_length=200, blank=True)
    nationalities = ArrayField(models.CharField(max_length=2), default=list, blank=True)
    # organisations
    kind = models.CharField(max_length=20, choices=OrganizationKind.choices, blank=True)
    jurisdiction = models.CharField(max_length=2, blank=True, db_index=True)
    registration_number = models.CharField(max_length=100, blank=True, db_index=True)
    incorporated_on = models.DateField(null=True, blank=True)
    dissolved_on = models.DateField(null=True, blank=True)
    website = models.CharField(max_length=300, blank=True)
    # contact points and identifiers, shared by both
    identifiers = models.JSONField(default=list, blank=True,
                                   help_text='[{"scheme", "number", "country"}]')
    addresses = models.JSONField(default=list, blank=True, help_text='[{"text", "country"}]')
    phones = ArrayField(models.CharField(max_length=32), default=list, blank=True, help_text="E.164")
    emails = ArrayField(models.CharField(max_length=254), default=list, blank=True)
    notes = models.TextField(blank=True)
    source = models.CharField(max_length=100, blank=True, db_index=True)
    source_id = models.CharField(max_length=200, blank=True)
    # watchlists (API.md § Watchlists): what a listed record is listed for (FollowTheMoney topics: `sanction`,
    # `crime`, `role.pep`, …) and the lists that list it now (their `source`), kept by watchlists.services
    topics = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    lists = ArrayField(models.CharField(max_length=100), default=list, blank=True, editable=False)
    # derived, for search and filters
    search_text = models.TextField(blank=True, editable=False)
    identifier_numbers = ArrayField(models.CharField(max_length=100), default=list, blank=True, editable=False)
    name_keys = ArrayField(models.CharField(max_length=300), default=list, blank=True, editable=False,
                           help_text="Every name normalised (an organisation's without its legal form): exact "
                                     "matches, e.g. an import's shipment parties, found by one index lookup")

    entity_type: ClassVar[str] = ""  # set by the Person and Organization proxies
    # The fields `refresh_derived` computes from the others: a bulk writer writes them with any change.
    DERIVED_FIELDS: ClassVar[tuple[str, ...]] = ("search_text", "identifier_numbers", "name_keys")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "entities"
        constraints = [
            models.UniqueConstraint(fields=["agency", "source", "source_id"], condition=~models.Q(source_id=""),
                                    name="entity_source_id_per_agency"),
        ]
        indexes = [
            # The lists' default order (name, id): a page is read off the index, not sorted out of every row.
            models.Index(fields=["name", "id"], name="entity_name_id"),
            GinIndex(fields=["search_text"], opclasses=["gin_trgm_ops"], name="entity_search_trgm"),
            GinIndex(fields=["phones"], name="entity_phones"),
            GinIndex(fields=["emails"], name="entity_emails"),
            GinIndex(fields=["nationalities"], name="entity_nationalities"),
            GinIndex(fields=["identifier_numbers"], name="entity_identifier_numbers"),
            GinIndex(fields=["name_keys"], name="entity_name_keys"),
            GinIndex(fields=["topics"], name="entity_topics"),
            GinIndex(fields=["lists"], name="entity_lists"),
            models.Index(fields=["agency", "type", "archived"], name="entity_agency_type"),
        ]

    def __str__(self) -> str:
        return self.name

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.entity_type and not self.type:
            self.type = self.entity_type

    def refresh_derived(self) -> None:
        """Recompute the derived fields (`DERIVED_FIELDS`) from the record's own fields."""
        is_company = self.type == EntityType.ORGANIZATION
        self.search_text = search_text([self.name, *self.names], is_company=is_company)
        self.name_keys = name_keys([self.name, *self.names], is_company=is_company)
        numbers = [str(i.get("number", "")) for i in self.identifiers if isinstance(i, dict)]
        if self.registration_number:
            numbers.append(self.registration_number)
        self.identifier_numbers = sorted({_compact(n) for n in numbers if _compact(n)})

    def save(self, *args, **kwargs):
        if self.entity_type:
            self.type = self.entity_type
        if self.type == EntityType.ORGANIZATION and not self.kind:
            self.kind = OrganizationKind.COMPANY
        self.refresh_derived()
        super().save(*args, **kwargs)


def _compact(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


class _TypedManager(models.Manager):
    def __init__(self, entity_type: str) -> None:
        super().__init__()
        self.entity_type = entity_type

    def get_queryset(self):
        return super().get_queryset().filter(type=self.entity_type)

    def create(self, **kwargs):
        kwargs.setdefault("type", self.entity_type)
        return super().create(**kwargs)


class Person(Entity):
    entity_type = EntityType.PERSON
    objects: ClassVar[_TypedManager] = _TypedManager(EntityType.PERSON)

    class Meta:
        proxy = True
        ordering = ["name"]


class Organization(Entity):
    entity_type = EntityType.ORGANIZATION
    objects: ClassVar[_TypedManager] = _TypedManager(EntityType.ORGANIZATION)

    class Meta:
        proxy = True
        ordering = ["name"]


def as_typed(entity: Entity) -> Entity:
    """The same row as a Person or an Organization, so its type shows in model_name."""
    proxy = Person if entity.type == EntityType.PERSON else Organization
    if type(entity) is not proxy:
        entity.__class__ = proxy
    return entity


class LinkKind(models.TextChoices):
    FAMILY = "family"
    ASSOCIATE = "associate"
    OWNERSHIP = "ownership"
    DIRECTORSHIP = "directorship"
    EMPLOYMENT = "employment"
    FINANCING = "financing"
    REPRESENTATION = "representation"


class Confidence(models.TextChoices):
    CONFIRMED = "confirmed"
    PROBABLE = "probable"
    POSSIBLE = "possible"


class Link(AgencyOwnedModel):
    """A typed, dated relation between two entities (FollowTheMoney's interval entities)."""

    kind = models.CharField(max_length=16, choices=LinkKind.choices, db_index=True)
    subtype = models.CharField(max_length=32, blank=True)
    source = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="links_out")
    target = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="links_in")
    share_pct = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    description = models.TextField(blank=True)
    confidence = models.CharField(max_length=10, choices=Confidence.choices, default=Confidence.PROBABLE)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, blank=True, related_name="links")
    provenance_source = models.CharField(max_length=100, blank=True, help_text="Import source label")
    provenance_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "provenance_source", "provenance_id"],
                                    condition=~models.Q(provenance_id=""), name="link_source_id_per_agency"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="link_not_to_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.source} —{self.kind}→ {self.target}"
