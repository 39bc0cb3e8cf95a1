"""The rules of cases and what belongs to them, each written once.

Plain functions over plain values: the services call them, and so every door (API, admin, importer, a script)
gives the same answer in the same words. A broken rule raises `RuleViolation({field: [message]})` (a 400 in the
API, a form error in the admin); a forbidden state change raises `StateConflict` (a 409).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied

from core.rules import RuleViolation, StateConflict, Violations

from .choices import CaseStatus
from .models import ProsecutionStage, Verdict

# --- cases ---------------------------------------------------------------------------------

FORWARD: dict[str, str] = {
    CaseStatus.OPEN: CaseStatus.INVESTIGATING,
    CaseStatus.INVESTIGATING: CaseStatus.REFERRED,
}


def case_initial_status(status: str | None) -> None:
    """A case is created open."""
    if status is not None and status != CaseStatus.OPEN:
        raise RuleViolation({"status": ["A new case starts as open."]})


def case_status_move(current: str, target: str) -> str:
    """The policy action (core.policy.ACTION_ROLES) a status move needs; StateConflict when the status machine
    forbids it (API.md § Cases: forward one step, `closed` from anywhere, reopening `closed` → `investigating`)."""
    if current == target:
        return "case.change"
    if target == CaseStatus.CLOSED:
        return "case.close"
    if current == CaseStatus.CLOSED and target == CaseStatus.INVESTIGATING:
        return "case.reopen"
    if FORWARD.get(current) == target:
        return "case.change"
    raise StateConflict(f"A case cannot move from {current} to {target}.")


class MoveRefused(PermissionDenied):
    """The status machine allows a move the user's role may not make (a 403, shown on `status` in the admin)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"Your role may not move a case to {target}.")


CLEARANCE_MESSAGE = "Above your clearance: you could not read this case."


# --- parties, notes and shares ---------------------------------------------------------------


def choice(field: str, value: Any, choices: Iterable[str]) -> None:
    """A value of a closed list (a party's role, custody status), in the words DRF uses for its choice fields."""
    if value not in set(choices):
        raise RuleViolation({field: [f'"{value}" is not a valid choice.']})


def note_body(body: str) -> None:
    if not (body or "").strip():
        raise RuleViolation({"body": ["A note has a body."]})


def party_entity(*, case_agency_id: Any, entity: Any) -> None:
    """A case party is an entity of the case's agency's master index."""
    if entity.agency_id != case_agency_id:
        raise RuleViolation({"entity": ["A party of a case is an entity of the case's agency."]})


def no_such_unit(agency_code: str, unit_code: str) -> str:
    return f"Agency {agency_code} has no unit {unit_code!r}."


def share_target(*, case_agency_id: Any, agency: Any, unit: Any) -> None:
    """A case is shared with another agency, or with one of that agency's units."""
    errors = Violations()
    if agency is not None and agency.pk == case_agency_id:
        errors.add("agency", "A case is shared with another agency, not its own.")
    elif agency is not None and unit is not None and unit.agency_id != agency.pk:
        errors.add("unit", no_such_unit(agency.code, unit.code))
    errors.raise_if_any()


# --- evidence ----------------------------------------------------------------------------------


def evidence_too_large(size: int, limit: int) -> str | None:
    """Why a file cannot be evidence for its size (None when it can); the API answers it with a 413."""
    if size > limit:
        return f"The file is {size} bytes; evidence files may be at most {limit} bytes."
    return None


# --- prosecutions ----------------------------------------------------------------------------

# The stage a prosecution may move to from each stage (API.md § Prosecutions): forward only, one step at a time,
# except that a verdict may become final without an appeal.
PROSECUTION_NEXT: dict[str, tuple[str, ...]] = {
    ProsecutionStage.INVESTIGATION: (ProsecutionStage.INDICTED,),
    ProsecutionStage.INDICTED: (ProsecutionStage.TRIAL,),
    ProsecutionStage.TRIAL: (ProsecutionStage.VERDICT,),
    ProsecutionStage.VERDICT: (ProsecutionStage.APPEAL, ProsecutionStage.FINAL),
    ProsecutionStage.APPEAL: (ProsecutionStage.FINAL,),
    ProsecutionStage.FINAL: (),
}

SENTENCE_FIELDS = ("custody_months", "fine_amount", "fine_currency", "confiscation")


def prosecution_stage_move(current: str, target: str) -> bool:
    """Whether `current` → `target` is a move (False when the stage stays); StateConflict when forbidden.
    A new prosecution may start at any stage: the machine governs moves, not where a record starts."""
    if current == target:
        return False
    allowed = PROSECUTION_NEXT.get(current, ())
    if target in allowed:
        return True
    stages = list(ProsecutionStage.values)
    if target in stages and current in stages and stages.index(target) < stages.index(current):
        reason = "stages only move forward"
    elif allowed:
        reason = f"the next stage is {' or '.join(allowed)}"
    else:
        reason = f"{current} is the last stage"
    raise StateConflict(f"A prosecution cannot move from {current} to {target}: {reason}.")


def prosecution_case(*, current_case_id: Any, case_id: Any) -> None:
    if case_id != current_case_id:
        raise RuleViolation({"case": ["A prosecution stays in its case."]})


def prosecution_values(values: Mapping[str, Any], *, case_agency_id: Any) -> None:
    """The rules over a prosecution's values as they will be stored (every field, not only those sent):
    the defendant's agency, the verdict and its date, and the sentence (`sentence` is the API's name for the
    custody, fine and confiscation together)."""
    errors = Violations()
    defendant = values.get("defendant")
    if defendant is not None and defendant.agency_id != case_agency_id:
        errors.add("defendant", "The defendant must be of the case's agency.")
    filed_on, verdict_on = values.get("filed_on"), values.get("verdict_on")
    verdict = values.get("verdict") or Verdict.PENDING
    if verdict_on is not None and verdict == Verdict.PENDING:
        errors.add("verdict_on", "A verdict date needs a verdict.")
    elif verdict_on is not None and filed_on is not None and verdict_on < filed_on:
        errors.add("verdict_on", "The verdict cannot come before the filing.")
    if verdict != Verdict.CONVICTED and any(values.get(name) not in (None, "") for name in SENTENCE_FIELDS):
        errors.add("sentence", "Only a conviction carries a sentence: clear the sentence with this verdict.")
    if (values.get("fine_amount") is None) != (not values.get("fine_currency")):
        errors.add("sentence", "A fine has an amount and a currency, or neither.")
    errors.raise_if_any()
