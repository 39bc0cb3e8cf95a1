"""Red-flag rules at scale: generated shipments with parties and licences, a planted share that must fire each
rule, a full pass by Celery workers, and one new shipment's alert timed.

    python bench/alerts.py [--shipments N] [--workers N] [--keep]      (defaults: 100,000 shipments, 2 workers)

1. Generates and loads, through the bulk services an import uses (entities_upsert, links_upsert,
   shipments_upsert; licences, the case and its parties through their single services): N/5 organisations,
   suspects and witnesses of one case, N/100 licences and N shipments (seeded, the same on every machine). A
   shipment is licensed and in order unless its number puts it in a planted class (a hundredth of the shipments
   each): no licence (after the control date; and antimony on 2024-09-14, the day before its control date, which
   must not fire), an invalid licence, a licence exceeded over its shipments, a transit through a third country,
   a mis-declared HS code, a value far below the reference, a new company as consignee, a notify party that
   cross-referencing matches to a listed entry (the matches written by xref.services.records_changed here), and
   organisations sharing an address, a phone or a director with a suspect. The writes' outbox tasks are dropped
   before the workers start: the pass is measured alone.
2. A full pass (alerts.services.run_create: `alerts.run` plans it, the workers share its `alerts.run_part`s):
   wall time until the AlertRun has succeeded (aim: under 2 minutes with 2 workers), alerts per rule against
   what was planted (every planted shipment or organisation found; none of the clean ones).
3. A raw baseline in the same database: the shipment rules' checks as plain SQL counts over the table; the ratio
   of the pass to it.
4. Creates one new unlicensed shipment through shipment_create, as the API does, and times the delay from its
   commit to its alert being there to list (aim: under 2 s), a few times: median and maximum.

The bench has a database of its own, `<DATABASE_URL's name>_alerts`, created afresh and migrated by this script,
dropped at the end unless `--keep`; the workers use it and queues of their own (TASK_QUEUE_PREFIX) on REDIS_URL's
Redis. DJANGO_SETTINGS_MODULE defaults to config.settings.local (DEBUG off).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The project's packages come first: this file's own name is the alerts app's, and its directory (where the other
# benches are found, last) must not hide the app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")

from xref_scale import bench_database, drop_database, say, wait, workers  # noqa: E402

AGENCY = "BENCH"
SOURCE = "bench-alerts"
NEW_SHIPMENTS = 5
AIMS = {"run_seconds": 120.0, "delay_seconds": 2.0}
# Planted classes, by a shipment's number modulo 100 (the rest, 10 to 99, are in order).
UNLICENSED, INVALID, EXCEEDED, TRANSIT, MISDECLARED, CHEAP, DAY_BEFORE, DAY_AFTER, NEW_COMPANY, LISTED = range(10)
SUSPECTS, WITNESSES, LISTED_ENTRIES = 100, 50, 20
SHARED = 100  # organisations planted per shared_* rule, and new companies
FIRST_DAY = date(2025, 4, 5)  # shipments leave from then on, every commodity controlled by then
NEW_COMPANIES_SINCE = date(2025, 4, 1)
COMMODITIES = ["antimony", "gallium", "germanium", "graphite", "rare_earths", "tungsten"]
DESTINATIONS = ["DE", "NL", "JP", "KR", "US", "FR", "IT", "GB"]
ROLES = ["ringleader", "financier", "organiser", "courier", "facilitator", "suspect"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (one solo pool each)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each stage")
    args = parser.parse_args()

    database = bench_database("alerts", "alerts-bench")
    results: dict[str, Any] = {}
    try:
        bench = Bench(args.shipments, results, args.timeout)
        bench.load()
        with tempfile.TemporaryDirectory() as tmp, workers(args.workers, Path(tmp)):
            bench.full_pass()
            bench.baseline()
            bench.new_shipments()
    finally:
        report(results, args)
        if args.keep:
            say(f"kept: database {database}")
        else:
            from django.db import connections

            connections.close_all()
            drop_database(database)


class Bench:
    def __init__(self, shipments: int, results: dict[str, Any], timeout: float) -> None:
        from accounts.models import Agency, Unit, User

        self.n, self.results, self.timeout = shipments, results, timeout
        self.rng = random.Random(10)
        self.agency, _ = Agency.objects.get_or_create(code=AGENCY, defaults={"name": "Benchmark agency"})
        unit, _ = Unit.objects.get_or_create(agency=self.agency, code="bench", defaults={"name": "Bench"})
        self.user, _ = User.objects.get_or_create(username="bench-investigator", defaults={
            "agency": self.agency, "unit": unit, "role": "investigator", "clearance": "secret"})
        self.planted: dict[str, set[Any]] = collections.defaultdict(set)  # rule -> planted source_ids
        self.clean: set[str] = set()  # shipments in order
        results["planted"], results["clean"] = self.planted, self.clean

    # --- 1. generate and load -------------------------------------------------------------------------------------

    def load(self) -> None:
        from django.db import connection

        started = time.perf_counter()
        orgs = self.load_entities()
        licences = self.load_licences(orgs)
        self.load_shipments(orgs, licences)
        self.cross_reference_listed()
        self.drop_queued()
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load, were it not behind
            cursor.execute("ANALYZE")
        self.results["load"] = time.perf_counter() - started
        say(f"loaded in {self.results['load']:.1f} s")

    def entity_ids(self, prefix: str) -> dict[str, Any]:
        from entities.models import Entity

        return dict(Entity.objects.filter(agency=self.agency, source=SOURCE, source_id__startswith=prefix)
                    .values_list("source_id", "pk"))

    def load_entities(self) -> list[Any]:
        from django.db import transaction
        from django.utils import timezone

        from cases.services import case_create, party_add
        from entities.bulk import entities_upsert, links_upsert
        from entities.models import Entity
        from watchlists.models import Watchlist, WatchlistEntry

        count = max(self.n // 5, 1000)
        people = [{"source": SOURCE, "source_id": f"person-{j}", "type": "person", "name": f"Suspect {j} Luo",
                   "addresses": [{"text": f"Room {j}, Block {j % 9 + 1}, Harbour Garden, Kowloon"}],
                   "phones": [f"+8529{j:07d}"]} for j in range(SUSPECTS + WITNESSES)]
        entities_upsert(agency=self.agency, actor=None, rows=people)
        rows = []
        for i in range(count):
            row = {"source": SOURCE, "source_id": f"org-{i:06d}", "type": "organization",
                   "name": f"Company {i:06d} Trading Co., Ltd.", "incorporated_on": date(2000 + i % 15, 1 + i % 12, 1),
                   "addresses": [{"text": f"{i} Industrial Road, Zone {i % 97}, Ningbo"}],
                   "phones": [f"+86574{i:08d}"], "registration_number": f"91330{i:08d}"}
            j = i % SHARED
            if i < SHARED:  # at a suspect's address
                row["addresses"] = [{"text": f"ROOM {j} BLOCK {j % 9 + 1} HARBOUR GARDEN KOWLOON"}]
                self.planted["shared_address"].add(row["source_id"])
            elif i < 2 * SHARED:  # with a suspect's phone
                row["phones"] = [f"+8529{j:07d}"]
                self.planted["shared_phone"].add(row["source_id"])
            elif i < 2 * SHARED + WITNESSES:  # at a witness's address: no red flag
                row["addresses"] = [{"text": f"Room {SUSPECTS + j}, Block {(SUSPECTS + j) % 9 + 1}, Harbour Garden, "
                                             "Kowloon"}]
            elif i >= count - SHARED:  # incorporated shortly before its one shipment (as consignee)
                row["incorporated_on"] = NEW_COMPANIES_SINCE
            rows.append(row)
        for chunk in range(0, len(rows), 5000):
            entities_upsert(agency=self.agency, actor=None, rows=rows[chunk:chunk + 5000])
        listed = [{"source": "ofac-sdn", "source_id": f"listed-{k}", "type": "organization",
                   "name": f"ZHEJIANG SANCTIONED METALS {k} COMPANY LIMITED", "registration_number": f"91339{k:08d}"}
                  for k in range(LISTED_ENTRIES)]
        entities_upsert(agency=self.agency, actor=None, rows=listed)
        # Listed as the watchlists' import keeps them (its service is the import's; here the rows are set directly).
        watchlist = Watchlist.objects.create(agency=self.agency, source="ofac-sdn", kind="ofac_sdn",
                                             entries=LISTED_ENTRIES, imported_at=timezone.now())
        listed_ids = list(Entity.objects.filter(agency=self.agency, source="ofac-sdn").values_list("pk", flat=True))
        Entity.objects.filter(pk__in=listed_ids).update(lists=["ofac-sdn"], topics=["sanction"])
        WatchlistEntry.objects.bulk_create(WatchlistEntry(watchlist=watchlist, entity_id=pk, listed_at=timezone.now(),
                                                          programmes=["CMIC-EO13959"]) for pk in listed_ids)
        self.listed_ids = listed_ids
        lookalikes = [{"source": SOURCE, "source_id": f"lookalike-{k}", "type": "organization",
                       "name": f"Zhejiang Sanctioned Metals {k} Co., Ltd.", "registration_number": f"91339{k:08d}"}
                      for k in range(LISTED_ENTRIES)]
        entities_upsert(agency=self.agency, actor=None, rows=lookalikes)

        person_ids, org_ids = self.entity_ids("person-"), self.entity_ids("org-")
        directed = [f"org-{2 * SHARED + WITNESSES + j:06d}" for j in range(SHARED)]
        officers = [{"provenance_source": SOURCE, "provenance_id": f"director-{j}", "kind": "directorship",
                     "source_id": person_ids[f"person-{j}"], "target_id": org_ids[org]}
                    for j, org in enumerate(directed)]
        links_upsert(agency=self.agency, actor=None, rows=officers)
        self.planted["shared_officer"] = set(directed)
        with transaction.atomic():
            case = case_create(agency=self.agency, actor=self.user, data={"title": "Bench ring",
                                                                          "classification": "restricted"})
            for j in range(SUSPECTS + WITNESSES):
                party_add(case=case, actor=self.user, data={
                    "entity": Entity.objects.get(pk=person_ids[f"person-{j}"]),
                    "role": ROLES[j % len(ROLES)] if j < SUSPECTS else "witness"})
        say(f"loaded {len(org_ids):,} organisations, {len(person_ids)} persons (case parties), {len(listed)} listed "
            f"entries and their lookalikes, {len(officers)} directorships")
        first_free = 2 * SHARED + WITNESSES + SHARED
        return [org_ids[k] for k in sorted(org_ids)][first_free:-SHARED]

    def load_licences(self, orgs: list[Any]) -> list[Any]:
        from django.db import transaction

        from shipments.services import licence_create

        licences = []
        with transaction.atomic():
            for n in range(max(self.n // 100, 60)):
                holder, end_user = orgs[(2 * n) % len(orgs)], orgs[(2 * n + 1) % len(orgs)]
                data = {"number": f"BENCH-LIC-{n:05d}", "holder_id": holder, "end_user_id": end_user,
                        "commodity_id": COMMODITIES[n % len(COMMODITIES)], "destination_country": DESTINATIONS[n % 8],
                        "valid_from": date(2024, 6, 1), "valid_to": date(2026, 12, 31),
                        "max_quantity_kg": Decimal("1000000000")}
                if n < 25:  # exceeded by their shipments together
                    data["max_quantity_kg"] = Decimal("1500")
                elif n < 50:  # expired before the shipments left
                    data["valid_to"], data["status"] = date(2024, 12, 31), "expired"
                licences.append(licence_create(agency=self.agency, actor=self.user, data=data))
        say(f"loaded {len(licences):,} licences")
        return licences

    def load_shipments(self, orgs: list[Any], licences: list[Any]) -> None:
        from cases.models import Commodity
        from shipments.bulk import shipments_upsert

        commodities = {c.code: c for c in Commodity.objects.all()}
        org_ids = self.entity_ids("org-")
        new_companies = sorted(org_ids)[-SHARED:]  # incorporated on NEW_COMPANIES_SINCE
        lookalikes = [pk for _, pk in sorted(self.entity_ids("lookalike-").items())]

        def goods(code: str, quantity: Decimal, value_factor: float = 1.0) -> dict[str, Any]:
            """The fields of `quantity` kg of a commodity, declared as what it is, at its reference value times
            `value_factor`."""
            commodity = commodities[code]
            price = commodity.reference_value_per_kg or Decimal(1)
            return {"commodity_id": code, "hs_code": commodity.hs_codes[0], "declared_hs_code": commodity.hs_codes[0],
                    "declared_description": commodity.name, "quantity_kg": quantity,
                    "declared_value": (quantity * price * Decimal(str(value_factor))).quantize(Decimal("0.01"))}

        def under(licence: Any) -> dict[str, Any]:
            """A shipment as its licence says: the licence's commodity, holder, end user and destination."""
            return {"licence_id": licence.pk, "consignor_id": licence.holder_id, "consignee_id": licence.end_user_id,
                    "destination_country": licence.destination_country}

        rows = []
        started = time.perf_counter()
        for i in range(self.n):
            kind, round_ = i % 100, i // 100
            licence = licences[50 + i % (len(licences) - 50)]
            quantity = Decimal(self.rng.randrange(1000, 20000))
            row: dict[str, Any] = {
                "source": SOURCE, "source_id": f"shipment-{i:07d}", "reference": f"BENCH-{i:07d}", "currency": "USD",
                "origin_country": "CN", "transit_countries": [], "notify_party_id": None, "status": "delivered",
                "departed_on": FIRST_DAY + timedelta(days=self.rng.randrange(530)), **under(licence),
                **goods(licence.commodity_id, quantity, round(self.rng.uniform(0.8, 1.5), 2))}
            source_id = row["source_id"]
            if kind in (UNLICENSED, DAY_BEFORE, DAY_AFTER):
                row["licence_id"] = None
                if kind != UNLICENSED:  # antimony, the day before its control date or the day after
                    row.update(goods("antimony", quantity),
                               departed_on=date(2024, 9, 14) if kind == DAY_BEFORE else date(2024, 9, 16))
                if kind != DAY_BEFORE:
                    self.planted["unlicensed_export"].add(source_id)
            elif kind == INVALID:  # under an expired licence
                expired = licences[25 + round_ % 25]
                row.update({**under(expired), **goods(expired.commodity_id, quantity)})
                self.planted["licence_invalid"].add(source_id)
            elif kind == EXCEEDED:  # 1,000 kg each under a licence of 1,500 kg: all but the first exceed it
                over = licences[round_ % 25]
                row.update({**under(over), **goods(over.commodity_id, Decimal(1000))})
                self.planted["licence_exceeded"].add(source_id)
            elif kind == TRANSIT:
                row["transit_countries"] = [self.rng.choice(["VN", "TH", "KZ"])]
                self.planted["third_country_transit"].add(source_id)
            elif kind == MISDECLARED:
                row.update(declared_hs_code="7801", declared_description="Unwrought lead")
                self.planted["misdeclared_commodity"].add(source_id)
            elif kind == CHEAP:
                row.update(goods(row["commodity_id"], quantity, 0.05))
                self.planted["value_anomaly"].add(source_id)
            elif kind == NEW_COMPANY and round_ < SHARED:  # the consignor: the licence names no holder's age
                row["consignor_id"] = org_ids[new_companies[round_]]
                row["departed_on"] = FIRST_DAY + timedelta(days=self.rng.randrange(100))
                self.planted["new_company"].add(new_companies[round_])
            elif kind == LISTED and round_ < LISTED_ENTRIES:
                row["notify_party_id"] = lookalikes[round_]
                self.planted["watchlist_match"].add(f"lookalike-{round_}")
            else:
                self.clean.add(source_id)
            rows.append(row)
        firsts: dict[Any, dict[str, Any]] = {}
        for row in rows:
            if row["source_id"] in self.planted["licence_exceeded"]:
                first = firsts.setdefault(row["licence_id"], row)
                if (row["departed_on"], row["source_id"]) < (first["departed_on"], first["source_id"]):
                    firsts[row["licence_id"]] = row
        self.planted["licence_exceeded"] -= {row["source_id"] for row in firsts.values()}
        written = 0
        for chunk in range(0, len(rows), 5000):
            result = shipments_upsert(agency=self.agency, actor=None, rows=rows[chunk:chunk + 5000])
            written += sum(1 for outcome in result.outcomes if outcome == "created")
        seconds = time.perf_counter() - started
        say(f"loaded {written:,} shipments in {seconds:.1f} s ({written / seconds:,.0f}/s)")

    def cross_reference_listed(self) -> None:
        from xref import services

        lookalikes = list(self.entity_ids("lookalike-").values())
        changed = services.records_changed([*self.listed_ids, *lookalikes])
        say(f"cross-referenced the listed entries and their lookalikes: {changed} matches")

    def drop_queued(self) -> None:
        """The writes' tasks wait in the bench's queues (no worker yet): drop them, so the pass runs alone."""
        from typing import cast

        from django.conf import settings

        from config.celery import app

        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            client = cast(Any, connection.default_channel).client
            client.delete(*(f"{settings.TASK_QUEUE_PREFIX}{queue}" for queue in settings.TASK_QUEUES))

    # --- 2. the full pass ---------------------------------------------------------------------------------------

    def full_pass(self) -> None:
        from django.db.models import Count

        from alerts.models import Alert, AlertRun, RunStatus
        from alerts.services import run_create

        started = time.perf_counter()
        run = run_create(agency=self.agency)
        wait("the full pass", lambda: AlertRun.objects.filter(
            pk=run.pk, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).exists(), self.timeout, every=0.2)
        seconds = time.perf_counter() - started
        run.refresh_from_db()
        self.results["run"] = (seconds, run)
        by_rule = dict(Alert.objects.filter(agency=self.agency).values_list("rule").annotate(n=Count("id"))
                       .values_list("rule", "n"))
        self.results["by_rule"] = by_rule
        say(f"full pass: {run.status} in {seconds:.1f} s, {run.parts} parts; {run.error}")
        found: dict[str, set[str]] = collections.defaultdict(set)
        for rule, shipment, entity in Alert.objects.filter(agency=self.agency).values_list(
                "rule", "shipment__source_id", "entity__source_id"):
            found[rule].add(shipment or entity)
        self.results["found"] = found

    # --- 3. the raw baseline ----------------------------------------------------------------------------------------

    def baseline(self) -> None:
        from django.conf import settings
        from django.db import connection

        checks = {
            "unlicensed_export": """
                SELECT count(*) FROM shipments_shipment s JOIN cases_commodity c ON c.code = s.commodity_id
                WHERE s.agency_id = %(agency)s AND s.licence_id IS NULL AND s.origin_country = ANY(%(export)s)
                  AND s.departed_on >= c.controlled_since""",
            "licence_invalid": """
                SELECT count(*) FROM shipments_shipment s JOIN shipments_licence l ON l.id = s.licence_id
                WHERE s.agency_id = %(agency)s AND (l.status <> 'valid' OR s.departed_on > l.valid_to
                  OR s.departed_on < l.valid_from OR l.commodity_id <> s.commodity_id
                  OR l.destination_country <> s.destination_country OR l.end_user_id <> s.consignee_id)""",
            "licence_exceeded": """
                SELECT count(*) FROM (SELECT s.quantity_kg, l.max_quantity_kg AS maximum, sum(s.quantity_kg) OVER (
                    PARTITION BY s.licence_id ORDER BY s.departed_on, s.created_at, s.id) AS total
                  FROM shipments_shipment s JOIN shipments_licence l ON l.id = s.licence_id
                  WHERE s.agency_id = %(agency)s) t WHERE t.quantity_kg > t.maximum OR t.total > t.maximum""",
            "third_country_transit": """
                SELECT count(*) FROM shipments_shipment WHERE agency_id = %(agency)s AND transit_countries <> '{}'""",
            "misdeclared_commodity": """
                SELECT count(*) FROM shipments_shipment s JOIN cases_commodity c ON c.code = s.commodity_id
                WHERE s.agency_id = %(agency)s AND s.declared_hs_code <> ''
                  AND NOT left(s.declared_hs_code, 6) = ANY(c.hs_codes)""",
            "value_anomaly": """
                SELECT count(*) FROM shipments_shipment s JOIN cases_commodity c ON c.code = s.commodity_id
                WHERE s.agency_id = %(agency)s AND s.quantity_kg > 0
                  AND s.declared_value / s.quantity_kg < %(ratio)s * c.reference_value_per_kg""",
        }
        params = {"agency": self.agency.pk, "export": settings.ALERT_EXPORT_COUNTRIES,
                  "ratio": settings.ALERT_VALUE_RATIO}
        counts = {}
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for rule, query in checks.items():
                cursor.execute(query, params)
                counts[rule] = cursor.fetchone()[0]
        self.results["baseline"] = (time.perf_counter() - started, counts)

    # --- 4. one new shipment ----------------------------------------------------------------------------------------

    def new_shipments(self) -> None:
        from alerts.models import Alert
        from shipments.services import shipment_create

        delays = []
        for n in range(NEW_SHIPMENTS):
            shipment = shipment_create(agency=self.agency, actor=self.user, data={
                "reference": f"BENCH-NEW-{n}", "commodity_id": "antimony", "hs_code": "811010",
                "declared_hs_code": "811010", "declared_description": "Antimony ingots", "quantity_kg": 1000,
                "declared_value": 40000, "currency": "USD", "origin_country": "CN", "destination_country": "DE",
                "legs": [{"from_country": "CN", "to_country": "DE", "departed_on": date(2025, 6, 1)}]})
            committed = time.perf_counter()  # shipment_create's transaction has committed when it returns
            alerts = Alert.objects.filter(shipment=shipment, rule="unlicensed_export")
            wait("the new shipment's alert", alerts.exists, 60, every=0.005)
            delays.append(time.perf_counter() - committed)
        self.results["delays"] = delays


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    say(f"\n=== red-flag rules over {args.shipments:,} shipments, {args.workers} worker process(es) ===")
    if "run" in results:
        seconds, run = results["run"]
        aim = AIMS["run_seconds"]
        say(f"full pass: {seconds:.1f} s ({run.status}; aim < {aim:.0f} s: {'met' if seconds < aim else 'NOT met'}),"
            f" {run.counts.get('evaluated', 0):,} subjects evaluated in {run.parts} parts, "
            f"{run.counts.get('evaluated', 0) / seconds:,.0f} subjects/s")
    if "found" in results:
        bench_planted = results.get("planted", {})
        say("alerts per rule (found / planted; outside the planted ones):")
        for rule in sorted(set(results["by_rule"]) | set(bench_planted)):
            found, planted = results["found"].get(rule, set()), bench_planted.get(rule, set())
            say(f"  {rule:24} {len(found):7,} / {len(planted):6,} planted, missed {len(planted - found):,}; "
                f"on shipments in order {len(found & results['clean']):,}")
    if "baseline" in results:
        seconds, counts = results["baseline"]
        say(f"raw baseline (the shipment checks as plain SQL counts): {seconds:.2f} s, "
            + ", ".join(f"{rule} {n:,}" for rule, n in counts.items()))
        if "run" in results:
            say(f"full pass / raw baseline: {results['run'][0] / seconds:.1f}x")
    if "delays" in results:
        delays = results["delays"]
        aim = AIMS["delay_seconds"]
        say(f"commit of one shipment -> its alert listed: median {statistics.median(delays) * 1000:.0f} ms, "
            f"max {max(delays) * 1000:.0f} ms over {len(delays)} (aim < {aim:.0f} s: "
            f"{'met' if max(delays) < aim else 'NOT met'})")
    if "load" in results:
        say(f"(loading took {results['load']:.1f} s)")


if __name__ == "__main__":
    main()
