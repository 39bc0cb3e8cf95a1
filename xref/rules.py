"""The rules of cross-referencing's writes (decisions and runs), each written once.

A broken rule raises `RuleViolation({field: [message]})` (the API's 400, a form error in the admin); a decision
the match's state forbids raises `StateConflict` (409). Who may decide or run is the policy's (core.policy).
"""

from __future__ import annotations

from typing import Any

from core.rules import RuleViolation, StateConflict

from .models import MatchStatus

DECISIONS = tuple(MatchStatus.values)
NOTE_MAX = 5000


def check_decision(decision: Any, note: Any) -> None:
    """A decision is one of confirmed, rejected or pending (the last undoes an earlier decision); a note is text."""
    errors: dict[str, list[str]] = {}
    if decision not in DECISIONS:
        errors["decision"] = [f"Expected one of {', '.join(DECISIONS)}."]
    if not isinstance(note, str):
        errors["note"] = ["Expected text."]
    elif len(note) > NOTE_MAX:
        errors["note"] = [f"At most {NOTE_MAX} characters."]
    if errors:
        raise RuleViolation(errors)


def check_decidable(match: Any) -> None:
    """A withdrawn match (its pair fell below the threshold, or one of its records was archived) is no longer
    proposed: there is nothing to decide until it is proposed again."""
    if match.archived:
        raise StateConflict("This match was withdrawn (its records no longer match, or one was archived).")


def check_run(agency: Any, case: Any) -> None:
    """A run covers one agency's records, or the parties of one of its own cases."""
    if agency is None:
        raise RuleViolation({"agency": ["A run needs an agency."]})
    if case is not None and case.agency_id != agency.pk:
        raise RuleViolation({"case": ["A run covers a case of its own agency only."]})
