"""The API under load: gunicorn (2 workers) on loopback with a Celery worker, each endpoint driven at a fixed
concurrency beside its raw-SQL baseline served by the same server in the same run.

    python bench/load.py [--clients 8] [--seconds 15] [--persons 20000] [--organizations 5000]
                         [--shipments 20000] [--cases 200] [--only NAME] [--keep]

1. Seeds a database of its own through the bulk services an import uses (entities_upsert, shipments_upsert) and
   the cases' services (case_create, party_add): persons, organisations, shipments between the organisations, and
   cases with parties (seeded, the same on every machine); an investigator of the bench agency with a token. The
   seed's cross-referencing tasks are dropped and the tables ANALYZEd, so the run starts from a settled database.
2. Starts one Celery worker (solo pool) on the bench's queues, and gunicorn with 2 workers on a free loopback port
   (config.wsgi; with config/gunicorn.py when the project has one) under bench/_load_settings.py: the project's
   settings, throttles raised (THROTTLE_USER, THROTTLE_ANON) and URLs with the raw baselines of bench/_load_urls.py
   (plain Django views running the hand-written SQL of the floor of work each endpoint's contract requires: the
   token's lookup, the caller's scope, the columns answered, and the audit event and outbox row the contract
   makes part of a view or a write; no DRF, no ORM; never in config.urls).
3. For each endpoint, `--clients` client processes (http.client; a connection each, kept while the server keeps it)
   send requests for `--seconds` with the token, first to the API, then to its raw baseline:
   list      GET /api/v1/persons/?page_size=50, GET /api/v1/shipments/?page_size=50
   detail    GET /api/v1/persons/{id}/ (ids drawn in turn)
   search    GET /api/v1/search/?q=<a seeded name>
   writes    POST /api/v1/persons/, PATCH /api/v1/cases/{id}/ with If-Match (a case per client, its ETag kept)
   and prints, per endpoint, requests, throughput, p50/p95/p99 latency and errors (non-2xx or no answer) of both,
   and the ratio of the API's throughput to the baseline's. Aims: 0 errors; each ratio 0.5 or more.

The bench has a database of its own, `<DATABASE_URL's name>_load`, created afresh and migrated by this script,
dropped at the end unless `--keep`; the worker uses it and queues of its own (TASK_QUEUE_PREFIX) on REDIS_URL's
Redis. The machine's other load shows in the figures: run it on an idle machine for numbers to compare.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")

from xref_scale import bench_investigator, bench_session, say, workers  # noqa: E402

AGENCY = "BENCH"
SOURCE = "bench-load"
SERVER_SETTINGS = "bench._load_settings"
THROTTLE = "100000000/minute"  # the bench measures the API, not its rate limits
AIMS = {"errors": 0, "ratio": 0.5}
SURNAMES = ["Zhang", "Wang", "Li", "Liu", "Chen", "Nguyen", "Tran", "Petrov", "Ivanova", "Smith", "Muller", "Kowalski",
            "Sato", "Kim", "Park", "Singh", "Haddad", "Okafor", "Silva", "Novak", "Luo", "Huang", "Zhao", "Wu"]
GIVEN = ["Wei", "Fang", "Lan", "Minh", "Anh", "Ivan", "Olga", "John", "Anna", "Jin", "Hiro", "Ravi", "Omar", "Mei",
         "Tao", "Lin", "Sergei", "Maria", "Chen", "Yun", "Duc", "Hoa", "Karim", "Lena"]
WORDS = ["Golden", "River", "Eastern", "Pacific", "Harbour", "Summit", "Jade", "Silver", "Northern", "Bright",
         "Orient", "Delta", "Crown", "Pearl", "Lotus", "Phoenix"]
TRADES = ["Metals", "Trading", "Minerals", "Logistics", "Resources", "Import Export", "Materials", "Industries"]
COMMODITIES = ["antimony", "gallium", "germanium", "graphite", "rare_earths", "tungsten"]
DESTINATIONS = ["DE", "NL", "JP", "KR", "US", "FR", "IT", "GB", "VN", "TH"]
STATUSES = ["declared", "in_transit", "delivered", "delivered", "intercepted", "seized", "released"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each endpoint's run, and its raw's")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--organizations", type=int, default=5_000)
    parser.add_argument("--shipments", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--only", default="", help="drive only the endpoints whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    with bench_session("load", "load-bench", args.keep):
        seed = Seed(args)
        seed.load()
        # Client processes are spawned, not forked: a fork would inherit this process's broker and database
        # connections.
        with (tempfile.TemporaryDirectory() as tmp, workers(1, Path(tmp)), server(Path(tmp)) as port,
              multiprocessing.get_context("spawn").Pool(args.clients) as pool):
            rows = [drive(pool, endpoint, port, seed, args) for endpoint in endpoints(seed, args.clients)
                    if args.only in endpoint.name]
        report(rows, args)


# --- 1. the data ---------------------------------------------------------------------------------------------------


class Seed:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(11)
        self.token = ""
        self.person_ids: list[str] = []
        self.case_ids: list[str] = []
        self.queries: list[str] = []

    def load(self) -> None:
        from django.db import connection

        started = time.perf_counter()
        self.agency, self.user, self.token = bench_investigator(AGENCY, "Benchmark agency")
        self.load_entities()
        self.load_shipments()
        self.load_cases()
        drop_queued()
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load, were it not behind
            cursor.execute("ANALYZE")
        say(f"seeded in {time.perf_counter() - started:.1f} s")

    def person_name(self) -> str:
        return f"{self.rng.choice(GIVEN)} {self.rng.choice(SURNAMES)} {self.rng.choice(SURNAMES)}"

    def load_entities(self) -> None:
        from entities.bulk import entities_upsert
        from entities.models import Entity

        persons = [{"source": SOURCE, "source_id": f"person-{i:06d}", "type": "person", "name": self.person_name(),
                    "birth_date": date(1950, 1, 1) + timedelta(days=self.rng.randrange(20000)),
                    "nationalities": [self.rng.choice(["CN", "VN", "RU", "KZ", "TH", "US"])],
                    "phones": [f"+8613{i:09d}"], "emails": [f"person{i}@example.org"],
                    "addresses": [{"text": f"{i % 300} {self.rng.choice(WORDS)} Road, Ningbo", "country": "CN"}]}
                   for i in range(self.args.persons)]
        orgs = [{"source": SOURCE, "source_id": f"org-{i:06d}", "type": "organization",
                 "name": f"{self.rng.choice(WORDS)} {self.rng.choice(WORDS)} {self.rng.choice(TRADES)} {i} Co., Ltd.",
                 "kind": "company", "jurisdiction": self.rng.choice(["CN", "HK", "VN", "SG"]),
                 "registration_number": f"9133{i:010d}", "phones": [f"+86574{i:08d}"]}
                for i in range(self.args.organizations)]
        for rows in (persons, orgs):
            for chunk in range(0, len(rows), 5000):
                entities_upsert(agency=self.agency, actor=None, rows=rows[chunk:chunk + 5000])
        self.person_ids = [str(pk) for pk in Entity.objects.filter(agency=self.agency, type="person")
                           .order_by("source_id").values_list("pk", flat=True)]
        self.org_ids = list(Entity.objects.filter(agency=self.agency, type="organization")
                            .order_by("source_id").values_list("pk", flat=True))
        names = list(Entity.objects.filter(agency=self.agency, type="person").values_list("name", flat=True)[:500])
        self.queries = sorted({" ".join(name.split()[:2]) for name in names})[:50]
        say(f"loaded {len(self.person_ids):,} persons and {len(self.org_ids):,} organisations")

    def load_shipments(self) -> None:
        from cases.models import Commodity
        from shipments.bulk import shipments_upsert

        commodities = {c.code: c for c in Commodity.objects.all()}
        rows = []
        for i in range(self.args.shipments):
            commodity = commodities[COMMODITIES[i % len(COMMODITIES)]]
            quantity = Decimal(self.rng.randrange(100, 20000))
            rows.append({
                "source": SOURCE, "source_id": f"shipment-{i:07d}", "reference": f"LOAD-{i:07d}", "currency": "USD",
                "commodity_id": commodity.code, "hs_code": commodity.hs_codes[0],
                "declared_hs_code": commodity.hs_codes[0], "declared_description": commodity.name,
                "quantity_kg": quantity, "declared_value": quantity * (commodity.reference_value_per_kg or 1),
                "origin_country": "CN", "destination_country": self.rng.choice(DESTINATIONS),
                "transit_countries": [], "status": self.rng.choice(STATUSES),
                "departed_on": date(2024, 1, 1) + timedelta(days=self.rng.randrange(700)),
                "consignor_id": self.rng.choice(self.org_ids), "consignee_id": self.rng.choice(self.org_ids),
                "notify_party_id": None, "licence_id": None})
        for chunk in range(0, len(rows), 5000):
            shipments_upsert(agency=self.agency, actor=None, rows=rows[chunk:chunk + 5000])
        say(f"loaded {len(rows):,} shipments")

    def load_cases(self) -> None:
        from django.db import transaction

        from cases.services import case_create, party_add
        from entities.models import Entity

        with transaction.atomic():
            for n in range(self.args.cases):
                case = case_create(agency=self.agency, actor=self.user, data={
                    "title": f"Operation {self.rng.choice(WORDS)} {n}", "classification": "restricted",
                    "summary": "Antimony and gallium routed through third countries."})
                for pk in self.rng.sample(self.person_ids, 3):
                    party_add(case=case, actor=self.user, data={"entity": Entity.objects.get(pk=pk),
                                                                "role": "suspect"})
                self.case_ids.append(str(case.pk))
        say(f"created {len(self.case_ids)} cases with 3 parties each")


def drop_queued() -> None:
    """The seed's tasks wait in the bench's queues (no worker yet): drop them, so the run starts settled."""
    from typing import cast

    from django.conf import settings

    from config.celery import app

    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        client = cast(Any, connection.default_channel).client
        client.delete(*(f"{settings.TASK_QUEUE_PREFIX}{queue}" for queue in settings.TASK_QUEUES))


# --- 2. the server -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(logs: Path) -> Iterator[int]:
    """gunicorn, 2 workers, on a free loopback port: the project's WSGI application under the bench's settings."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    if (ROOT / "config" / "gunicorn.py").exists():
        command += ["-c", "config/gunicorn.py"]
    command += ["--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "120"]
    metrics = logs / "metrics"
    metrics.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS, "THROTTLE_USER": THROTTLE,
           "THROTTLE_ANON": THROTTLE, "WEB_CONCURRENCY": "2", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics), "LOG_LEVEL": "WARNING"}
    log = logs / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        say(f"gunicorn (2 workers) on 127.0.0.1:{port}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line
                  or "ERROR" in line]
        if errors:
            say(f"gunicorn logged {len(errors)} error line(s); the last lines of its log:\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))


# --- 3. the load ---------------------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    method: str
    api: str  # path with {item}: filled from `items`, in turn
    raw: str
    items: list[str] = field(default_factory=list)
    body: str = ""  # a JSON body with {n}: a number unique to the request
    versioned: bool = False  # PATCH with If-Match: the client keeps its item's ETag


def endpoints(seed: Seed, clients: int) -> list[Endpoint]:
    return [
        Endpoint("list persons", "GET", "/api/v1/persons/?page_size=50", "/raw/persons/?page_size=50"),
        Endpoint("list shipments", "GET", "/api/v1/shipments/?page_size=50", "/raw/shipments/?page_size=50"),
        Endpoint("detail person", "GET", "/api/v1/persons/{item}/", "/raw/persons/{item}/", items=seed.person_ids),
        Endpoint("search", "GET", "/api/v1/search/?q={item}", "/raw/search/?q={item}",
                 items=[query.replace(" ", "+") for query in seed.queries]),
        Endpoint("create person", "POST", "/api/v1/persons/", "/raw/persons/",
                 body='{{"name": "Load Person {n}", "nationalities": ["CN"]}}'),
        Endpoint("patch case (If-Match)", "PATCH", "/api/v1/cases/{item}/", "/raw/cases/{item}/",
                 items=seed.case_ids[:clients], body='{{"title": "Operation renamed {n}"}}', versioned=True),
    ]


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, other: Result) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds = max(self.seconds, other.seconds)
        self.latencies += other.latencies
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def client(job: tuple[int, int, str, str, str, list[str], str, bool, float, dict[str, str]]) -> Result:
    """One client: requests in a loop on one connection for `seconds`."""
    port, number, method, template, token, items, body, versioned, seconds, versions = job
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    # A versioned client writes its own item (a case each); the others walk the items from their own offset.
    mine = [items[number % len(items)]] if versioned else items
    result = Result()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    sent = 0
    started = time.perf_counter()
    while (now := time.perf_counter()) - started < seconds:
        item = mine[(number * 7919 + sent) % len(mine)] if mine else ""
        path = template.format(item=item)
        payload = body.format(n=f"{number}-{sent}") if body else None
        if versioned:
            headers["If-Match"] = f'"{versions[item]}"'
        sent += 1
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if versioned and status == 200:
                versions[item] = (response.getheader("ETag") or "").strip('"')
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException):
            connection.close()
            status = 0
        result.latencies.append(time.perf_counter() - now)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.requests += 1
        result.errors += not 200 <= status < 300
    result.seconds = time.perf_counter() - started
    connection.close()
    return result


