"""Red-flag alerts (API.md § Alerts): what a rule (alerts.redflags) found on a shipment, an organisation or a
person, with its reasons. One alert per rule and subject: a rule that fires again refreshes its alert, a rule
that no longer fires closes its open alert (`dismissed`, `closed_reason` set), and one that fires again after
that opens it again; an alert a user dismissed stays dismissed."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import AgencyOwnedModel
from xref.models import RunStatus  # a run's states, as cross-referencing's full passes have them


class AlertRule(models.TextChoices):
    UNLICENSED_EXPORT = "unlicensed_export"
    LICENCE_EXCEEDED = "licence_exceeded"
    LICENCE_INVALID = "licence_invalid"
    THIRD_COUNTRY_TRANSIT = "third_country_transit"
    MISDECLARED_COMMODITY = "misdeclared_commodity"
    NEW_COMPANY = "new_company"
    SHARED_ADDRESS = "shared_address"
    SHARED_PHONE = "shared_phone"
    SHARED_OFFICER = "shared_officer"
    VALUE_ANOMALY = "value_anomaly"
    WATCHLIST_MATCH = "watchlist_match"


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"


class Alert(AgencyOwnedModel):
    rule = models.CharField(max_length=24, choices=AlertRule.choices, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True)
    # the subject: a shipment, or an entity (person or organisation); exactly one is set
    shipment = models.ForeignKey("shipments.Shipment", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="alerts")
    entity = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="alerts")
    label = models.CharField(max_length=300, blank=True, help_text="The subject's reference or name")
    related = models.JSONField(default=list, blank=True,
                               help_text="What the rule found beside the subject: [{type, id, label, …}]")
    explanation = models.TextField(blank=True)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")
    closed_reason = models.CharField(max_length=100, blank=True,
                                     help_text="Set when the system closed it (the rule no longer fires, delisted)")
    status_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                          blank=True, related_name="+")
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(shipment__isnull=True) ^ models.Q(entity__isnull=True),
                                   name="alert_one_subject"),
            models.UniqueConstraint(fields=["rule", "shipment"], condition=models.Q(shipment__isnull=False),
                                    name="alert_one_per_rule_shipment"),
            models.UniqueConstraint(fields=["rule", "entity"], condition=models.Q(entity__isnull=False),
                                    name="alert_one_per_rule_entity"),
        ]
        indexes = [models.Index(fields=["agency", "archived", "status", "-created_at"], name="alert_agency_status")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.label} ({self.status})"

    @property
    def subject(self) -> models.Model | None:
        return self.shipment if self.shipment_id else self.entity


class AlertRun(AgencyOwnedModel):
    """A full pass of the red-flag rules over an agency's shipments and entities (`manage.py alerts`), split into
    `parts` tasks that workers share (`plan`: each part's kind and first and last id). `counts`: what the parts
    wrote so far (created, refreshed, reopened, closed, evaluated)."""

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    plan = models.JSONField(default=list, blank=True, editable=False)
    parts = models.PositiveIntegerField(default=0)
    # the parts finished, so that a part delivered twice counts once
    done_parts = ArrayField(models.PositiveIntegerField(), default=list, blank=True, editable=False)
    counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"alerts run {self.pk} ({self.status})"
