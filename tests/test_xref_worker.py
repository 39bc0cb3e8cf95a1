"""Cross-referencing with real Celery workers on real Redis: every write path of persons and organisations
reaches the worker through the outbox, a task delivered twice changes nothing, and a full run's parts are shared
by two workers."""

from __future__ import annotations

import functools
import statistics
import subprocess
import sys
import time
from typing import Any
from uuid import UUID

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.test import Client

from config.celery import app
from core.models import HandledVersion, OutboxMessage
from core.outbox import RECORDS_CHANGED
from entities.models import Entity
from imports.models import ImportJob
from xref import services
from xref.models import Match, XrefRun

from . import factories
from .test_imports import GOOD, persons_csv
from .worker import process_env, wait_until, worker_process


def _match(a: Any, b: Any) -> Any:
    left, right = sorted([UUID(str(a)), UUID(str(b))])
    return Match.objects.filter(left_id=left, right_id=right).first()


def _handled(*ids: Any) -> bool:
    return HandledVersion.objects.filter(record_id__in=[str(pk) for pk in ids]).count() == len(ids)


def _rows() -> list[tuple[Any, ...]]:
    return sorted(Match.objects.values_list("id", "left_id", "right_id", "status", "archived", "score", "version"))


SPELLINGS = [("Zhang Wei Antimony", "Wei Zhang Antimony"), ("Luo Jianhua Trading", "Jianhua Luo Trading"),
             ("Deng Kaiwen Shipping", "Kaiwen Deng Shipping"), ("Chen Jie Metals", "Jie Chen Metals"),
             ("Wang Qiang Export", "Qiang Wang Export")]


@pytest.mark.django_db(transaction=True)
def test_a_person_written_through_the_api_is_matched_by_the_worker_soon_after_its_commit(world, client_for,
                                                                                     investigator, settings):
    api = client_for(investigator)
    delays = []
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix  # this process's sends go to the worker's queues
        for first, second in SPELLINGS:
            a = api.post("/api/v1/persons/", {"name": first}, format="json").json()["id"]
            wait_until(functools.partial(_handled, a), every=0.01)
            response = api.post("/api/v1/persons/", {"name": second}, format="json")
            committed = time.monotonic()  # the response comes after the write's commit
            assert response.status_code == 201, response.content
            b = response.json()["id"]
            wait_until(functools.partial(_match, a, b), every=0.005)
            delays.append(time.monotonic() - committed)

        # An update that makes a pair no longer match withdraws its pending match.
        a, b = (Entity.objects.get(name=name).pk for name in SPELLINGS[0])
        response = api.patch(f"/api/v1/persons/{b}/", {"name": "Maria Gonzalez"}, format="json")
        assert response.status_code == 200, response.content
        wait_until(lambda: _match(a, b).archived)
    print(f"\ncommit of a new person -> its Match row, live worker: median {statistics.median(delays) * 1000:.0f} ms,"
          f" max {max(delays) * 1000:.0f} ms over {len(delays)} ({', '.join(f'{d * 1000:.0f}' for d in delays)})")
    assert Match.objects.filter(archived=False).count() == len(SPELLINGS) - 1


@pytest.mark.django_db(transaction=True)
def test_an_admin_save_is_cross_referenced_by_the_worker(world, client_for, investigator, settings):
    user = factories.user(world.a, "investigator", world.a1, is_staff=True)
    client = Client()
    assert client.login(username=user.username, password="correct horse battery")
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        a = client_for(investigator).post("/api/v1/persons/", {"name": "Deng Kaiwen"}, format="json").json()["id"]
        wait_until(lambda: _handled(a))
        response = client.post("/admin/entities/person/add/", {
            "name": "Kaiwen Deng", "names": "", "gender": "", "birth_date": "", "birth_place": "",
            "nationalities": "", "identifiers": "[]", "addresses": "[]", "phones": "", "emails": "", "notes": "",
            "source": "", "source_id": ""})
        assert response.status_code == 302, response.content.decode()[:2000]
        b = Entity.objects.get(name="Kaiwen Deng").pk
        match = wait_until(lambda: _match(a, b))
    assert match.status == "pending" and match.left_agency_id == world.a.pk


@pytest.mark.django_db(transaction=True)
def test_an_import_is_cross_referenced_by_the_worker_in_one_task(world, client_for, investigator, settings):
    api = client_for(investigator)
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        known = api.post("/api/v1/persons/", {"name": "Zhang Wei", "birth_date": "1975-03-02"}, format="json")
        known_id = known.json()["id"]
        wait_until(lambda: _handled(known_id))
        upload = ContentFile(persons_csv(GOOD), name="people.csv")
        response = api.post("/api/v1/imports/", {"file": upload, "kind": "persons", "source": "xref"},
                            format="multipart")
        assert response.status_code == 202, response.content
        job = ImportJob.objects.get(pk=response.json()["id"])
        wait_until(lambda: ImportJob.objects.get(pk=job.pk).status == "succeeded")
        imported = Entity.objects.get(source="xref", source_id="p1").pk
        match = wait_until(lambda: _match(known_id, imported))
        rows = OutboxMessage.objects.filter(task=RECORDS_CHANGED, kwargs__model="entities.person")
        assert rows.filter(kwargs__ids__contains=[str(imported)]).count() == 1  # the import's batch: one task
        assert wait_until(lambda: _handled(*Entity.objects.filter(source="xref").values_list("pk", flat=True)))
    assert match.status == "pending" and "name" in match.features


