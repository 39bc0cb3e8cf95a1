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
