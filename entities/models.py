"""The agency's master index: one record per real-world person or organisation, shared by many cases."""

from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import AgencyOwnedModel


class Person(AgencyOwnedModel):
    name = models.CharField(max_length=300, db_index=True)
    names = ArrayField(models.CharField(max_length=300), default=list, blank=True,
                       help_text="Every known variant, native script included")
    gender = models.CharField(max_length=16, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    birth_place = models.CharField(max_length=200, blank=True)
    nationalities = ArrayField(models.CharField(max_length=2), default=list, blank=True)
    notes = models.TextField(blank=True)
    source = models.CharField(max_length=100, blank=True)
    source_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OrganizationKind(models.TextChoices):
    COMPANY = "company"
    SHELL_COMPANY = "shell_company"
    PRODUCER = "producer"
    TRADER = "trader"
    FREIGHT_FORWARDER = "freight_forwarder"
    BANK = "bank"
    GOVERNMENT = "government"
    OTHER = "other"


class Organization(AgencyOwnedModel):
    name = models.CharField(max_length=300, db_index=True)
    names = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    kind = models.CharField(max_length=20, choices=OrganizationKind.choices, default=OrganizationKind.COMPANY)
    jurisdiction = models.CharField(max_length=2, blank=True)
    registration_number = models.CharField(max_length=100, blank=True, db_index=True)
    incorporated_on = models.DateField(null=True, blank=True)
    dissolved_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    source = models.CharField(max_length=100, blank=True)
    source_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
