"""Bulk import jobs (API.md § Bulk import): one uploaded file, its counts and its bad rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import AgencyOwnedModel


class ImportKind(models.TextChoices):
    PERSONS = "persons"
    ORGANIZATIONS = "organizations"
    LINKS = "links"
    SHIPMENTS = "shipments"
    FTM = "ftm"
    OFAC_SDN = "ofac_sdn"


class ImportMode(models.TextChoices):
    PARTIAL = "partial"
    ATOMIC = "atomic"
    DRY_RUN = "dry_run"


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED, ImportStatus.CANCELLED)


class ImportJob(AgencyOwnedModel):
    file = models.FileField(upload_to="imports/%Y/%m/")
    sha256 = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    mode = models.CharField(max_length=10, choices=ImportMode.choices, default=ImportMode.PARTIAL)
    source = models.CharField(max_length=100, blank=True, help_text="Source label for rows without a source column")
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED,
                              db_index=True)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed_rows = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.status})"


class ImportCancelRequest(models.Model):
    """A request to stop a running job after its current batch. A row of its own, not a column of the job: an
    atomic job holds its job's row locked in its one transaction until it ends, and the request must neither
    wait for that nor be rolled back with it. The job reads it after every batch."""

    job = models.OneToOneField(ImportJob, on_delete=models.CASCADE, primary_key=True, related_name="cancel_request")
    requested_at = models.DateTimeField(auto_now_add=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")

    def __str__(self) -> str:
        return f"cancel import {self.job_id}"


class ImportRowError(models.Model):
    """One bad field of one row (row 1 is the first data row); field '' for the row as a whole."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="errors")
    row = models.PositiveIntegerField()
    field = models.CharField(max_length=100, blank=True)
    message = models.TextField()
    # The row as the file gave it (column → value; imports.kinds.row_values bounds it), to find and fix the row.
    values = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["job", "row"], name="import_error_job_row")]

    def __str__(self) -> str:
        return f"row {self.row} {self.field}: {self.message}"
