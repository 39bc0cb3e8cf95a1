"""Cross-referencing at scale: generated persons and organisations with planted duplicates, imported, cross-referenced
in full by Celery workers, and one new record's match timed.

    python bench/xref_scale.py [--persons N] [--organizations N] [--workers N] [--keep]
                                                              (defaults: 100,000, 100,000, 2 worker processes)

1. Generates the two import files (bench/_xref_scale_data.py: fictional names from syllable and word lists, a
   tenth of each kind planted duplicates of others with typos, swapped name order, Hanzi ↔ pinyin and Cyrillic ↔
   Latin, legal forms in other spellings and languages, missing fields; seeded, the same on every machine).
2. Imports them as the API's import does (imports.services.job_create: the job's run goes through the outbox to
   real Celery worker processes, each with one solo pool), waits until the writes' cross-referencing has drained,
   and counts the xref tasks the import enqueued (core.OutboxMessage rows; aim: a few hundred at most for
   100,000 rows). Then it ANALYZEs the database, as autovacuum does after a bulk load (on a busy machine it
   can lag by minutes, and the planner's estimates of a table it has not analysed since the load are wrong).
3. Runs a full pass (xref.services.run_create; the workers share its parts) and measures the wall time until the
   XrefRun has succeeded (aim: under 5 minutes), its candidate pairs against n² (aim: under 0.1 %), and the
   recall of the planted pairs among the matches (aim: 0.95 or more), with the block caps in effect.
4. Creates one new person duplicating an existing one through the write service, as the API does, and times the
   delay from the commit to its Match row being there to list (aim: under 2 s), a few times: median and maximum.

The bench has a database of its own, `<DATABASE_URL's name>_xref_scale`, created afresh and migrated by this
script, and dropped at the end unless `--keep`; the workers use it and queues of their own (TASK_QUEUE_PREFIX) on
REDIS_URL's Redis. DJANGO_SETTINGS_MODULE defaults to config.settings.local (DEBUG off, so queries are not kept).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")

import psycopg  # noqa: E402
from _xref_scale_data import Generated, generate  # noqa: E402
from psycopg import sql  # noqa: E402

AGENCY = "BENCH"
SOURCE = "xref-scale"
NEW_RECORDS = 5  # step 4's new persons
AIMS = {"tasks": 300, "run_seconds": 300, "candidates_share": 0.001, "recall": 0.95, "delay_seconds": 2.0}


def say(message: str) -> None:
    print(message, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--organizations", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (one solo pool each)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and the imported files")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each stage")
    args = parser.parse_args()

    database = bench_database("xref_scale", "xref-scale")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        data = generate(args.persons, args.organizations)
        paths = data.write(Path(tmp))
        say(f"generated {len(data.persons):,} persons and {len(data.organizations):,} organisations, "
            f"{len(data.planted):,} planted pairs, in {time.perf_counter() - started:.1f} s")
        try:
            with workers(args.workers, Path(tmp)):
                Bench(data, paths, results, args.timeout).run()
        finally:
            report(results, data, args)
            if args.keep:
                say(f"kept: database {database}")
            else:
                from django.db import connections

                from imports.models import ImportJob

                for job in ImportJob.objects.all():
                    job.file.delete(save=False)
                connections.close_all()
                drop_database(database)


# --- the database and the workers ---------------------------------------------------------------------------------


def _server() -> tuple[dict[str, Any], str]:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/enforcement"))
    params = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres",
              "password": url.password or None, "dbname": "postgres"}
    return params, (url.path or "/enforcement").lstrip("/")


def fresh_database(suffix: str = "xref_scale") -> str:
    params, name = _server()
    database = f"{name}_{suffix}"
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return database


def bench_database(suffix: str, queue_prefix: str) -> str:
    """A fresh, migrated database of this bench's own (`<DATABASE_URL's name>_<suffix>`), Django set up on it, and
    queues of its own (`<queue_prefix>-<random>-`) for its workers. Returns the database's name."""
    database = fresh_database(suffix)
    os.environ["DATABASE_NAME"] = database
    os.environ["TASK_QUEUE_PREFIX"] = f"{queue_prefix}-{uuid.uuid4().hex[:8]}-"
    import django

    django.setup()
    from django.core.management import call_command

    say(f"database {database}: migrating …")
    call_command("migrate", verbosity=0)
    return database


def drop_database(database: str) -> None:
    params, _ = _server()
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


@contextmanager
def workers(count: int, logs: Path) -> Iterator[None]:
    """`count` Celery worker processes (solo pool) on this bench's queues and database."""
    from django.conf import settings

    from config.celery import app

    prefix = settings.TASK_QUEUE_PREFIX
    queues = ",".join(f"{prefix}{name}" for name in settings.TASK_QUEUES)
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    LOGS.clear()
    try:
        for n in range(count):
            log = logs / f"worker{n}.log"
            LOGS.append(log)
            with log.open("wb") as out:
                processes.append((subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", queues,
                     "-n", f"{prefix}{n}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
                     "-l", "info"], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out,
                    stderr=subprocess.STDOUT), log))
        deadline = time.monotonic() + 120
        while True:
            active = app.control.inspect(timeout=1).active_queues() or {}
            if sum(1 for name in active if name.startswith(prefix)) >= count:
                break
            for process, log in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start in 120 s")
        say(f"{count} worker process(es) started")
        yield
    finally:
        for process, _ in processes:
            process.terminate()
        for process, log in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            lines = log.read_text(errors="replace").splitlines()
            errors = [n for n, line in enumerate(lines) if "ERROR/" in line]
            if errors:
                say(f"{log.name}: {len(errors)} error(s); the first:")
                say("\n".join("    " + line[:200] for line in lines[errors[0]:errors[0] + 40]
                               if line.startswith(("[", "  File", "    ")) or "Error" in line)[-3000:])


def wait(what: str, done: Callable[[], Any], timeout: float, every: float = 0.5) -> float:
    """Seconds until `done()` is true (polled); TimeoutError after `timeout`."""
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(every)
    return time.perf_counter() - started


_UNHANDLED = """
    SELECT count(*) FROM entities_entity e
    WHERE e.agency_id = %s AND NOT EXISTS (
        SELECT 1 FROM core_handledversion h
        WHERE h.record_id = e.id::text AND h.model IN ('entities.person', 'entities.organization', 'entities.entity')
              AND h.version >= e.version)
"""


def unhandled(agency_id: Any) -> int:
    """The agency's records whose last write the outbox's xref.records_changed has not cross-referenced yet
    (it records each version it handled in the transaction that cross-references it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_UNHANDLED, [agency_id])
        return int(cursor.fetchone()[0])


def queued() -> int:
    """Outbox rows not sent yet and messages waiting in the bench's queues. (A solo worker busy with a task does
    not answer `inspect`, so the workers are not asked.)"""
    from django.conf import settings

    from config.celery import app
    from core.models import OutboxMessage

    waiting = OutboxMessage.objects.filter(sent_at__isnull=True).count()
    with app.connection_for_read() as conn:
        channel: Any = conn.default_channel
        for name in settings.TASK_QUEUES:
            waiting += channel.queue_declare(queue=f"{settings.TASK_QUEUE_PREFIX}{name}").message_count
    return waiting


LOGS: list[Path] = []  # the workers' logs (at level info: a line for each task that ends)
_ENDED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] (succeeded in ([0-9.]+)s|raised unexpected)")


def ended(task: str) -> dict[str, tuple[bool, float]]:
    """The tasks of this name the workers have ended: id -> (succeeded, seconds; 0 for a failure)."""
    out: dict[str, tuple[bool, float]] = {}
    for log in LOGS:
        for match in _ENDED.finditer(log.read_text(errors="replace")):
            if match.group(1) == task:
                out[match.group(2)] = (match.group(4) is not None, float(match.group(4) or 0))
    return out


def drained(agency_id: Any, since: Any) -> Callable[[], bool]:
    """True once every record is cross-referenced, or once every xref.records_changed sent since `since` has
    ended and nothing is queued (some failed: the workers' errors say why)."""
    from core.models import OutboxMessage
    from core.outbox import RECORDS_CHANGED

    def done() -> bool:
        if unhandled(agency_id) == 0:
            return True
        sent = OutboxMessage.objects.filter(task=RECORDS_CHANGED, created_at__gte=since).count()
        return len(ended(RECORDS_CHANGED)) >= sent and queued() == 0

    return done


# --- the stages ---------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, data: Generated, paths: tuple[Path, Path], results: dict[str, Any], timeout: float) -> None:
        from accounts.models import Agency, User

        self.data, self.paths, self.results, self.timeout = data, paths, results, timeout
        self.agency, _ = Agency.objects.get_or_create(code=AGENCY, defaults={"name": "Benchmark agency"})
        self.user, _ = User.objects.get_or_create(username="bench-analyst", defaults={
            "agency": self.agency, "role": "analyst", "clearance": "secret"})

    def run(self) -> None:
        self.import_files()
        self.full_run()
        self.new_records()

    def import_files(self) -> None:
        from django.core.files import File
        from django.db import connection
        from django.db.models import Count
        from django.utils import timezone

        from core.models import OutboxMessage
        from core.outbox import RECORDS_CHANGED
        from imports.models import FINISHED, ImportJob
        from imports.services import job_create

        since = timezone.now()
        started = time.perf_counter()
        jobs = []
        for path, kind in zip(self.paths, ("persons", "organizations"), strict=True):
            with path.open("rb") as handle:
                jobs.append(job_create(agency=self.agency, actor=self.user, upload=File(handle, name=path.name),
                                       kind=kind, source=SOURCE))
        wait("import", lambda: ImportJob.objects.filter(pk__in=[j.pk for j in jobs], status__in=FINISHED).count()
             == len(jobs), self.timeout)
        seconds = time.perf_counter() - started
        rows = len(self.data.persons) + len(self.data.organizations)
        finished = list(ImportJob.objects.filter(pk__in=[j.pk for j in jobs]).order_by("kind"))
        for job in finished:
            say(f"import {job.kind}: {job.status}, created {job.created:,}, failed {job.failed_rows:,}"
                + (f" ({job.error[:200]})" if job.error else ""))
        self.results["import"] = (seconds, rows / seconds)
        say(f"import: {seconds:.1f} s, {rows / seconds:,.0f} rows/s; waiting for its cross-referencing …")
        try:
            drain = wait("cross-referencing after the import", drained(self.agency.pk, since), self.timeout, every=1)
        except TimeoutError as exc:
            say(f"  {exc}: the full run starts anyway, behind what is left")
            drain = None
        self.results["drain"] = drain
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load, were it not behind
            cursor.execute("ANALYZE")
        left = unhandled(self.agency.pk)
        if left and drain is not None:
            say(f"  {left:,} records were never cross-referenced: their tasks failed (the workers' errors below)")
        elif left:
            say(f"  {left:,} records still to cross-reference")
        times = sorted(seconds for ok, seconds in ended(RECORDS_CHANGED).values() if ok)
        if times:
            say(f"  xref.records_changed tasks: {len(times)} succeeded, median {statistics.median(times):.1f} s, "
                f"longest {times[-1]:.1f} s")
        tasks = dict(OutboxMessage.objects.filter(created_at__gte=since, task__startswith="xref.")
                     .values_list("task").annotate(n=Count("id")).values_list("task", "n"))
        self.results["tasks"] = tasks
        say(f"  drained {drain:.1f} s after the import; xref tasks enqueued: "
            + (", ".join(f"{n:,} {task}" for task, n in sorted(tasks.items())) or "none"))

    def full_run(self) -> None:
        from django.conf import settings

        from xref import services
        from xref.models import RunStatus, XrefRun

        self.results["caps"] = (settings.XREF_BLOCK_MAX_SIZE, settings.XREF_BLOCK_MAX_SHARE)
        started = time.perf_counter()
        try:
            run = services.run_create(agency=self.agency, user=self.user)
        except NotImplementedError:
            say("full run: xref.services.run_create is not implemented yet")
            return
        last = [0.0]
        split: list[float] = []

        def finished() -> bool:
            run.refresh_from_db()
            if run.parts and not split:
                split.append(time.perf_counter() - started)
            if time.perf_counter() - last[0] > 15:
                last[0] = time.perf_counter()
                say(f"  run {run.status}: progress {run.progress:.2f}, parts {run.parts_done}/{run.parts}, "
                    f"{time.perf_counter() - started:.0f} s")
            return run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)

        try:
            seconds = wait("full run", finished, self.timeout, every=0.2)
            status = ""
        except TimeoutError:
            seconds, status = self.timeout, "not finished: "
        run = XrefRun.objects.get(pk=run.pk)
        status += f"{run.status}" + (f" {run.parts_done}/{run.parts} parts" if status else "")
        waited = (run.started_at - run.created_at).total_seconds() if run.started_at else seconds
        say(f"full run: {status} after {seconds:.1f} s ({run.parts} parts), {run.candidates:,} candidate pairs, "
            f"{run.matches:,} matches" + (f"; error: {run.error[:300]}" if run.error else ""))
        say(f"  queued {waited:.1f} s, indexed and trained until {split[0] if split else seconds:.1f} s, "
            f"its parts scored until {seconds:.1f} s")
        self.results["run"] = (status, seconds, run.candidates, run.matches, run.parts)
        self.recall()

    def recall(self) -> None:
        from django.db.models import Count

        from entities.models import Entity
        from xref.models import Match, MatchStatus

        ids = dict(Entity.objects.filter(agency=self.agency, source=SOURCE).values_list("source_id", "id"))
        rows = Match.objects.filter(archived=False).exclude(status=MatchStatus.REJECTED)
        found = set(rows.values_list("left_id", "right_id"))
        per_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        per_variation: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        planted_found = 0
        for pair in self.data.planted:
            a, b = ids.get(pair.left), ids.get(pair.right)
            hit = a is not None and b is not None and (min(a, b), max(a, b)) in found
            planted_found += hit
            per_kind[pair.kind][0] += hit
            per_kind[pair.kind][1] += 1
            for variation in pair.variations:
                per_variation[variation][0] += hit
                per_variation[variation][1] += 1
        self.results["recall"] = (planted_found, len(self.data.planted), len(found))
        say(f"planted pairs found: {planted_found:,} of {len(self.data.planted):,} "
            f"({planted_found / max(len(self.data.planted), 1):.3f}); matches {len(found):,}, "
            f"{len(found) - planted_found:,} of them not planted")
        planted_ids = {(min(ids[p.left], ids[p.right]), max(ids[p.left], ids[p.right])) for p in self.data.planted
                       if p.left in ids and p.right in ids}
        others = {"persons": 0, "organizations": 0}
        for kind, n in rows.values_list("entity_type").annotate(n=Count("id")).values_list("entity_type", "n"):
            others[f"{kind}s"] = n
        for kind, n in collections.Counter(f"{t}s" for t, a, b in rows.values_list("entity_type", "left_id",
                                                                                   "right_id")
                                           if (a, b) in planted_ids).items():
            others[kind] -= n
        self.results["others"] = others
        say("  by kind: " + ", ".join(f"{k} {h / n:.3f} (and {others.get(k, 0):,} matches not planted)"
                                      for k, (h, n) in sorted(per_kind.items())))
        for kind in ("person", "organization"):
            top = [m for m in rows.filter(entity_type=kind).order_by("-score")[:200]
                   if (m.left_id, m.right_id) not in planted_ids][:2]
            for m in top:
                say(f"  not planted, {kind}: {m.score:.3f} {m.explanation[:200]}")
        say("  by variation: " + ", ".join(f"{k} {h / n:.3f} ({n:,})" for k, (h, n) in sorted(per_variation.items())))

    def new_records(self) -> None:
        """A new person duplicating an existing one, created as the API creates it: delay until its Match row."""
        from django.db.models import Q

        from entities import services
        from entities.api.serializers import PersonSerializer
        from entities.models import Person
        from xref.models import Match

        planted = {sid for pair in self.data.planted for sid in (pair.left, pair.right)}
        rng = random.Random(7)
        originals = [r for r in self.data.persons if r["source_id"] not in planted and r.get("birth_date")
                     and (r.get("phones") or r.get("identifiers")) and not any("\u4e00" <= ch <= "\u9fff"
                                                                                 for ch in r["name"])]
        delays: list[float] = []
        for n, row in enumerate(rng.sample(originals, min(NEW_RECORDS, len(originals)))):
            name = row["name"].split()
            payload: dict[str, Any] = {"name": " ".join([*name[1:], name[0]]), "birth_date": row["birth_date"],
                       "nationalities": row["nationalities"].split(";"), "source": "xref-scale-new",
                       "source_id": f"new-{n}"}
            if row.get("phones"):
                payload["phones"] = row["phones"].split(";")
            if row.get("identifiers"):
                scheme, number, country = row["identifiers"].split(";")[0].split(":")
                payload["identifiers"] = [{"scheme": scheme, "number": number, "country": country}]
            serializer = PersonSerializer(data=payload)
            serializer.is_valid(raise_exception=True)
            person = services.person_create(agency=self.agency, actor=self.user, data=serializer.validated_data)
            committed = time.perf_counter()  # person_create commits before it returns
            original = Person.objects.get(agency=self.agency, source=SOURCE, source_id=row["source_id"])
            listed = Match.objects.filter(Q(left=person, right=original) | Q(left=original, right=person),
                                          archived=False)
            try:
                wait("new record's match", listed.exists, 30, every=0.02)
            except TimeoutError:
                say(f"  new person {payload['name']!r}: no match with {row['name']!r} after 30 s")
                if not Match.objects.exists():
                    break  # no match at all: incremental cross-referencing does not run
                continue
            delays.append(time.perf_counter() - committed)
            say(f"  new person {payload['name']!r} ~ {row['name']!r}: listed {delays[-1]:.3f} s after its commit")
            time.sleep(0.5)
        self.results["delays"] = (delays, NEW_RECORDS)


# --- the report ---------------------------------------------------------------------------------------------------


def report(results: dict[str, Any], data: Generated, args: argparse.Namespace) -> None:
    rows = len(data.persons) + len(data.organizations)
    lines: list[tuple[str, str, str]] = []

    def line(what: str, value: str, aim: str = "") -> None:
        lines.append((what, value, aim))

    line("records", f"{len(data.persons):,} persons + {len(data.organizations):,} organisations, "
                    f"{len(data.planted):,} planted pairs")
    line("workers", f"{args.workers} process(es), one solo pool each")
    if "caps" in results:
        size, share = results["caps"]
        line("block caps", f"XREF_BLOCK_MAX_SIZE {size}, XREF_BLOCK_MAX_SHARE {share}")
    if "import" in results:
        seconds, rate = results["import"]
        drain = results.get("drain")
        after = f"drained {drain:.1f} s later" if drain is not None else f"not drained in {args.timeout:.0f} s"
        line("import", f"{seconds:.1f} s ({rate:,.0f} rows/s), its xref {after}")
    if "tasks" in results:
        total = sum(results["tasks"].values())
        line("xref tasks enqueued by the import", f"{total:,} for {rows:,} rows",
             f"≤ a few hundred {_ok(total <= AIMS['tasks'])}")
    if "run" in results:
        status, seconds, candidates, matches, parts = results["run"]
        line("full run wall time", f"{seconds:.1f} s ({status}, {parts} parts)",
             f"< 300 s {_ok(status == 'succeeded' and seconds < AIMS['run_seconds'])}")
        share = candidates / rows**2 if rows else 0
        line("candidate pairs / n²", f"{candidates:,} / {rows:,}² = {share:.4%}",
             f"< 0.1% {_ok(share < AIMS['candidates_share'])}")
    if "recall" in results:
        found, planted, matches = results["recall"]
        recall = found / planted if planted else 0
        line("planted recall", f"{recall:.3f} ({found:,} of {planted:,}; {matches:,} matches)",
             f"≥ 0.95 {_ok(recall >= AIMS['recall'])}")
        others = results.get("others", {})
        line("matches not planted", f"{others.get('persons', 0):,} of persons, "
                                    f"{others.get('organizations', 0):,} of organisations")
    if "delays" in results:
        delays, tried = results["delays"]
        if delays:
            line("new record → match listed", f"median {statistics.median(delays):.3f} s, max {max(delays):.3f} s "
                                              f"({len(delays)} of {tried})",
                 f"< 2 s {_ok(len(delays) == tried and max(delays) < AIMS['delay_seconds'])}")
        else:
            line("new record → match listed", f"no match in 30 s ({tried} tried)", "< 2 s no")
    width = max(len(w) for w, _, _ in lines)
    value_width = max(len(v) for _, v, _ in lines)
    say("")
    for what, value, aim in lines:
        say(f"{what:<{width}}  {value:<{value_width}}  {aim}")


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


if __name__ == "__main__":
    main()


def bench_investigator(code: str, name: str, username: str = "bench-investigator") -> tuple[Any, Any, str]:
    """A bench's agency, its investigator (secret clearance, in unit `bench`) and a token of theirs, made through
    the accounts services as an agency admin would make them: (agency, user, token key)."""
    from accounts.services import agency_ensure, token_issue, unit_ensure, user_ensure

    agency, _ = agency_ensure(code=code, name=name)
    unit, _ = unit_ensure(agency=agency, code="bench", name="Bench")
    user, _ = user_ensure(username=username, agency=agency, unit=unit, role="investigator", clearance="secret")
    _, token = token_issue(user=user)
    return agency, user, token


@contextmanager
def bench_session(suffix: str, queue_prefix: str, keep: bool) -> Iterator[str]:
    """A bench's database (`bench_database`) for the length of the block, dropped after it unless `keep`."""
    database = bench_database(suffix, queue_prefix)
    try:
        yield database
    finally:
        from django.db import connections

        connections.close_all()
        if keep:
            say(f"kept: database {database}")
        else:
            drop_database(database)
