"""The rules of a user's change to an alert (its status, the case it is attached to), each written once.

A broken rule raises `RuleViolation({field: [message]})` (the API's 400, a form error in the admin); a change the
alert's state forbids raises `StateConflict` (409). Who may change an alert is the policy's (`alert.change`);
which cases a user may attach one to is asked of the policy here, so the API, the admin and a script agree.
"""

from __future__ import annotations

from typing import Any

from core import policy
from core.rules import RuleViolation, StateConflict, check_all

from .models import AlertStatus

STATUSES = tuple(AlertStatus.values)
NO_SUCH_CASE = "No case with this id is available here: a case of the alert's agency that you may write."
# Attaching an alert to a case adds to the case's content; the lowest role that writes a case's content (its notes)
# may do it, as analysts do alerts' status.
CASE_ACTION = "case.note"


def check_status(status: Any) -> None:
    if status not in STATUSES:
        raise RuleViolation({"status": [f"Expected one of {', '.join(STATUSES)}."]})


def attachable_cases(user: Any, alert: Any) -> Any:
    """The cases `user` may attach `alert` to: live cases of the alert's agency that the user sees and may write."""
    return policy.cases_writable(user, CASE_ACTION).filter(agency_id=alert.agency_id, archived=False)


def check_case(user: Any, alert: Any, case: Any) -> None:
    """`case` (None detaches) is a case the user may attach the alert to; a foreign, hidden or read-only case gets
    the same answer, so probing ids tells nothing. A case already attached may stay (it is not attached anew)."""
    if case is None or case.pk == alert.case_id:
        return
    if user is not None and not attachable_cases(user, alert).filter(pk=case.pk).exists():
        raise RuleViolation({"case": [NO_SUCH_CASE]})
    if user is None and (case.agency_id != alert.agency_id or case.archived):
        raise RuleViolation({"case": [NO_SUCH_CASE]})


def check_changeable(alert: Any) -> None:
    """An archived alert (its subject archived) is no longer worked on."""
    if alert.archived:
        raise StateConflict("This alert was withdrawn (its subject was archived); it can no longer be changed.")


def check_update(user: Any, alert: Any, changes: dict[str, Any]) -> None:
    """Every rule of a user's change (`changes`: the fields given, `status` and/or `case`), all named at once."""
    checks = []
    if "status" in changes:
        checks.append(lambda: check_status(changes["status"]))
    if "case" in changes:
        checks.append(lambda: check_case(user, alert, changes["case"]))
    check_all(*checks)
    check_changeable(alert)
