"""Faults the service survives, tried with real processes: gunicorn serving the app, Celery workers and beat,
PostgreSQL and Redis servers of the test's own that it stops, starts and kills (`make faults`; README § Faults
it survives). Each test asserts what the fault left behind (rows lost, tasks run twice to visible effect) and
prints a one-line summary starting with `FAULT`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from .postgres_server import postgres_server
from .redis_server import broker_at, redis_server
from .web_server import ROOT, Reply, WebServer, web_server
from .worker import beat_process, wait_until, worker_process

pytestmark = pytest.mark.faults

API = "/api/v1"


def summary(capsys: Any, line: str) -> None:
    """The scenario's one line, shown even when pytest captures the output."""
    with capsys.disabled():
        print(f"\nFAULT {line}", flush=True)


# --- PostgreSQL restarted under load ----------------------------------------------------------------------------

CLIENTS = 4
BOUND_SECONDS = 10  # no request may take longer, the database away or not (connect_timeout is 5 s)

_SETUP = """
from tests import factories
agency = factories.agency("SSB", "State Security Bureau")
user = factories.user(agency, "investigator", factories.unit(agency, "econ"), username="restart-inv")
print(factories.token(user))
"""


def _prepare_database(url: str) -> str:
    """Migrate the private cluster's database and make an investigator; their token."""
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url}
    for command in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", _SETUP]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, check=False, env={**_environ_without_database(), **env})
        assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _environ_without_database() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_NAME")}


class Load:
    """CLIENTS threads each writing a person, listing persons and listing cases in turn until stopped; every
    reply kept (with the id of each person written)."""

    def __init__(self, web: WebServer, token: str) -> None:
        self.web, self.token = web, token
        self.replies: list[tuple[str, Reply]] = []
        self.written: list[tuple[float, str]] = []  # (when the request started, the person's id) of each 201
        self.refused_writes: list[str] = []  # names of the writes that did not get a 201
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def _client(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if i % 3 == 1:
                    name = f"Restart Load {n}-{i}"
                    reply = self.web.call("POST", f"{API}/persons/", token=self.token, data={"name": name},
                                          timeout=BOUND_SECONDS * 3)
                    with self.lock:
                        if reply.status == 201:
                            self.written.append((reply.started, reply.json()["id"]))
                        else:
                            self.refused_writes.append(name)
                else:
                    path = f"{API}/persons/?page_size=5" if i % 3 == 2 else f"{API}/cases/"
                    reply = self.web.call("GET", path, token=self.token, timeout=BOUND_SECONDS * 3)
                with self.lock:
                    self.replies.append(("write" if i % 3 == 1 else "read", reply))
            except Exception as exc:  # a refused connection or a timeout: the web server itself failed
                with self.lock:
                    self.errors.append(repr(exc))
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=BOUND_SECONDS * 4)


