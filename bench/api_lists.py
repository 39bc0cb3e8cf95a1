"""How much the shipments list API costs over the database: the API beside a hand-written query.

    python bench/api_lists.py [--reps N] [--profile]      (or `make bench`, which runs every bench/*.py)

Loads, once and idempotently, a dedicated agency (BENCH) with 100,000 shipments (parties drawn from a pool
of organisations and persons, legs for about half of them, mixed commodities, countries and statuses) and
50,000 persons, with bulk inserts. Then times, in the same run and against the same rows,

- the API: `GET /api/v1/shipments/?page_size=100&commodity=antimony&origin_country=CN` through Django's
  test client in-process (middleware, a real token, the access policy, filters, pagination with its count,
  serializers, JSON rendering), and
- the baseline: one hand-written SQL query for the same page (shipment fields, agency code, the four
  parties' type/id/name, the legs as JSON through a lateral subquery, the visible case ids) plus the count,
  turned into the same JSON document with orjson,

and prints both medians and their ratio. The aim is the API within 4x of the baseline.

DJANGO_SETTINGS_MODULE defaults to config.settings.local (with DEBUG off, so queries are not logged);
the database is DATABASE_URL's, as the dev tools give it.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import decimal
import itertools
import pstats
import random
import statistics
import sys
import time
from typing import Any

import _django_setup  # noqa: F401  (the project on the path, its settings, Django set up)
import orjson
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.test import APIClient
from xref_scale import bench_investigator

from accounts.models import Agency, ApiToken, User
from accounts.services import token_revoke
from entities.models import Entity, EntityType
from shipments.models import Shipment, ShipmentLeg

AGENCY = "BENCH"
SOURCE = "bench"
SHIPMENTS = 100_000
PERSONS = 50_000
ORGANIZATIONS = 5_000
BATCH = 5_000
PAGE = 100
QUERY = {"page_size": str(PAGE), "commodity": "antimony", "origin_country": "CN"}
URL = "/api/v1/shipments/"

COMMODITIES = {  # code: (weight, HS codes)
    "antimony": (30, ["811010", "261710", "811090"]), "gallium": (15, ["811292"]), "germanium": (10, ["811299"]),
    "graphite": (20, ["250410", "380110"]), "rare_earths": (10, ["284690"]), "tungsten": (15, ["810110"]),
}
ORIGINS = (["CN"] * 6) + ["VN", "MY", "TH", "KZ", "RU", "MZ", "IN"]
DESTINATIONS = ["US", "DE", "NL", "JP", "KR", "IN", "BE", "GB", "FR", "CA"]
HUBS = ["VN", "TH", "MY", "SG", "AE", "TR", "KZ", "LA", "KH", "HK"]
STATUSES = ["declared", "in_transit", "in_transit", "delivered", "delivered", "delivered", "intercepted",
            "seized", "released"]
MODES = ["sea", "sea", "road", "rail", "air", "post"]
SURNAMES = ["Zhang", "Wang", "Li", "Liu", "Chen", "Nguyen", "Tran", "Petrov", "Ivanova", "Smith", "Müller",
            "Kowalski", "Sato", "Kim", "Park", "Singh", "Haddad", "Okafor", "Silva", "Novak"]
GIVEN = ["Wei", "Fang", "Lan", "Minh", "Anh", "Ivan", "Olga", "John", "Anna", "Jin", "Hiro", "Ravi", "Omar",
         "Ngozi", "Luis", "Petra", "Chen", "Mai", "Yuki", "Sam"]
WORDS = ["Grey", "Ore", "Mineral", "Pacific", "Golden", "Bridge", "Delta", "Eastern", "Summit", "Harbor",
         "Metal", "Crystal", "Horizon", "Silk", "Jade", "Northern", "River", "Star", "Ocean", "Union"]
FORMS = ["Co., Ltd.", "Ltd", "LLC", "GmbH", "Trading Co.", "Import Export JSC", "有限公司", "Pte. Ltd."]


def say(message: str) -> None:
    print(message, flush=True)


# --- loading -----------------------------------------------------------------------------------


def _missing(model: Any, agency: Agency, prefix: str, total: int) -> list[int]:
    have = set(model.objects.filter(agency=agency, source=SOURCE, source_id__startswith=prefix)
               .values_list("source_id", flat=True))
    return [i for i in range(total) if f"{prefix}{i}" not in have]


def _entities(agency: Agency, kind: str, total: int, rng: random.Random) -> None:
    prefix = "O" if kind == EntityType.ORGANIZATION else "P"
    todo = _missing(Entity, agency, prefix, total)
    if not todo:
        return
    started = time.perf_counter()
    for start in range(0, len(todo), BATCH):
        rows = []
        for i in todo[start:start + BATCH]:
            extra: dict[str, Any]
            if kind == EntityType.ORGANIZATION:
                name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(FORMS)} {i}"
                extra = {"kind": rng.choice(["company", "shell_company", "trader", "freight_forwarder"]),
                         "jurisdiction": rng.choice(ORIGINS + DESTINATIONS), "registration_number": f"RN{i:07d}"}
            else:
                name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)} {i}"
                extra = {"nationalities": [rng.choice(ORIGINS)],
                         "birth_date": datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(20000))}
            entity = Entity(agency=agency, type=kind, name=name, source=SOURCE, source_id=f"{prefix}{i}", **extra)
            entity.refresh_derived()  # bulk_create skips save(), which computes the search fields
            rows.append(entity)
        Entity.objects.bulk_create(rows, batch_size=1000)
    say(f"  {len(todo):,} {kind}s in {time.perf_counter() - started:.1f}s")


def _legs(origin: str, destination: str, departed: datetime.date, rng: random.Random) -> list[dict[str, Any]]:
    stops = [origin, *rng.sample(HUBS, rng.choice([0, 1, 1, 2])), destination]
    legs: list[dict[str, Any]] = []
    day = departed
    for here, there in itertools.pairwise(stops):
        arrive = day + datetime.timedelta(days=rng.randrange(1, 20))
        legs.append({"from_country": here, "to_country": there, "from_port": f"Port of {here}",
                     "to_port": f"Port of {there}", "mode": rng.choice(MODES), "carrier": f"{rng.choice(WORDS)} Lines",
                     "vessel": f"MV {rng.choice(WORDS)}", "container": f"MSCU{rng.randrange(10**7):07d}",
                     "departed_on": day, "arrived_on": arrive})
        day = arrive + datetime.timedelta(days=rng.randrange(0, 5))
    return legs


def _shipments(agency: Agency, rng: random.Random) -> None:
    todo = _missing(Shipment, agency, "S", SHIPMENTS)
    if not todo:
        return
    orgs = list(Entity.objects.filter(agency=agency, type=EntityType.ORGANIZATION).values_list("pk", flat=True))
    persons = list(Entity.objects.filter(agency=agency, type=EntityType.PERSON).values_list("pk", flat=True)[:5000])
    codes, weights = list(COMMODITIES), [w for w, _ in COMMODITIES.values()]
    started, leg_count = time.perf_counter(), 0
    for start in range(0, len(todo), BATCH):
        shipments: list[Shipment] = []
        legs: list[ShipmentLeg] = []
        for i in todo[start:start + BATCH]:
            commodity = rng.choices(codes, weights)[0]
            origin, destination = rng.choice(ORIGINS), rng.choice(DESTINATIONS)
            quantity = decimal.Decimal(rng.randrange(10, 50_000_000)) / 1000
            status = rng.choice(STATUSES)
            shipment = Shipment(
                agency=agency, reference=f"BL-{i:08d}", commodity_id=commodity,
                hs_code=rng.choice(COMMODITIES[commodity][1]), declared_hs_code=rng.choice(["261710", "811010",
                                                                                           "790111", "282590"]),
                declared_description=rng.choice(["zinc ore", "antimony ingots", "metal scrap", "ceramic parts",
                                                 "graphite electrodes", "chemical compounds"]),
                quantity_kg=quantity, purity_pct=decimal.Decimal(rng.randrange(50_000, 99_999)) / 1000,
                declared_value=(quantity * rng.randrange(1, 80)).quantize(decimal.Decimal("0.01")),
                currency=rng.choice(["USD", "USD", "EUR", "CNY"]), origin_country=origin,
                destination_country=destination, consignor_id=rng.choice(orgs), consignee_id=rng.choice(orgs),
                notify_party_id=rng.choice(orgs) if rng.random() < 0.5 else None,
                ordering_party_id=rng.choice(persons) if rng.random() < 0.3 else None, status=status,
                seized_on=datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(365))
                if status == "seized" else None,
                seized_quantity_kg=quantity if status == "seized" else None,
                seizure_location="Port of entry" if status == "seized" else "",
                source=SOURCE, source_id=f"S{i}",
            )
            route = []
            if rng.random() < 0.5:
                departed = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(900))
                route = _legs(origin, destination, departed, rng)
                legs.extend(ShipmentLeg(shipment=shipment, seq=n, **leg) for n, leg in enumerate(route, 1))
            shipment.derive_from_legs(route)
            shipments.append(shipment)
        with transaction.atomic():
            Shipment.objects.bulk_create(shipments, batch_size=1000)
            ShipmentLeg.objects.bulk_create(legs, batch_size=2000)
        leg_count += len(legs)
    say(f"  {len(todo):,} shipments and {leg_count:,} legs in {time.perf_counter() - started:.1f}s")


def load() -> tuple[Agency, User, str]:
    """The bench's agency, its investigator and a token key of theirs, and the data set."""
    call_command("migrate", verbosity=0)
    agency, user, key = bench_investigator(AGENCY, "Benchmark agency")
    rng = random.Random(20250301)  # the same data set on every machine
    say("loading (skipped where already there) …")
    _entities(agency, EntityType.ORGANIZATION, ORGANIZATIONS, rng)
    _entities(agency, EntityType.PERSON, PERSONS, rng)
    _shipments(agency, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shipments_shipment; ANALYZE shipments_shipmentleg; ANALYZE entities_entity")
    return agency, user, key


# --- the baseline ------------------------------------------------------------------------------

# The page first (filters, order, limit), then the parties, legs and case ids of those 100 rows only.
BASELINE_SQL = """
WITH page AS (
    SELECT * FROM shipments_shipment s
    WHERE s.agency_id = %s AND NOT s.archived AND s.commodity_id = %s AND s.origin_country = %s
    ORDER BY s.departed_on DESC, s.created_at DESC
    LIMIT %s
)
SELECT s.id, s.created_at, s.updated_at, s.version, s.archived, a.code, s.reference, s.commodity_id, s.hs_code,
       s.declared_hs_code, s.declared_description, s.quantity_kg, s.purity_pct, s.declared_value, s.currency,
       s.origin_country, s.destination_country, COALESCE(l.legs, '[]'::json), s.transit_countries,
       CASE WHEN p1.id IS NULL THEN NULL ELSE json_build_object('type', p1.type, 'id', p1.id, 'name', p1.name) END,
       CASE WHEN p2.id IS NULL THEN NULL ELSE json_build_object('type', p2.type, 'id', p2.id, 'name', p2.name) END,
       CASE WHEN p3.id IS NULL THEN NULL ELSE json_build_object('type', p3.type, 'id', p3.id, 'name', p3.name) END,
       CASE WHEN p4.id IS NULL THEN NULL ELSE json_build_object('type', p4.type, 'id', p4.id, 'name', p4.name) END,
       s.licence_id, s.status, s.seized_on, s.seized_quantity_kg, s.seizure_location,
       COALESCE(sc.ids, '[]'::json), s.source, s.source_id
FROM page s
JOIN accounts_agency a ON a.id = s.agency_id
LEFT JOIN entities_entity p1 ON p1.id = s.consignor_id
LEFT JOIN entities_entity p2 ON p2.id = s.consignee_id
LEFT JOIN entities_entity p3 ON p3.id = s.notify_party_id
LEFT JOIN entities_entity p4 ON p4.id = s.ordering_party_id
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('from_country', g.from_country, 'from_port', g.from_port,
                                      'to_country', g.to_country, 'to_port', g.to_port, 'mode', g.mode,
                                      'carrier', g.carrier, 'vessel', g.vessel, 'container', g.container,
                                      'departed_on', g.departed_on, 'arrived_on', g.arrived_on) ORDER BY g.seq) AS legs
    FROM shipments_shipmentleg g WHERE g.shipment_id = s.id
) l ON true
LEFT JOIN LATERAL (
    SELECT json_agg(x.case_id ORDER BY x.case_id) AS ids FROM shipments_shipment_cases x WHERE x.shipment_id = s.id
) sc ON true
ORDER BY s.departed_on DESC, s.created_at DESC
"""
COUNT_SQL = """
SELECT count(*) FROM shipments_shipment s
WHERE s.agency_id = %s AND NOT s.archived AND s.commodity_id = %s AND s.origin_country = %s
"""
COLUMNS = ["id", "created_at", "updated_at", "version", "archived", "agency", "reference", "commodity", "hs_code",
           "declared_hs_code", "declared_description", "quantity_kg", "purity_pct", "declared_value", "currency",
           "origin_country", "destination_country", "legs", "transit_countries", "consignor", "consignee",
           "notify_party", "ordering_party", "licence", "status", "seized_on", "seized_quantity_kg",
           "seizure_location", "cases", "source", "source_id"]


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError


def baseline(agency: Agency) -> bytes:
    params: list[Any] = [agency.pk, QUERY["commodity"], QUERY["origin_country"]]
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, params)
        count = cursor.fetchone()[0]
        cursor.execute(BASELINE_SQL, [*params, PAGE])
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    page = {"count": count, "next": f"http://localhost{URL}?page=2" if count > PAGE else None, "previous": None,
            "results": rows}
    return orjson.dumps(page, default=_default, option=orjson.OPT_UTC_Z)


