"""The one write path of cross-referencing's records (matches, decisions, identity clusters, runs).

Every writer (the workers' tasks, the API's decision and run endpoints, the admin, `manage.py xref`) calls these.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from .models import Match, XrefRun


def records_changed(entity_ids: list[Any]) -> int:
    """Cross-reference these entities after a committed write: (re)index their blocking keys, find their
    candidates, score them and upsert the matches (withdrawing those that no longer hold). Idempotent. Returns
    how many matches were created or changed."""
    raise NotImplementedError


def run_create(*, agency: Any, user: Any = None, case: Any = None) -> XrefRun:
    """Queue a full pass over the agency's records (or the case's parties) through the outbox; audited."""
    raise NotImplementedError


def match_decide(user: Any, match: Match, *, decision: str, note: str = "") -> Match:
    """Set a match's decision (confirmed | rejected | pending): identity clusters follow (a confirmation joins,
    a return to pending splits), audited as `decision`."""
    raise NotImplementedError


def same_as(entity_ids: list[Any]) -> dict[UUID, list[dict[str, Any]]]:
    """For each entity, the refs ({"type", "id"}) of the others in its identity cluster; in one query."""
    raise NotImplementedError
