"""The task pipeline when Redis or the broker is away: writes and reads go on, work is kept in the outbox and
sent when the broker returns, /readyz tells which service is missing, and throttles key on the real client."""

from __future__ import annotations

import math
import sys
import threading
import time
import uuid
from typing import Any

import pytest
import redis
from django.core.files.base import ContentFile
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from core.metrics import TASK_COUNTS_KEY
from imports.models import ImportJob

from . import factories
from .redis_server import broker_at, redis_server
from .test_imports import GOOD, persons_csv
from .worker import beat_process, worker_process


def _person(api: Any, name: str) -> Any:
    return api.post("/api/v1/persons/", {"name": name, "nationalities": ["CN"]}, format="json")


def _import(api: Any) -> Any:
    upload = ContentFile(persons_csv(GOOD), name="people.csv")
    return api.post("/api/v1/imports/", {"file": upload, "kind": "persons", "mode": "partial", "source": "outbox"},
                    format="multipart")


# --- throttles and the cache -----------------------------------------------------------------------------------


def test_a_spoofed_x_forwarded_for_does_not_escape_the_anon_throttle(db, monkeypatch):
    from django.core.cache import cache
    from rest_framework.test import APIClient
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    client = APIClient(REMOTE_ADDR="192.0.2.78")
    cache.delete("throttle_anon_192.0.2.78")
    codes = [client.post("/api/v1/auth/tokens/", {"username": "nobody", "password": "x"}, format="json",
                         HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
             for i in range(4)]
    cache.delete("throttle_anon_192.0.2.78")
    assert codes == [401, 401, 401, 429]


@pytest.mark.parametrize("cache_redis", ["running", "stopped"])
def test_a_user_over_the_rate_meets_429_with_the_window_left(world, client_for, investigator, settings, monkeypatch,
                                                              cache_redis):
    """The user rate is counted in a window opened by the user's first call (one increment each, in Redis, or in
    the process while Redis is away): past the limit a call is 429, and Retry-After is the window's time left."""
    from rest_framework.throttling import UserRateThrottle  # the rates our throttles read, as DRF's

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "anon": "1000/minute"})
    with redis_server(running=cache_redis == "running") as server:
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url()}}
        api = client_for(investigator)
        opened = time.monotonic()  # no later than the window's first call
        responses = [api.get("/api/v1/cases/") for _ in range(5)]
        elapsed = time.monotonic() - opened
        other = client_for(factories.user(world.a, "investigator", world.a1, username="rate-other"))
        assert other.get("/api/v1/cases/").status_code == 200  # each user has a window of their own
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[3].json()["detail"].startswith("Request was throttled")
    # What is left of the minute the first call opened: not more, and short of it by no more than the calls took.
    assert 60 - math.ceil(elapsed) <= int(responses[3]["Retry-After"]) <= 60
    assert int(responses[4]["Retry-After"]) <= int(responses[3]["Retry-After"])


def test_reads_and_writes_answer_while_the_cache_redis_is_stopped(world, client_for, investigator, settings):
    with redis_server(running=False) as stopped:
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": stopped.url()}}
        api = client_for(investigator)
        assert api.get("/api/v1/cases/").status_code == 200
        response = _person(api, "Cache Down")
        assert response.status_code == 201, response.content
        assert api.get(f"/api/v1/persons/{response.json()['id']}/").status_code == 200


# --- the broker ------------------------------------------------------------------------------------------------


def test_readyz_is_503_and_names_the_broker_when_the_broker_is_down(db, client, settings):
    with redis_server(running=False) as stopped, broker_at(settings, stopped.broker_url):
        response = client.get("/readyz")
    assert response.status_code == 503, response.json()
    body = response.json()
    assert body["checks"]["broker"].startswith("error"), body
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_an_import_post_with_the_broker_down_is_202_and_makes_one_job(world, client_for, investigator, settings):
    api = client_for(investigator)
    with redis_server(running=False) as stopped, broker_at(settings, stopped.broker_url):
        response = _import(api)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    assert ImportJob.objects.count() == 1


# --- the outbox ------------------------------------------------------------------------------------------------


def test_records_changed_handles_each_version_once(world):
    from core.models import HandledVersion
    from core.outbox import handle_records_changed

    person = factories.person(world.a, "Twice Delivered")
    label = "entities.person"
    assert handle_records_changed(label, [str(person.pk)]) == 1
    assert handle_records_changed(label, [str(person.pk)]) == 0  # a second delivery: nothing to do
    person.notes = "changed"
    person.save()
    assert handle_records_changed(label, [str(person.pk), str(uuid.uuid4())]) == 1  # a gone record is skipped
    assert handle_records_changed(label, [str(person.pk)]) == 0
    mark = HandledVersion.objects.get(model=label, record_id=str(person.pk))
    assert mark.version == person.version == 2