# --- timing ------------------------------------------------------------------------------------


def medians_ms(runs: dict[str, Any], reps: int) -> dict[str, float]:
    """Median wall time of each run, in milliseconds; the runs take turns so a busy machine slows both alike."""
    for run in runs.values():
        for _ in range(3):
            run()  # warm-up: connections, caches, imports
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--profile", nargs="?", const="cumulative", metavar="SORT",
                        help="print a cProfile of the API requests, sorted by SORT (cumulative, tottime, …)")
    opts = parser.parse_args()

    started = time.perf_counter()
    agency, user, key = load()
    say(f"data: {Shipment.objects.filter(agency=agency).count():,} shipments, "
        f"{ShipmentLeg.objects.filter(shipment__agency=agency).count():,} legs, "
        f"{Entity.objects.filter(agency=agency, type=EntityType.PERSON).count():,} persons, "
        f"{Entity.objects.filter(agency=agency, type=EntityType.ORGANIZATION).count():,} organisations "
        f"(ready in {time.perf_counter() - started:.1f}s)")

    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def api() -> bytes:
        response = client.get(URL, QUERY)
        assert response.status_code == 200, response.content[:500]
        return response.content

    from_api, from_sql = orjson.loads(api()), orjson.loads(baseline(agency))
    assert from_api["count"] == from_sql["count"], (from_api["count"], from_sql["count"])
    assert [r["id"] for r in from_api["results"]] == [r["id"] for r in from_sql["results"]], "not the same rows"
    assert from_api["results"] == from_sql["results"], "not the same content"
    say(f"request: GET {URL}?{'&'.join(f'{k}={v}' for k, v in QUERY.items())} → {from_api['count']:,} matches, "
        f"{len(from_api['results'])} rows a page, identical in both")

    if opts.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(opts.reps):
            api()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(opts.profile).print_stats(50)

    medians = medians_ms({"api": api, "sql": lambda: baseline(agency)}, opts.reps)
    api_ms, sql_ms = medians["api"], medians["sql"]
    token_revoke(token=ApiToken.objects.by_key(key).get(), actor=user)
    say(f"API  (test client, token, policy, filters, count, DRF serializers, JSON): median {api_ms:7.2f} ms")
    say(f"SQL  (one hand-written query + count, orjson):                           median {sql_ms:7.2f} ms")
    say(f"ratio API/SQL: {api_ms / sql_ms:.2f}x over {opts.reps} repetitions each (aim: within 4x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
