"""Bulk import speed: generated shipment rows with parties through the real import path, beside COPY.

    python bench/import.py [--rows N]        (default 100,000)

Writes a CSV of N shipments (parties drawn from a pool of organisation names written in several
spellings, so party resolution has work to do), runs it as an import job of a dedicated agency (BENCH)
through imports.services.run_job (validation with the API's rules, party resolution, upserts by
source_id, an audit event per record written and one for the job), then COPYs the same file into a
plain table in the same database, and prints rows/s of both and their ratio.

Memory: a file of N/10 rows is imported first; the process's peak resident size after it and after the
N-row file shows whether memory grows with the file (it should not: files are streamed, batches are
bounded).

DJANGO_SETTINGS_MODULE defaults to config.settings.local; the database is DATABASE_URL's.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.core.files import File  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import Agency  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from imports.models import ImportJob  # noqa: E402
from imports.services import run_job  # noqa: E402

COLUMNS = ["source_id", "reference", "hs_code", "quantity_kg", "declared_value", "currency", "origin_country",
           "destination_country", "transit_countries", "consignor", "consignor_country", "consignee",
           "consignee_country", "consignee_registration_number", "notify_party", "notify_party_country"]
SPELLINGS = ["{} Trading Co., Ltd.", "{} TRADING CO LTD", "{} Trading Company Limited"]
COUNTRIES = ["CN", "HK", "SG", "VN", "TR", "AE", "DE", "NL", "MY", "TH"]


def write_file(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    companies = [(f"Company{n:04d}", rng.choice(COUNTRIES)) for n in range(2000)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            (a, ca), (b, cb), (c, cc) = rng.sample(companies, 3)
            writer.writerow([f"bench-{i}", f"BL-{i:07d}", rng.choice(["8110", "2617", "8112"]),
                             f"{rng.uniform(10, 50000):.3f}", f"{rng.uniform(1000, 900000):.2f}", "USD", "CN",
                             rng.choice(["DE", "NL", "US"]), ";".join(rng.sample(COUNTRIES[2:6], 2)),
                             rng.choice(SPELLINGS).format(a), ca, rng.choice(SPELLINGS).format(b), cb, "",
                             rng.choice(SPELLINGS).format(c), cc])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    agency, _ = Agency.objects.get_or_create(code="BENCH", defaults={"name": "Benchmark agency"})
    small = max(args.rows // 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shipments.csv"
        write_file(path, small, seed=11)
        job, _ = run_import(agency, path)
        peak_small = peak_mib()
        write_file(path, args.rows)
        job, import_seconds = run_import(agency, path)
        peak_big = peak_mib()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_copy_shipments")
            cursor.execute("CREATE TABLE bench_copy_shipments (" + ", ".join(f"{c} text" for c in COLUMNS) + ")")
            started = time.perf_counter()
            with path.open("rb") as handle, cursor.copy(
                    "COPY bench_copy_shipments FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    copy.write(chunk)
            copy_seconds = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_copy_shipments")
    import_rate, copy_rate = args.rows / import_seconds, args.rows / copy_seconds
    print(f"rows: {args.rows}  created {job.created}, failed {job.failed_rows}, "
          f"audit events {AuditEvent.objects.filter(request_id=str(job.pk)).count()}")
    print(f"import: {import_seconds:.1f} s, {import_rate:,.0f} rows/s")
    print(f"COPY:   {copy_seconds:.2f} s, {copy_rate:,.0f} rows/s")
    print(f"import / COPY rate: 1/{copy_rate / import_rate:.1f}")
    print(f"peak resident memory: {peak_small:.0f} MiB after {small:,} rows, {peak_big:.0f} MiB after {args.rows:,}")


def run_import(agency: Agency, path: Path) -> tuple[ImportJob, float]:
    label = f"bench-{uuid.uuid4().hex[:8]}"  # a fresh source: every row is created
    with path.open("rb") as handle:
        job = ImportJob(agency=agency, kind="shipments", source=label)
        job.file.save(path.name, File(handle), save=False)
        job.save()
    started = time.perf_counter()
    job = run_job(job.pk)
    seconds = time.perf_counter() - started
    assert job.status == "succeeded", job.error
    return job, seconds


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


if __name__ == "__main__":
    main()