@pytest.mark.django_db(transaction=True)
def test_the_same_task_twice_gives_the_same_matches(world, settings):
    people = [factories.person(world.a, name) for pair in SPELLINGS[:3] for name in pair]
    ids = [str(p.pk) for p in people]
    with worker_process() as worker:
        def send(kwargs: dict[str, Any], queue: str) -> None:
            app.send_task(RECORDS_CHANGED, kwargs=kwargs, queue=queue)

        xref_queue = f"{worker.prefix}xref"
        send(kwargs={"model": "entities.person", "ids": ids}, queue=xref_queue)
        wait_until(lambda: _handled(*ids) and Match.objects.count() == 3)
        first = _rows()
        send(kwargs={"model": "entities.person", "ids": ids}, queue=xref_queue)  # a second delivery
        HandledVersion.objects.all().delete()  # and one that finds the versions unhandled: the work is redone
        send(kwargs={"model": "entities.person", "ids": ids}, queue=xref_queue)
        wait_until(lambda: _handled(*ids))
        time.sleep(1)
    assert _rows() == first


@pytest.mark.django_db(transaction=True)
def test_a_full_run_is_shared_by_two_workers_and_keeps_a_rejected_pair_rejected(world, investigator, settings):
    settings.XREF_RUN_PARTS = 8
    for i in range(40):
        first, second = SPELLINGS[i % len(SPELLINGS)]
        factories.person(world.a, f"{first} {i // len(SPELLINGS)}")
        factories.person(world.a, f"{second} {i // len(SPELLINGS)}")
    before = services.run_create(agency=world.a, sync=True)
    rejected = Match.objects.order_by("id")[0]
    services.match_decide(investigator, rejected, decision="rejected", note="two men")
    prefix = f"test-{time.time_ns() % 10**8:08d}-"
    settings.TASK_QUEUE_PREFIX = prefix
    with worker_process(prefix, node="one", XREF_RUN_PARTS="8"), \
            worker_process(prefix, node="two", XREF_RUN_PARTS="8"):
        run = services.run_create(agency=world.a, user=investigator)
        run = wait_until(lambda: XrefRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).first(), 120)
        # The worker that ended the run may still be finishing its last part, and a solo pool answers no inspect
        # before that: ask until both have answered (once was seen to miss one on a loaded machine).
        parts_by_worker = wait_until(functools.partial(_parts_by_worker, prefix, workers=2, parts=8), 60, every=0.5)
    assert run.status == "succeeded", run.error
    assert (run.progress, run.parts, run.parts_done, sorted(run.done_parts)) == (1.0, 8, 8, list(range(8)))
    # The same counts as the same pass run here (the model trained again on the same records and decisions).
    again = services.run_create(agency=world.a, sync=True)
    assert (run.candidates, run.matches) == (again.candidates, again.matches) and run.matches > 0
    assert before.status == "succeeded"
    assert run.started_at <= run.finished_at
    rejected.refresh_from_db()
    assert rejected.status == "rejected" and not rejected.archived
    print(f"\nparts done by each worker: {parts_by_worker}")
    assert sum(parts_by_worker.values()) >= 8 and len(parts_by_worker) == 2


def _parts_by_worker(prefix: str, *, workers: int, parts: int) -> dict[str, int] | None:
    """The xref.run_part tasks each worker of `prefix` took, once all `workers` answered and counted `parts` at least
    between them; else None."""
    stats = {name: info for name, info in (app.control.inspect(timeout=1).stats() or {}).items()
             if name.startswith(prefix)}
    counts = {name.split("@")[0]: info.get("total", {}).get("xref.run_part", 0) for name, info in stats.items()}
    return counts if len(counts) == workers and sum(counts.values()) >= parts else None


@pytest.mark.django_db(transaction=True)
def test_manage_py_xref_queues_a_run_for_the_workers_once(world, settings, capsys):
    factories.person(world.a, "Zhang Wei Antimony")
    factories.person(world.a, "Wei Zhang Antimony")
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        call_command("xref", "--agency", "SSB")
        call_command("xref", "--agency", "SSB")  # one is queued or running: reported, not doubled
        out = capsys.readouterr().out
        run = XrefRun.objects.get()
        assert f"SSB: queued {run.pk}" in out and f"SSB: run {run.pk} is" in out
        wait_until(lambda: XrefRun.objects.get().status == "succeeded")
    assert Match.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_manage_py_xref_sync_runs_every_agency_here_and_bad_input_exits_non_zero(world, capsys):
    factories.person(world.b, "Li Na Smuggler")
    factories.person(world.b, "Na Li Smuggler")
    call_command("xref", "--sync")
    out = capsys.readouterr().out
    assert "ASB: succeeded" in out and "SSB: succeeded" in out and "matches 1," in out
    call_command("xref", "--sync", "--agency", "ASB")  # again: the same matches
    assert Match.objects.count() == 1 and XrefRun.objects.filter(status="succeeded").count() == 3

    env = process_env("test-cli-", DJANGO_SETTINGS_MODULE="config.settings.test")
    env["DATABASE_NAME"] = connection.settings_dict["NAME"]
    done = subprocess.run([sys.executable, "manage.py", "xref", "--agency", "NOPE"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode != 0 and "No agency with code 'NOPE'" in done.stderr
    assert XrefRun.objects.count() == 3