def run(pool: Any, endpoint: Endpoint, port: int, path: str, token: str, clients: int, seconds: float) -> Result:
    from cases.models import Case

    versions = {str(pk): str(version) for pk, version in Case.objects.filter(pk__in=endpoint.items)
                .values_list("pk", "version")} if endpoint.versioned else {}
    jobs = [(port, number, endpoint.method, path, token, endpoint.items, endpoint.body, endpoint.versioned, seconds,
             versions) for number in range(clients)]
    total = Result()
    for result in pool.map(client, jobs, chunksize=1):
        total.add(result)
    return total


def drive(pool: Any, endpoint: Endpoint, port: int, seed: Seed, args: argparse.Namespace) -> tuple[str, Result, Result]:
    run(pool, endpoint, port, endpoint.api, seed.token, args.clients, min(2.0, args.seconds))  # warm both up
    run(pool, endpoint, port, endpoint.raw, seed.token, args.clients, min(2.0, args.seconds))
    api = run(pool, endpoint, port, endpoint.api, seed.token, args.clients, args.seconds)
    raw = run(pool, endpoint, port, endpoint.raw, seed.token, args.clients, args.seconds)
    say(f"{endpoint.name}: API {api.throughput:.1f} req/s ({api.errors} errors {statuses(api)}), "
        f"raw {raw.throughput:.1f} req/s ({raw.errors} errors {statuses(raw)})")
    return endpoint.name, api, raw