def test_postgresql_restarted_under_load_gives_clean_503s_and_recovers_without_a_restart(capsys):
    with postgres_server() as pg, redis_server() as rds:
        with pg.connect(autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")
        token = _prepare_database(pg.url("app"))
        env = {**_environ_without_database(), "DATABASE_URL": pg.url("app"), "REDIS_URL": rds.url(),
               "CELERY_BROKER_URL": rds.broker_url, "TASK_QUEUE_PREFIX": f"restart-{uuid.uuid4().hex[:6]}-"}
        with web_server(**env) as web:
            workers = web.workers()
            ready: list[tuple[float, int, bool]] = []  # /readyz while the database is away: (when, status, JSON?)
            admin: list[Reply] = []
            with Load(web, token) as load:
                time.sleep(3)
                down_from = time.monotonic()
                pg.stop("fast")  # every session is ended: the web workers' connections break under them
                stopped = time.monotonic()
                while time.monotonic() - stopped < 3:
                    reply = web.call("GET", "/readyz", timeout=BOUND_SECONDS * 3)
                    ready.append((reply.started, reply.status, reply.is_json))
                    # A view outside the API (the admin) that needs the database: its session is read from it.
                    admin.append(web.call("GET", "/admin/", headers={"Cookie": f"sessionid={'s' * 32}"},
                                          timeout=BOUND_SECONDS * 3))
                    time.sleep(0.2)
                restarting = time.monotonic()
                pg.start()
                up_from = time.monotonic()
                time.sleep(4)
                after = web.call("GET", "/readyz", timeout=BOUND_SECONDS * 3)
            assert web.process.poll() is None and web.workers() == workers, "the web server was restarted"
            log = web.tail()

        with pg.connect("app") as conn:
            found = {str(pk) for (pk,) in conn.execute(
                "SELECT id FROM entities_entity WHERE name LIKE 'Restart Load %%'")}

    replies = load.replies
    statuses = Counter(reply.status for _, reply in replies)
    assert not load.errors, load.errors[:5]
    assert set(statuses) <= {200, 201, 503}, (statuses, log)
    unavailable = [reply for _, reply in replies if reply.status == 503]
    # Away: from the stop's end to the start's beginning (the server accepts connections a moment before pg_ctl
    # returns from its start).
    during = [reply for _, reply in replies if stopped <= reply.started and reply.started + reply.elapsed <= restarting]
    assert during and all(reply.status == 503 for reply in during), [
        (reply.status, reply.started - stopped, reply.elapsed, restarting - stopped) for reply in during
        if reply.status != 503]
    for reply in unavailable:
        assert reply.is_json and "detail" in reply.json() and int(reply.headers["Retry-After"]) > 0, reply
    slowest = max(reply.elapsed for _, reply in replies)
    assert slowest < BOUND_SECONDS, slowest
    # Back: every request sent after the restart succeeded, on the same web processes (no restart of them).
    later = [reply for _, reply in replies if reply.started >= up_from]
    assert later and all(reply.status in (200, 201) for reply in later), Counter(r.status for r in later)
    assert after.status == 200, after.body
    # /readyz said so while it was away, in JSON; so did the admin (not an API view).
    assert ready and all(status == 503 and is_json for _, status, is_json in ready), ready
    assert admin and all(reply.status == 503 and reply.is_json and reply.headers["Retry-After"] for reply in admin), \
        [(reply.status, reply.body[:100]) for reply in admin]
    # Rows lost: none of the writes that were answered 201 is missing.
    written = {pk for _, pk in load.written}
    lost = written - found
    assert not lost, lost
    before = sum(1 for when, _ in load.written if when < down_from)
    after_count = sum(1 for when, _ in load.written if when >= up_from)
    assert before > 0 and after_count > 0
    summary(capsys, f"postgres-restart: {len(replies)} requests from {CLIENTS} clients, "
                    f"{statuses[200] + statuses[201]} 2xx, {statuses[503]} 503 (JSON, Retry-After), "
                    f"{sum(statuses[s] for s in statuses if s not in (200, 201, 503))} other; slowest {slowest:.2f} s; "
                    f"down {restarting - stopped:.1f} s; /readyz 503 while down, 200 after; writes 201: {len(written)} "
                    f"({before} before, {after_count} after), rows lost: {len(lost)}; "
                    f"refused writes found written anyway: {len(found - written)}; web workers restarted: 0")


# --- two clients editing one case --------------------------------------------------------------------------------

RACES = 10


def _suite_database_env(**extra: str) -> dict[str, str]:
    """A web server or worker on the suite's test database (the test's committed rows: a transactional test)."""
    from django.db import connection

    return {**_environ_without_database(), "DATABASE_NAME": connection.settings_dict["NAME"], **extra}


@pytest.mark.django_db(transaction=True)
def test_two_clients_editing_one_case_one_wins_the_other_gets_412_and_loses_nothing(world, capsys):
    from audit.models import AuditEvent
    from cases.models import Case

    from . import factories

    alice = factories.user(world.a, "investigator", world.a1, username="alice")
    bob = factories.user(world.a, "investigator", world.a1, username="bob")
    case = factories.case(world.a, world.a1, lead=alice, members=(bob,), priority="medium")
    tokens = {"alice": factories.token(alice), "bob": factories.token(bob)}
    path = f"{API}/cases/{case.pk}/"
    with redis_server() as rds, web_server(**_suite_database_env(REDIS_URL=rds.url(), CELERY_BROKER_URL=rds.broker_url,
                                                                  TASK_QUEUE_PREFIX="ifmatch-")) as web:
        # One after the other: both read version 1; Alice writes first; Bob's write on what he read is refused.
        read = {who: web.call("GET", path, token=token) for who, token in tokens.items()}
        assert read["alice"].headers["ETag"] == read["bob"].headers["ETag"] == '"1"'
        first = web.call("PATCH", path, token=tokens["alice"], data={"title": "Alice's title"},
                         headers={"If-Match": read["alice"].headers["ETag"]})
        stale = web.call("PATCH", path, token=tokens["bob"], data={"priority": "high"},
                         headers={"If-Match": read["bob"].headers["ETag"]})
        assert (first.status, stale.status) == (200, 412), (first.body, stale.body)
        assert stale.is_json and "detail" in stale.json()
        case.refresh_from_db()
        assert (case.version, case.title, case.priority) == (2, "Alice's title", "medium")  # Bob's changed nothing
        # Bob reads again and applies his change to what is there now.
        again = web.call("GET", path, token=tokens["bob"])
        retried = web.call("PATCH", path, token=tokens["bob"], data={"priority": "high"},
                           headers={"If-Match": again.headers["ETag"]})
        assert retried.status == 200 and retried.headers["ETag"] == '"3"', retried.body
        case.refresh_from_db()
        assert (case.version, case.title, case.priority) == (3, "Alice's title", "high")  # both changes stand

        # At the same moment (two gunicorn workers, two connections): exactly one 200 and one 412 each time.
        outcomes: Counter[tuple[int, ...]] = Counter()
        for race in range(RACES):
            etag = web.call("GET", path, token=tokens["alice"]).headers["ETag"]
            barrier = threading.Barrier(2)
            replies: dict[str, Reply] = {}

            def patch(who: str, data: dict[str, Any], etag: str = etag, barrier: threading.Barrier = barrier,
                      replies: dict[str, Reply] = replies) -> None:
                barrier.wait(timeout=30)
                replies[who] = web.call("PATCH", path, token=tokens[who], data=data, headers={"If-Match": etag})

            changes = {"alice": {"summary": f"alice {race}"}, "bob": {"tags": [f"bob-{race}"]}}
            threads = [threading.Thread(target=patch, args=(who, changes[who])) for who in tokens]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            outcomes[tuple(sorted(reply.status for reply in replies.values()))] += 1
            winner = next(who for who, reply in replies.items() if reply.status == 200)
            loser = next(who for who in tokens if who != winner)
            case.refresh_from_db()
            assert case.version == 4 + race
            assert (case.summary == f"alice {race}") == (winner == "alice")  # the winner's change, not the loser's
            assert (case.tags == [f"bob-{race}"]) == (winner == "bob")
            assert replies[loser].status == 412

    assert outcomes == Counter({(200, 412): RACES}), outcomes
    updates = AuditEvent.objects.filter(object_id=str(case.pk), action="update").count()
    assert updates == 2 + RACES  # one event per 200, none for a 412
    assert Case.objects.get(pk=case.pk).version == 3 + RACES
    summary(capsys, f"if-match: one after the other 200 then 412 (nothing changed), re-read and re-applied 200, both "
                    f"changes kept; {RACES} simultaneous races: {outcomes[(200, 412)]} x (200, 412), "
                    f"{RACES - outcomes[(200, 412)]} otherwise; update events {updates} = 200s; changes lost: 0")


# --- Redis stopped while writes arrive ---------------------------------------------------------------------------

# Pairs of spellings of one name: each round writes one pair, which cross-referencing matches.
PAIRS = [("Zhang Wei Antimony", "Wei Zhang Antimony"), ("Luo Jianhua Trading", "Jianhua Luo Trading"),
         ("Deng Kaiwen Shipping", "Kaiwen Deng Shipping"), ("Chen Jie Metals", "Jie Chen Metals"),
         ("Wang Qiang Export", "Qiang Wang Export")]


class Writer:
    """A client's writes through the API: each round creates two persons (a matching pair), an organisation and a
    case with one of the persons as a party, then updates a person, the organisation and the case."""

    def __init__(self, web: WebServer, token: str) -> None:
        self.web, self.token = web, token
        self.statuses: list[int] = []
        self.records: list[tuple[str, str]] = []  # (model label, id) of every record written, for its task

    def _call(self, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
        reply = self.web.call(method, f"{API}{path}", token=self.token, data=data)
        self.statuses.append(reply.status)
        assert reply.status in (200, 201), (method, path, reply.status, reply.body[:300])
        return dict(reply.json())

    def round(self, n: int) -> None:
        first, second = PAIRS[n]
        a = self._call("POST", "/persons/", {"name": first, "nationalities": ["CN"]})["id"]
        b = self._call("POST", "/persons/", {"name": second, "nationalities": ["CN"]})["id"]
        org = self._call("POST", "/organizations/", {"name": f"{first} Holdings Ltd"})["id"]
        case = self._call("POST", "/cases/", {"title": f"Round {n}", "classification": "restricted"})["id"]
        party = self._call("POST", f"/cases/{case}/parties/", {"entity": {"type": "person", "id": a},
                                                                "role": "suspect"})["id"]
        self._call("PATCH", f"/persons/{a}/", {"notes": f"updated in round {n}"})
        self._call("PATCH", f"/organizations/{org}/", {"notes": f"updated in round {n}"})
        self._call("PATCH", f"/cases/{case}/", {"priority": "high"})
        self.records += [("entities.person", a), ("entities.person", b), ("entities.organization", org),
                         ("cases.caseparty", party)]


@pytest.mark.django_db(transaction=True)
def test_writes_while_redis_is_stopped_succeed_and_each_task_runs_once_when_it_is_back(world, investigator, settings,
                                                                                        capsys):
    import redis
    from django.apps import apps

    from core.metrics import TASK_COUNTS_KEY
    from core.models import HandledVersion, OutboxMessage
    from core.outbox import RECORDS_CHANGED
    from xref import services as xref
    from xref.matching import score
    from xref.models import Match

    from . import factories

    token = factories.token(investigator)
    prefix = f"redis-{uuid.uuid4().hex[:6]}-"
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True)  # (a query: read again at each use)
    # A broker that keeps what it holds across a restart (its append-only file), as production's should: what
    # was queued before the stop is still there after it. The cache shares the server (database 0).
    with redis_server(persistent=True) as rds, broker_at(settings, rds.broker_url):
        settings.REDIS_URL = rds.url(1)  # the workers' task counts (tests.worker passes it on)
        settings.TASK_QUEUE_PREFIX = prefix
        with web_server(**_suite_database_env(REDIS_URL=rds.url(), CELERY_BROKER_URL=rds.broker_url,
                                              TASK_QUEUE_PREFIX=prefix, OUTBOX_RETRY_SECONDS="1")) as web:
            writer = Writer(web, token)
            writer.round(0)
            assert not unsent.exists()  # sent to the broker after each commit
            rds.stop()
            before = len(writer.statuses)
            for n in (1, 2, 3):
                writer.round(n)
            while_down = len(writer.statuses) - before
            ready = web.call("GET", "/readyz")
            waiting = unsent.count()
            assert waiting > 0 and not unsent.filter(attempts=0).exists()  # each tried after its commit, refused
            assert ready.status == 503 and ready.json()["outbox"]["unsent"] == waiting, ready.body
            assert ready.json()["checks"]["broker"].startswith("error")
            rds.start()
            time.sleep(1.5)  # OUTBOX_RETRY_SECONDS: the server's next commit tries the broker again
            writer.round(4)
        assert set(writer.statuses) <= {200, 201}

        def done() -> bool:
            return not unsent.exists() and all(
                HandledVersion.objects.filter(model=label, record_id=pk,
                                              version=apps.get_model(label).objects.get(pk=pk).version).exists()
                for label, pk in writer.records)

        counts = redis.Redis(unix_socket_path=str(rds.socket), db=1)
        with worker_process(prefix), beat_process(prefix, OUTBOX_DISPATCH_SECONDS="1"):
            wait_until(done, 120, every=0.5)
            time.sleep(3)  # a second delivery of any row would have run by now
        stored: dict[bytes, bytes] = counts.hgetall(TASK_COUNTS_KEY)  # type: ignore[assignment]
        ran = {key.decode(): int(value) for key, value in stored.items()}

    rows = OutboxMessage.objects.filter(task=RECORDS_CHANGED).count()
    assert ran.get(f"{RECORDS_CHANGED}|success") == rows, (ran, rows)  # every row ran, and only once
    assert not any(key.endswith(("|failure", "|retry")) for key in ran), ran
    entities = [pk for label, pk in writer.records if label.startswith("entities.")]
    score.forget_caches()  # what this process cached of earlier tests' records (record counts by type)
    assert xref.records_changed(entities) == 0  # cross-referencing them again changes nothing: all was done
    matched = sum(1 for first, second in PAIRS if Match.objects.filter(
        left__name__in=[first, second], right__name__in=[first, second], archived=False).exists())
    assert matched == len(PAIRS)
    summary(capsys, f"redis-down: {len(writer.statuses)} API writes ({while_down} while Redis was stopped), all "
                    f"2xx; outbox rows waiting while down {waiting}, unsent at the end 0; "
                    f"records_changed rows {rows}, runs {ran.get(f'{RECORDS_CHANGED}|success')} (run twice: "
                    f"{ran.get(f'{RECORDS_CHANGED}|success', 0) - rows}); records handled at their last version "
                    f"{len(writer.records)}/{len(writer.records)}; matched pairs {matched}/{len(PAIRS)}; "
                    f"re-run changes 0; rows lost 0")


# --- a worker killed mid-task ------------------------------------------------------------------------------------

SURNAMES = ["Zhang", "Wang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Zhou", "Sun", "Zhu", "Guo", "Lin", "Luo",
            "Gao", "Deng", "Feng", "Tang", "Cao", "Xie", "Song"]
IMPORT_ROWS = 15_000  # three batches of an import
GIVEN = ["Wei", "Fang", "Min", "Jing", "Qiang", "Lei", "Jun", "Yong", "Yan", "Jie", "Tao", "Ming", "Chao", "Xia",
         "Hua", "Ping", "Gang", "Hui", "Bo", "Kai"]


def _organisations_file() -> tuple[bytes, dict[str, str], int]:
    """IMPORT_ROWS organisation rows: every 100th renames the record of a row 50 before (at times in the previous
    batch), every 250th has a kind that does not exist. The file, each source id's last name, the bad rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["source_id", "name", "jurisdiction", "kind"])
    last_name: dict[str, str] = {}
    bad = 0
    for i in range(IMPORT_ROWS):
        source_id, name = (f"o{i - 50}", f"Renamed Org {i} Ltd") if i % 100 == 99 else (f"o{i}", f"Org {i} Co., Ltd.")
        kind = "pirate" if i % 250 == 7 else "trader"
        writer.writerow([source_id, name, "HK", kind])
        if kind == "pirate":
            bad += 1
        else:
            last_name[source_id] = name
    return out.getvalue().encode(), last_name, bad


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_task_leaves_an_import_and_an_xref_run_that_finish_once(world, settings, capsys):
    from django.core.files.base import ContentFile

    from entities.models import Entity
    from imports.models import ImportJob, ImportRowError
    from imports.services import job_create
    from imports.services import resume_stale as resume_imports
    from xref import services as xref
    from xref.matching import score
    from xref.models import Match, XrefRun

    from . import factories

    # Agency A: persons whose names are one another's spellings (the run's work); agency B: the import's
    # organisations (which change nothing of how persons are scored: the two jobs do not change each other's results).
    for surname in SURNAMES[:10]:
        for given in GIVEN:
            factories.person(world.a, f"{surname} {given}")
            factories.person(world.a, f"{given} {surname}")
    content, last_name, bad = _organisations_file()

    # One worker on the import, another on the run (each on queues of its own, so neither waits for the other's
    # tasks); each is killed once its job is part done.
    importer, xrefer, fresh = (f"kill-{uuid.uuid4().hex[:6]}-" for _ in range(3))
    settings.XREF_RUN_PARTS = 8
    with worker_process(importer) as import_worker, worker_process(xrefer, XREF_RUN_PARTS="8") as xref_worker:
        started = time.monotonic()
        settings.TASK_QUEUE_PREFIX = importer
        job = job_create(agency=world.b, actor=None, upload=ContentFile(content, name="big.csv"),
                         kind="organizations", source="killed")
        settings.TASK_QUEUE_PREFIX = xrefer
        run = xref.run_create(agency=world.a)
        killed: dict[str, float] = {}

        def kill_when_part_done() -> bool:
            if "import" not in killed and ImportJob.objects.get(pk=job.pk).processed_rows > 0:
                import_worker.kill()  # SIGKILL to its process group: the task stops mid-way, nothing is acked
                killed["import"] = time.monotonic() - started
            if "xref" not in killed and XrefRun.objects.get(pk=run.pk).parts_done > 0:
                xref_worker.kill()
                killed["xref"] = time.monotonic() - started
            return len(killed) == 2

        wait_until(kill_when_part_done, 120, every=0.05)
    job.refresh_from_db()
    run.refresh_from_db()
    at_kill = (job.processed_rows, run.parts_done, run.parts)
    assert job.status == run.status == "running" and job.processed_rows < IMPORT_ROWS and run.parts_done < run.parts, \
        f"not both mid-way when the worker was killed: import at {job.processed_rows}, run at {run.parts_done}"

    # Beat's sweeps find them once their heartbeats are older than the limit (here one second, not minutes) and
    # send their steps again through the outbox; a new worker takes them.
    settings.IMPORT_HEARTBEAT_STALE_SECONDS = 1
    settings.XREF_RUN_STALE_SECONDS = 1
    time.sleep(1.5)
    settings.TASK_QUEUE_PREFIX = fresh  # where the sweeps send (through the outbox): the new worker
    with worker_process(fresh, concurrency=2, XREF_RUN_PARTS="8", IMPORT_HEARTBEAT_STALE_SECONDS="1"):
        # (The dead worker's database sessions end when PostgreSQL notices, their row locks with them.)
        assert wait_until(resume_imports, 30) == [str(job.pk)]
        assert wait_until(xref.resume_stale, 30) == [str(run.pk)]
        wait_until(lambda: XrefRun.objects.get(pk=run.pk).status in ("succeeded", "failed")
              and ImportJob.objects.get(pk=job.pk).status in ("succeeded", "failed"), 240, every=0.5)
    job.refresh_from_db()
    run.refresh_from_db()

    assert job.status == "succeeded", job.error
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows == IMPORT_ROWS
    assert job.processed_rows == IMPORT_ROWS
    entities = Entity.objects.filter(agency=world.b, source="killed")
    assert entities.count() == len(last_name)  # no row twice
    assert dict(entities.values_list("source_id", "name")) == last_name
    assert job.failed_rows == ImportRowError.objects.filter(job=job).count() == bad

    assert run.status == "succeeded", run.error
    assert (run.parts_done, sorted(run.done_parts)) == (8, list(range(8)))  # each part counted once
    matches = sorted(Match.objects.filter(left_agency=world.a).values_list("id", "left_id", "right_id", "score",
                                                                             "status", "archived"))
    score.forget_caches()  # what this process cached of earlier tests' records (record counts by type)
    clean = xref.run_create(agency=world.a, sync=True)  # the same pass, undisturbed, on the same records
    assert (run.candidates, run.matches) == (clean.candidates, clean.matches) and run.matches > 0
    assert sorted(Match.objects.filter(left_agency=world.a).values_list(
        "id", "left_id", "right_id", "score", "status", "archived")) == matches  # the clean pass changed no match
    summary(capsys, f"worker-killed: SIGKILL to the import's worker after {killed['import']:.1f} s at row "
                    f"{at_kill[0]}/{IMPORT_ROWS}, to the xref run's after {killed['xref']:.1f} s at part "
                    f"{at_kill[1]}/{at_kill[2]}; after the sweeps and a new worker: import "
                    f"succeeded, {job.processed_rows} rows = file rows, {entities.count()} entities = distinct "
                    f"source ids (duplicates 0), {job.failed_rows} bad rows once each; xref run succeeded, parts "
                    f"counted {run.parts_done}/{run.parts} once each, candidates {run.candidates} and matches "
                    f"{run.matches} = a clean run's ({clean.candidates}, {clean.matches}), matches changed by it 0")
