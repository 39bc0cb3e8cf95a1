"""The one domain error of the project's rules, and the helpers every app's `rules.py` uses.

A rule is a plain function in its app's `rules.py`; it raises `RuleViolation({field: [message, ...]})`.
Services call the rules; `core.api.exceptions` turns a violation into DRF's 400 and `core.admin`
into form errors, so each message is written once and reads the same through every door.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db.models import QuerySet

NON_FIELD = "non_field_errors"


class RuleViolation(Exception):
    """A write broke one or more of a record's rules: `errors` maps each field to its messages."""

    def __init__(self, errors: Mapping[str, str | Iterable[str]]) -> None:
        self.errors: dict[str, list[str]] = {
            field: [messages] if isinstance(messages, str) else list(messages) for field, messages in errors.items()
        }
        super().__init__(self.errors)


class StateConflict(Exception):
    """A forbidden state change (a case or prosecution moved out of order): the API's 409."""


def unique(others: QuerySet, *, field: str, message: str, exclude_pk: Any = None) -> None:
    """A uniqueness rule: RuleViolation on `field` when `others` (the rows holding the same key) has a row but
    the one being written (`exclude_pk`)."""
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise RuleViolation({field: [message]})


def check_all(*checks: Callable[[], None]) -> None:
    """Run every check, then raise one RuleViolation naming all that they found."""
    found = Violations()
    for check in checks:
        try:
            check()
        except RuleViolation as exc:
            found.merge(exc)
    found.raise_if_any()


class Violations:
    """Collects every broken rule of a write, so one answer names every bad field."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def merge(self, exc: RuleViolation) -> None:
        for field, messages in exc.errors.items():
            self.errors.setdefault(field, []).extend(messages)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise RuleViolation(self.errors)
