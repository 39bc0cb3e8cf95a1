"""Import jobs run by real Celery worker processes against real Redis: a job runs, and a job whose worker is
killed mid-run is swept up again and finishes without a duplicate row."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from typing import Any, cast

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from config.celery import app
from entities.models import Entity
from imports.models import ImportJob, ImportRowError
from imports.tasks import resume_stale, run

from .redis_server import broker_at, redis_server
from .test_imports import BAD, GOOD, persons_csv
from .worker import celery_worker, worker_process


def _wait_until_finished(job: ImportJob, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("succeeded", "failed"):
            return
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_job_from_queued_to_succeeded(world):
    job = ImportJob(agency=world.a, kind="persons", source="worker")
    job.file.save("p.csv", ContentFile(persons_csv(GOOD + BAD)), save=False)
    job.save()
    assert job.status == "queued"
    with celery_worker() as queue:
        run.apply_async(args=(str(job.pk),), queue=queue)
        _wait_until_finished(job, 60)
        # A second delivery of the same job (acks_late) finds it finished and changes nothing.
        run.apply_async(args=(str(job.pk),), queue=queue)
        time.sleep(1)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.processed_rows, job.created, job.failed_rows) == (5, 5, 3, 2)
    assert job.started_at is not None and job.finished_at is not None
    assert job.started_at <= job.finished_at
    assert Entity.objects.filter(source="worker").count() == 3


ROWS = 30_000


def _big_file() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """ROWS person rows: every 100th repeats (with a new name) a source_id from 50 rows before, at times in the
    previous batch; every 250th has a bad e-mail address. (All rows, the good ones.)"""
    rows, good = [], []
    for i in range(ROWS):
        if i % 100 == 99:
            row = {"source_id": f"k{i - 50}", "name": f"Renamed Person {i}"}
        else:
            row = {"source_id": f"k{i}", "name": f"Person {i}", "nationalities": "FR;DE" if i % 3 else "CN",
                   "birth_date": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}"}
        if i % 250 == 7:
            row["emails"] = "not-an-email"
        else:
            good.append(row)
        rows.append(row)
    return rows, good


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_resumed_and_finishes_without_duplicates(world, settings):
    rows, good = _big_file()
    last_name = {row["source_id"]: row["name"] for row in good}  # the later of two rows for one source_id wins
    job = ImportJob(agency=world.a, kind="persons", source="killed")
    job.file.save("big.csv", ContentFile(persons_csv(rows)), save=False)
    job.save()

    with worker_process() as worker:
        run.apply_async(args=(str(job.pk),), queue=worker.queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status != "queued" and job.processed_rows > 0:
                break
            time.sleep(0.02)
        worker.kill()
    job.refresh_from_db()
    written = Entity.objects.filter(source="killed").count()
    print(f"\nkilled at processed_rows={job.processed_rows}, entities written={written}")
    assert job.status == "running", f"the job was not mid-run when its worker was killed: {job.status}"
    assert 0 < job.processed_rows < ROWS and 0 < written < len(last_name)

    # Nobody resumes it by itself: the unacked message comes back only after the broker's visibility timeout
    # (an hour) and the stale limit is five minutes. With a one-second limit the sweeper finds it.
    settings.IMPORT_HEARTBEAT_STALE_SECONDS = 1
    with worker_process(IMPORT_HEARTBEAT_STALE_SECONDS="1") as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix  # the sweeper's sends (through the outbox) reach this worker
        deadline = time.monotonic() + 10
        while (resumed := resume_stale()) == [] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert resumed == [str(job.pk)]
        _wait_until_finished(job, 180)  # returns when it ends: the bound only has to outlast a loaded CI machine

    assert job.status == "succeeded", job.error
    bad = ROWS - len(good)
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows == ROWS
    assert job.processed_rows == ROWS and job.failed_rows == bad
    print(f"resumed: created={job.created} updated={job.updated} unchanged={job.unchanged} failed={job.failed_rows}")
    entities = Entity.objects.filter(agency=world.a, source="killed")
    assert entities.count() == len(last_name)
    assert dict(entities.values_list("source_id", "name")) == last_name
    assert ImportRowError.objects.filter(job=job).count() == bad  # the dead run's errors are not kept twice


def _queued_job_ids(queue: str) -> list[str]:
    """The job ids of the imports.run messages waiting in a queue of the Redis broker (the queue is emptied)."""
    ids = []
    with app.connection_for_write() as connection:
        client = cast(Any, connection.default_channel).client  # kombu's Redis channel: a redis-py client
        while (raw := client.rpop(queue)) is not None:
            message = json.loads(raw)
            assert message["headers"]["task"] == "imports.run"
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            ids.append(kwargs["job_id"])
    return ids


@pytest.mark.django_db
def test_the_sweeper_re_enqueues_only_jobs_no_worker_is_on(world, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_HEARTBEAT_STALE_SECONDS = 60
    now = timezone.now()
    old, recent = now - datetime.timedelta(seconds=61), now - datetime.timedelta(seconds=30)

    def job(status: str, heartbeat: datetime.datetime | None, created: datetime.datetime) -> str:
        made = ImportJob.objects.create(agency=world.a, kind="persons", file="x.csv", status=status,
                                        heartbeat_at=heartbeat)
        ImportJob.objects.filter(pk=made.pk).update(created_at=created)
        return str(made.pk)

    dead = job("running", old, old)
    lost = job("queued", None, old)
    job("running", recent, old)  # a live worker is on it
    job("queued", None, recent)  # waiting for a worker, not for long yet
    job("succeeded", old, old)
    job("failed", old, old)

    settings.TASK_QUEUE_PREFIX = prefix = f"test-{uuid.uuid4().hex[:8]}-"
    with django_capture_on_commit_callbacks(execute=True):  # the outbox sends after the sweep's commit
        resumed = resume_stale()
    assert sorted(resumed) == sorted([dead, lost])
    assert sorted(_queued_job_ids(f"{prefix}imports")) == sorted([dead, lost])
    # The queued job is not sent again on the next sweep (a backlog must not grow a message a minute);
    # the running one whose worker is gone is, until a worker takes it.
    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stale() == [dead]
    assert _queued_job_ids(f"{prefix}imports") == [dead]
    assert settings.CELERY_BEAT_SCHEDULE["resume-stale-imports"] == {"task": resume_stale.name, "schedule": 60}


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_keeps_its_runs_in_the_outbox_while_the_broker_is_down(world, settings):
    """A stale job found while the broker is away is not lost: its run waits in the outbox (unsent) and the
    sweep itself succeeds, as any write does."""
    from core.models import OutboxMessage

    settings.IMPORT_HEARTBEAT_STALE_SECONDS = 60
    old = timezone.now() - datetime.timedelta(seconds=61)
    job = ImportJob.objects.create(agency=world.a, kind="persons", file="x.csv", status="running", heartbeat_at=old)
    with redis_server(running=False) as stopped, broker_at(settings, stopped.broker_url):
        assert resume_stale() == [str(job.pk)]
    waiting = OutboxMessage.objects.filter(task=run.name, key=str(job.pk), sent_at__isnull=True)
    assert [row.kwargs for row in waiting] == [{"job_id": str(job.pk)}]
    assert waiting.get().attempts == 1 and waiting.get().last_error
