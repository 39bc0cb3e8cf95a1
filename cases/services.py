"""Case rules: references, the status machine."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .choices import CaseStatus
from .models import CaseCounter

FORWARD: dict[str, str] = {
    CaseStatus.OPEN: CaseStatus.INVESTIGATING,
    CaseStatus.INVESTIGATING: CaseStatus.REFERRED,
}


class TransitionNotAllowed(Exception):
    pass


def case_next_reference(*, agency: Any, year: int | None = None) -> str:
    """`<AGENCY>-<YEAR>-<NNNN>`; the counter row is locked so concurrent creations get distinct numbers."""
    year = year or timezone.now().year
    with transaction.atomic():
        CaseCounter.objects.get_or_create(agency=agency, year=year)
        counter = CaseCounter.objects.select_for_update().get(agency=agency, year=year)
        counter.last += 1
        counter.save(update_fields=["last"])
    return f"{agency.code}-{year}-{counter.last:04d}"


def case_transition_action(current: str, target: str) -> str:
    """The policy action a move needs, or TransitionNotAllowed when the status machine forbids it."""
    if current == target:
        return "case.change"
    if target == CaseStatus.CLOSED:
        return "case.close"
    if current == CaseStatus.CLOSED and target == CaseStatus.INVESTIGATING:
        return "case.reopen"
    if FORWARD.get(current) == target:
        return "case.change"
    raise TransitionNotAllowed(f"A case cannot move from {current} to {target}.")
