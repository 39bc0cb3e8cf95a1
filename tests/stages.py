"""Data built once per test module, inside a transaction rolled back when the module is done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection, transaction
from django.test import override_settings

from cases.commodities import seed_commodities
from cases.models import Commodity

T = TypeVar("T")


@contextmanager
def built_once(django_db_blocker: Any, build: Callable[[], T], media_root: str | None = None) -> Iterator[T]:
    """Build with `build()`, yield it to every test of the module, then roll it all back.

    Each test still runs in its own savepoint (pytest-django's `db`), so tests cannot see each
    other's writes. Files go to `media_root` when given.
    """
    settings = override_settings(MEDIA_ROOT=media_root) if media_root else override_settings()
    with settings, django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            if not Commodity.objects.exists():  # emptied by a transactional test: seed once, not per test
                seed_commodities(Commodity)
            built = build()
            # Fire the deferred foreign-key checks now: left pending, each test's teardown would run them
            # all again inside its savepoint, and the rollback would queue them once more.
            connection.check_constraints()
            yield built
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