def statuses(result: Result) -> str:
    return json.dumps({str(status): count for status, count in sorted(result.statuses.items())})


def report(rows: list[tuple[str, Result, Result]], args: argparse.Namespace) -> None:
    say("")
    say(f"{args.clients} clients, {args.seconds:.0f} s per endpoint and per baseline; latency in ms; "
        f"aims: 0 errors, ratio >= {AIMS['ratio']}")
    header = (f"{'endpoint':<24} {'':>4} {'requests':>8} {'req/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
              f"{'errors':>6} {'ratio':>6}  aim")
    say(header)
    say("-" * len(header))
    for name, api, raw in rows:
        ratio = api.throughput / raw.throughput if raw.throughput else 0.0
        met = api.errors == 0 and raw.errors == 0 and ratio >= AIMS["ratio"]
        for label, result in (("API", api), ("raw", raw)):
            first = label == "API"
            say(f"{name if first else '':<24} {label:>4} {result.requests:>8} {result.throughput:>8.1f} "
                f"{result.percentile(0.50):>7.1f} {result.percentile(0.95):>7.1f} {result.percentile(0.99):>7.1f} "
                f"{result.errors:>6} " + (f"{ratio:>6.2f}  {'met' if met else 'MISSED'}" if first else ""))


if __name__ == "__main__":
    main()
