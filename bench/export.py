"""What an export of a list costs, and that its memory does not grow with its rows.

    python bench/export.py [--rows N]          (default 100,000; a smaller N for a quick look)

Loads, once and idempotently, a dedicated agency (BENCH-EXPORT) with N persons (names, a name variant, a birth
date, a nationality, an identifier, an address, a phone, a source id) through the bulk service
(entities.bulk.entities_create, as an import writes them); one person in ten is CN, so `?nationality=CN` selects a
tenth of them. Then, in the same run and against the same rows:

- the baseline: PostgreSQL's `COPY (SELECT …) TO STDOUT WITH CSV` of the same persons and columns, read whole by
  psycopg (no HTTP, no Python per row);
- the API: `GET /api/v1/persons/?format=csv` and `?format=xlsx` through Django's test client in-process (the
  middleware, a real token, the access policy, the filters, the streamed body read to its end and dropped), for
  the tenth (`nationality=CN`) and for all N.

It prints rows/s of each, and the peak of memory each export added to the process: Python's allocations traced by
tracemalloc (its peak during the export, over what was allocated before it) and the growth of the process's
resident set (psutil, sampled as the stream is read). Constant memory means the peak for N rows is about the peak
for N/10 (the aim: within 1.5x, and a few MiB).

DJANGO_SETTINGS_MODULE defaults to config.settings.local (DEBUG off, so queries are not kept); the database is
DATABASE_URL's.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import random
import sys
import time
import tracemalloc
from typing import Any

import _django_setup  # noqa: F401  (the project on the path, its settings, Django set up)
import psutil
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient
from xref_scale import bench_investigator

from accounts.models import Agency, User
from entities.bulk import entities_create
from entities.models import Entity, EntityType

AGENCY = "BENCH-EXPORT"
SOURCE = "bench-export"
BATCH = 5_000
URL = "/api/v1/persons/"
SURNAMES = ["Zhang", "Wang", "Li", "Nguyen", "Tran", "Petrov", "Ivanova", "Smith", "Müller", "Sato", "Kim", "Singh"]
GIVEN = ["Wei", "Fang", "Minh", "Anh", "Ivan", "Olga", "John", "Anna", "Jin", "Hiro", "Ravi", "Omar"]
OTHERS = ["VN", "MY", "TH", "KZ", "RU", "IN", "DE", "US", "JP"]
BASELINE_SQL = """
COPY (
    SELECT name, array_to_string(names, ';'), gender, birth_date, birth_place, array_to_string(nationalities, ';'),
           identifiers::text, addresses::text, array_to_string(phones, ';'), array_to_string(emails, ';'), notes,
           source, source_id, array_to_string(topics, ';')
    FROM entities_entity
    WHERE agency_id = %s AND type = 'person' AND NOT archived {where}
    ORDER BY name, id
) TO STDOUT WITH CSV HEADER
"""


def say(message: str) -> None:
    print(message, flush=True)


def load(total: int) -> tuple[Agency, User, str]:
    """The bench's agency, its investigator and a token key of theirs, and `total` persons of the agency."""
    call_command("migrate", verbosity=0)
    agency, user, key = bench_investigator(AGENCY, "Export benchmark", username="bench-export")
    have = set(Entity.objects.filter(agency=agency, source=SOURCE).values_list("source_id", flat=True))
    todo = [i for i in range(total) if f"P{i}" not in have]
    rng = random.Random(20261130)  # the same persons on every machine
    started = time.perf_counter()
    for start in range(0, len(todo), BATCH):
        batch = []
        for i in todo[start:start + BATCH]:
            country = "CN" if i % 10 == 0 else rng.choice(OTHERS)
            surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
            batch.append(Entity(
                type=EntityType.PERSON, name=f"{surname} {given} {i}", names=[f"{given} {surname} {i}"],
                birth_date=datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(20000)),
                nationalities=[country],
                identifiers=[{"scheme": "passport", "number": f"E{i:08d}", "country": country}],
                addresses=[{"text": f"{i} Harbour Road", "country": country}], phones=[f"+8613{i:09d}"],
                notes="=formula-looking note" if i % 7 == 0 else "", source=SOURCE, source_id=f"P{i}"))
        entities_create(agency=agency, actor=user, entities=batch)
    if todo:
        say(f"  loaded {len(todo):,} persons in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE entities_entity")
    return agency, user, key


def baseline(agency: Agency, cn_only: bool) -> tuple[int, float]:
    """(rows, seconds) of PostgreSQL writing the same persons as CSV itself."""
    where = "AND nationalities @> ARRAY['CN']::varchar[]" if cn_only else ""
    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY … TO STDOUT
        with raw.copy(BASELINE_SQL.format(where=where), (agency.pk,)) as copy:
            lines = 0
            for chunk in copy:
                size += len(chunk)
                lines += bytes(chunk).count(b"\n")
    return lines - 1, time.perf_counter() - started


def export(client: APIClient, fmt: str, cn_only: bool, traced: bool) -> dict[str, Any]:
    """One export read to its end: rows (from the audit event's count), seconds, and the memory it added."""
    from audit.models import AuditEvent

    params = {"format": fmt, **({"nationality": "CN"} if cn_only else {})}
    process = psutil.Process()
    gc.collect()
    rss_before = rss_peak = process.memory_info().rss
    if traced:
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
    started = time.perf_counter()
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    size = 0
    for number, chunk in enumerate(response.streaming_content):  # type: ignore[attr-defined]
        size += len(chunk)
        if number % 8 == 0:
            rss_peak = max(rss_peak, process.memory_info().rss)
    seconds = time.perf_counter() - started
    rss_peak = max(rss_peak, process.memory_info().rss)
    result = {"seconds": seconds, "bytes": size, "rss_growth": rss_peak - rss_before}
    if traced:
        result["traced_peak"] = tracemalloc.get_traced_memory()[1] - traced_before
        tracemalloc.stop()
    event = AuditEvent.objects.filter(action="export").order_by("-at").first()
    assert event is not None
    result["rows"] = event.changes["rows"][1]
    return result


def mib(value: float) -> str:
    return f"{value / (1024 * 1024):.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    agency, _, key = load(args.rows)
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    say(f"persons of {AGENCY}: {Entity.objects.filter(agency=agency, source=SOURCE).count():,}")
    export(client, "csv", True, traced=False)  # warm: imports, the first query plans
    say(f"{'what':<34}{'rows':>9}{'rows/s':>10}{'traced peak':>14}{'RSS growth':>13}")
    for cn_only in (True, False):
        rows, seconds = baseline(agency, cn_only)
        say(f"{'COPY … TO STDOUT WITH CSV':<34}{rows:>9,}{rows / seconds:>10,.0f}{'-':>14}{'-':>13}")
        for fmt in ("csv", "xlsx"):
            timed = export(client, fmt, cn_only, traced=False)
            traced = export(client, fmt, cn_only, traced=True)
            label = f"GET ?format={fmt}" + (" (nationality=CN)" if cn_only else "")
            say(f"{label:<34}{timed['rows']:>9,}{timed['rows'] / timed['seconds']:>10,.0f}"
                f"{mib(traced['traced_peak']):>14}{mib(timed['rss_growth']):>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
