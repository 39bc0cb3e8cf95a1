"""Base classes every record of the project stands on."""

import uuid

from django.db import models


class BaseModel(models.Model):
    """UUID id, timestamps, a version that grows with each change, and archiving instead of deletion."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    archived = models.BooleanField(default=False, db_index=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.version += 1
        super().save(*args, **kwargs)


class AgencyOwnedModel(BaseModel):
    """A record of one agency's; `agency` is always taken from the caller, never from input."""

    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class OutboxMessage(models.Model):
    """A task a write needs (core.outbox): written in the write's transaction, sent to the broker after its
    commit, or later by the dispatcher if the broker was away. While unsent, one row per (task, key) when a key
    is given: a second write of the same thing changes that row instead of adding work."""

    id = models.BigAutoField(primary_key=True)
    task = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    key = models.CharField(max_length=255, blank=True, default="")
    queue = models.CharField(max_length=100, blank=True, default="", help_text="Blank: the task's route")
    revision = models.PositiveIntegerField(default=1, help_text="Grows when a later write coalesces into the row")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Sends the broker refused")
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "key"],
                                    condition=models.Q(sent_at__isnull=True) & ~models.Q(key=""),
                                    name="outbox_one_unsent_per_key"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent"),
            models.Index(fields=["sent_at"], condition=models.Q(sent_at__isnull=False), name="outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.key or self.pk} ({'sent' if self.sent_at else 'unsent'})"


class HandledVersion(models.Model):
    """The last version of a record that `xref.records_changed` handled: a delivery of an older or the same
    version (a row sent twice, a late retry) finds its work done. Cross-referencing (the next step of the
    pipeline) does its work for each version this table moves forward."""

    model = models.CharField(max_length=100)
    record_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    handled_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "record_id"], name="handled_version_one_per_record")]

    def __str__(self) -> str:
        return f"{self.model} {self.record_id} v{self.version}"


class IdempotentResponse(models.Model):
    """The first answer to a POST sent with an `Idempotency-Key` (core.api.http): a retry by the same user with the
    same key and the same request gets it again instead of doing the work twice. Kept IDEMPOTENCY_KEEP_HOURS, then
    purged by beat's `core.idempotency.purge`."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body")
    status = models.PositiveSmallIntegerField()
    body = models.BinaryField(blank=True, default=b"")
    headers = models.JSONField(default=dict, help_text="Content-Type, Location and ETag as first answered")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotent_response_one_per_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