def test_unsent_rows_of_one_task_and_key_coalesce(world):
    from core.models import OutboxMessage
    from core.outbox import RECORDS_CHANGED, enqueue

    a = factories.person(world.a, "A")
    # The test runs in a transaction that never commits: nothing is sent, the rows stay unsent.
    kwargs = {"model": "entities.person", "ids": [str(a.pk)]}
    enqueue(RECORDS_CHANGED, kwargs=kwargs, key=f"entities.person:{a.pk}")
    enqueue(RECORDS_CHANGED, kwargs=kwargs, key=f"entities.person:{a.pk}")
    enqueue(RECORDS_CHANGED, kwargs=kwargs)  # no key: never coalesced
    enqueue("audit.verify_chains", key=f"entities.person:{a.pk}")  # another task: its own row
    rows = OutboxMessage.objects.filter(sent_at__isnull=True)
    assert rows.count() == 3
    one = rows.get(task=RECORDS_CHANGED, key=f"entities.person:{a.pk}")
    assert one.revision == 2 and one.kwargs == kwargs


def test_the_records_one_transaction_changes_become_one_row_a_model(world):
    from core.models import OutboxMessage
    from core.outbox import RECORDS_CHANGED, records_changed

    a, b = factories.person(world.a, "A"), factories.person(world.a, "B")
    org = factories.organization(world.a, "C Ltd")
    records_changed("entities.person", [a.pk])
    records_changed("entities.person", [a.pk])
    records_changed("entities.organization", [org.pk])
    with transaction.atomic():
        records_changed("entities.person", [b.pk])
    try:
        with transaction.atomic():
            records_changed("entities.person", [str(uuid.uuid4())])
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    records_changed("entities.person", [a.pk, b.pk])
    rows = OutboxMessage.objects.filter(task=RECORDS_CHANGED, sent_at__isnull=True)
    assert rows.count() == 2
    person = rows.get(kwargs__model="entities.person")
    assert person.key == "" and person.kwargs["ids"] == [str(a.pk), str(b.pk)]
    assert rows.get(kwargs__model="entities.organization").kwargs["ids"] == [str(org.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_backs_off_then_sends_and_two_dispatchers_share_the_rows(world, settings):
    from core import outbox
    from core.models import OutboxMessage

    settings.OUTBOX_RETRY_SECONDS = 2
    people = [factories.person(world.a, f"D{i}") for i in range(3)]
    with redis_server(running=False) as broker, broker_at(settings, broker.broker_url):
        settings.TASK_QUEUE_PREFIX = prefix = f"test-{uuid.uuid4().hex[:8]}-"
        for person in people:
            outbox.records_changed("entities.person", [person.pk])  # no transaction: its own, sent at once
        rows = OutboxMessage.objects.order_by("id")
        assert [(r.sent_at, r.attempts) for r in rows] == [(None, 1)] * 3
        rows.update(next_attempt_at=timezone.now())
        assert outbox.dispatch() == 0  # still away: each row waits twice as long
        for row in rows:
            assert row.attempts == 2 and 3 < (row.next_attempt_at - timezone.now()).total_seconds() <= 4
            assert "OperationalError" in row.last_error

        broker.start()
        rows.update(next_attempt_at=timezone.now())
        held, release = threading.Event(), threading.Event()

        def other_dispatcher() -> None:  # holds the first row, as a dispatcher in the middle of sending it
            try:
                with transaction.atomic():
                    list(outbox._unsent().filter(pk=rows[0].pk))
                    held.set()
                    release.wait(10)
            finally:
                db_connection.close()

        thread = threading.Thread(target=other_dispatcher)
        thread.start()
        assert held.wait(10)
        try:
            assert outbox.dispatch() == 2  # the held row is skipped, not waited for
        finally:
            release.set()
            thread.join()
        assert outbox.dispatch() == 1
        assert outbox.dispatch() == 0
        assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
        client = redis.Redis(unix_socket_path=str(broker.socket))
        assert client.llen(f"{prefix}xref") == 3  # routed to (this test's copy of) the xref queue, each once

        # The broker goes away under the connections this process holds, and comes back.
        broker.stop()
        outbox.records_changed("entities.person", [people[0].pk])
        assert OutboxMessage.objects.get(sent_at__isnull=True).attempts == 1
        broker.start()
        OutboxMessage.objects.update(next_attempt_at=timezone.now())
        assert outbox.dispatch() == 1
        assert redis.Redis(unix_socket_path=str(broker.socket)).llen(f"{prefix}xref") == 1  # a new, empty server


@pytest.mark.django_db(transaction=True)
def test_writes_and_an_import_with_the_broker_down_each_run_once_when_it_returns(world, client_for, investigator,
                                                                                 settings):
    from core.models import HandledVersion, OutboxMessage
    from core.outbox import RECORDS_CHANGED, records_changed

    api = client_for(investigator)
    with redis_server(running=False) as broker, broker_at(settings, broker.broker_url):
        settings.REDIS_URL = broker.url(1)  # the workers' task counts, fresh for this test
        settings.TASK_QUEUE_PREFIX = prefix = f"test-{uuid.uuid4().hex[:8]}-"
        ids = []
        for i in range(5):
            response = _person(api, f"Outbox Person {i}")
            assert response.status_code == 201, response.content
            ids.append(response.json()["id"])
            # What the person service does after its write (a row it wrote itself coalesces with this one).
            records_changed("entities.person", [ids[-1]])
        response = _import(api)
        assert response.status_code == 202, response.content
        job = ImportJob.objects.get(pk=response.json()["id"])
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True)  # (a query: read again at each use)
        assert unsent.filter(task=RECORDS_CHANGED, key__startswith="entities.person:").count() == 5
        assert unsent.filter(task="imports.run", key=str(job.pk)).count() == 1
        assert not unsent.filter(attempts=0).exists()  # each was tried after its commit, and refused
        assert client_for(None).get("/readyz").json()["outbox"]["unsent"] == unsent.count()

        def task_counts() -> dict[str, int]:
            stored: dict[bytes, bytes] = redis.Redis(  # type: ignore[assignment]
                unix_socket_path=str(broker.socket), db=1).hgetall(TASK_COUNTS_KEY)
            return {key.decode(): int(value) for key, value in stored.items()}

        broker.start()
        with worker_process(prefix), beat_process(prefix, OUTBOX_DISPATCH_SECONDS="1"):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                job.refresh_from_db()
                done = HandledVersion.objects.filter(model="entities.person", record_id__in=ids).count()
                ran = task_counts().get(f"{RECORDS_CHANGED}|success", 0)
                if (not unsent.exists() and job.status in ("succeeded", "failed") and done == 5
                        and ran >= OutboxMessage.objects.filter(task=RECORDS_CHANGED).count()):
                    break
                time.sleep(0.5)
            time.sleep(3)  # a second send of any row would run by now
            ready = client_for(None).get("/readyz").json()
        counts = task_counts()

    assert job.status == "succeeded", job.error
    assert not unsent.exists()
    assert HandledVersion.objects.filter(model="entities.person", record_id__in=ids).count() == 5
    assert counts.get("imports.run|success") == 1, counts
    # Every outbox row of the cross-referencing task ran once (the import's own rows, if it writes any, too).
    assert counts.get(f"{RECORDS_CHANGED}|success") == OutboxMessage.objects.filter(task=RECORDS_CHANGED).count()
    assert not any(key.endswith("|failure") or key.endswith("|retry") for key in counts), counts
    assert ready["worker"]["recent"] is True and ready["outbox"]["unsent"] == 0


# --- the import task's speed settings ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_leaves_the_switch_interval_and_synchronous_commit_as_they_were(world):
    from imports.services import job_create, run_job

    before = sys.getswitchinterval()
    with db_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")  # whatever the server's default (a development one turns it off)
    job = job_create(agency=world.a, actor=None, upload=ContentFile(persons_csv(GOOD), name="p.csv"),
                     kind="persons", run=False)
    assert run_job(job.pk).status == "succeeded"
    assert sys.getswitchinterval() == before
    with db_connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_every_way_of_making_a_job_leaves_its_run_in_the_outbox(world, investigator, client_for, tmp_path):
    """The API and the import_file command both make a job through job_create: the job and its imports.run row
    commit together (here nothing commits, so the row stays unsent)."""
    from django.core.management import call_command

    from core.models import OutboxMessage

    response = _import(client_for(investigator))
    assert response.status_code == 202, response.content
    path = tmp_path / "people.csv"
    path.write_bytes(persons_csv(GOOD))
    call_command("import_file", str(path), "--kind", "persons", "--agency", "SSB", "--user", "inv-a1")
    jobs = ImportJob.objects.all()
    assert jobs.count() == 2 and {job.status for job in jobs} == {"queued"}
    rows = OutboxMessage.objects.filter(task="imports.run")
    assert sorted(row.key for row in rows) == sorted(str(job.pk) for job in jobs)
    assert all(row.kwargs == {"job_id": row.key} and row.sent_at is None for row in rows)
