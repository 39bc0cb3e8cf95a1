from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from accounts.models import User

from . import factories


@pytest.fixture
def world(db) -> SimpleNamespace:
    """Two agencies, each with two units: the stage every access test plays on."""
    a = factories.agency("SSB", "State Security Bureau")
    b = factories.agency("ASB", "Anti-Smuggling Bureau")
    return SimpleNamespace(
        a=a, b=b,
        a1=factories.unit(a, "econ"), a2=factories.unit(a, "cyber"),
        b1=factories.unit(b, "ports"), b2=factories.unit(b, "intel"),
    )


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    """An API client authenticated with a real token of `user` (anonymous when None)."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {factories.token(user)}")
        return client

    return make


@pytest.fixture
def investigator(world) -> User:
    return factories.user(world.a, "investigator", world.a1, username="inv-a1")


@pytest.fixture
def supervisor(world) -> User:
    return factories.user(world.a, "supervisor", world.a1, username="sup-a")


@pytest.fixture
def api(client_for, investigator) -> APIClient:
    return client_for(investigator)


@pytest.fixture(autouse=True)
def _commodities(request):
    """Transactional tests empty every table on exit, the seeded commodities included: seed them again."""
    names = request.fixturenames
    marker = request.node.get_closest_marker("django_db")
    if marker is None and "db" not in names and "transactional_db" not in names:
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from cases.commodities import seed_commodities
    from cases.models import Commodity

    if not Commodity.objects.exists():
        seed_commodities(Commodity)


@pytest.fixture(autouse=True)
def _matching_caches_forgotten() -> None:
    """The matching engine keeps counts of the database's records in each process for a minute (index key counts,
    records by type). Every test starts from a database of its own, so it starts with none: a count left by the
    previous test's records once made a test's two runs of one pass score 8 of 600 pairs differently."""
    from xref.matching import score

    score.forget_caches()


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_audit_triggers() -> Iterator[None]:
    """A transactional test ends by emptying every table with TRUNCATE, which the audit tables refuse (their
    triggers): the suite's flush runs with triggers off for its own transaction, as only a superuser may."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    plain = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        plain(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign,assignment]
    yield
    DatabaseOperations.execute_sql_flush = plain  # type: ignore[method-assign,assignment]


@pytest.fixture(scope="session", autouse=True)
def _empty_the_suites_queues() -> Iterator[None]:
    """Tasks the suite's writes sent after commit wait in its own queues (TASK_QUEUE_PREFIX), which no worker
    consumes: drop them after the run (best effort; the broker may be away)."""
    yield
    from typing import Any, cast

    from django.conf import settings

    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            client = cast(Any, connection.default_channel).client
            client.delete(*(f"{settings.TASK_QUEUE_PREFIX}{queue}" for queue in settings.TASK_QUEUES))
    except Exception:  # noqa: S110  (nothing to clean when the broker is away)
        pass


@pytest.fixture
def eager(settings):
    """Celery tasks run in the test's own process when they are sent (the job runs on commit)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
