"""Audited writes shared by the API, the admin, importers and workers."""

from __future__ import annotations

from typing import Any, cast

from django.db import models

from audit.services import record

from .snapshots import diff, snapshot


def owning_agency(obj: models.Model) -> Any:
    """The agency whose chain records a change to `obj` (a case's child belongs to its case's agency)."""
    if obj._meta.label_lower == "cases.caseshare":
        return cast(Any, obj).case.agency  # a share's `agency` is the one the case is shared with, not its owner
    agency = getattr(obj, "agency", None)
    if agency is None and hasattr(obj, "case"):
        agency = obj.case.agency
    return agency


def case_of(obj: models.Model) -> Any:
    if obj._meta.label_lower == "cases.case":
        return obj.pk
    return getattr(obj, "case_id", None)


def audit_create(obj: models.Model, *, actor: Any = None, action: str = "create") -> None:
    record(action=action, obj=obj, actor=actor, agency=owning_agency(obj), case_id=case_of(obj),
           changes=diff({}, snapshot(obj)))


def audit_change(
    obj: models.Model, before: dict[str, Any], *, action: str = "update", actor: Any = None, related: bool = True
) -> None:
    """Record what changed since `before`; `related` False when `before` was taken without the record's
    many-to-many ids and children (the write changed none of them), so neither side reads them."""
    changes = diff(before, snapshot(obj, related=related))
    if changes or action != "update":
        record(action=action, obj=obj, actor=actor, agency=owning_agency(obj), case_id=case_of(obj),
               changes=changes)


def archive(obj: models.Model, *, actor: Any = None) -> None:
    before = snapshot(obj)
    obj.archived = True  # type: ignore[attr-defined]
    obj.save()
    audit_change(obj, before, action="archive", actor=actor)


def idempotent_response_keep(*, user: Any, key: str, fingerprint: str, status: int, body: bytes,
                             headers: dict[str, str]) -> Any:
    """Keep the first answer to a POST with an Idempotency-Key; an expired one under the same key (not yet purged)
    is replaced."""
    from django.utils import timezone

    from .models import IdempotentResponse

    kept, _ = IdempotentResponse.objects.update_or_create(
        user=user, key=key,
        defaults={"fingerprint": fingerprint, "status": status, "body": body, "headers": headers,
                  "created_at": timezone.now()})
    return kept


def idempotent_responses_purge(*, before: Any) -> int:
    """Forget the answers kept before `before`: their keys may be used afresh."""
    from .models import IdempotentResponse

    deleted, _ = IdempotentResponse.objects.filter(created_at__lt=before).delete()
    return deleted
