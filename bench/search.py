"""Search over every type at scale: the API's `GET /api/v1/search/?q=` against the raw trigram query, in one run.

    python bench/search.py [--scale 1.0] [--repeat 15] [--keep]
                           (at --scale 1: 100,000 persons, 50,000 organisations, 100,000 shipments, 200 cases)

1. Seeds a database of its own through the bulk services an import uses (entities_upsert, shipments_upsert) and the
   cases' services (case_create, party_add): persons (names from given-name and surname lists, some accented),
   organisations, shipments between the organisations with varied declared descriptions, cases with parties, all
   in the bench agency; and a twentieth as much in another agency, which the caller must never see (seeded: the
   same on every machine). The seed's cross-referencing tasks are dropped, then the GIN indexes' pending lists are
   merged and the tables VACUUM ANALYZEd, as autovacuum would after a bulk load.
2. For each query (names with a typo, without their accents, in capitals, in another word order, an organisation
   without its legal form, a shipment reference and a prefix of one, a declared description's words, a
   consignee's name), times in turn, `--repeat` times after a warm-up:
   API  GET /api/v1/search/?q=… through Django's test client (the whole stack: middleware, token authentication
        of an investigator of the bench agency, throttling, the view, JSON rendering), results' first page;
   raw  the hand-written SQL a search must at least run, on the same connection, in one transaction: pg_trgm's
        word similarity `<%` (the product's threshold) against the entities' `search_text` index, the best 50
        visible live persons and organisations; the visible live cases whose reference, title or summary contains
        the query (ILIKE), best 50; the visible live shipments whose reference or unaccented description contains
        the query, whose description is word-similar to it (the shipments' trigram indexes) or whose party is one
        of those 50 entities, best 50; merged by score. Scoped as the API scopes an investigator (bench/_load_urls'
        scope: the caller's agency, or linked to a case shared with it).
   and prints per query and overall (the sum of the per-query medians) the median milliseconds of both and their
   ratio. Aim: overall ratio 2 or less.

The bench has a database of its own, `<DATABASE_URL's name>_search`, created afresh and migrated by this script,
dropped at the end unless `--keep`. The machine's other load shows in the figures: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no line per request
os.environ.setdefault("THROTTLE_USER", "100000000/minute")  # the bench measures search, not the rate limits

from xref_scale import bench_investigator, bench_session, say  # noqa: E402

AGENCY, OTHER = "BENCH", "OTHER"
SOURCE = "bench-search"
AIM = 2.0
CHUNK = 5000
GIVEN = ["Wei", "Fang", "Lan", "Minh", "Anh", "Ivan", "Olga", "John", "Anna", "Jin", "Hiro", "Ravi", "Omar", "Mei",
         "Tao", "Lin", "Sergei", "Maria", "Yun", "Duc", "Hoa", "Karim", "Lena", "José", "François", "Zoë", "Jürgen",
         "Søren", "Łukasz", "Thảo", "Đức", "Ngọc", "Ramón", "Inés", "Björn", "Agnès", "Dmitri", "Aigerim", "Bolat",
         "Xiaoling", "Haruto", "Emre", "Yasmin", "Tomasz", "Pavel", "Nadia", "Arjun", "Kofi", "Amara", "Luis"]
SURNAMES = ["Zhang", "Wang", "Li", "Liu", "Chen", "Nguyen", "Tran", "Petrov", "Ivanova", "Smith", "Muller", "Kowalski",
            "Sato", "Kim", "Park", "Singh", "Haddad", "Okafor", "Silva", "Novak", "Luo", "Huang", "Zhao", "Wu",
            "Müller", "García", "Nguyễn", "Trần", "Lê", "Phạm", "Đặng", "Dvořák", "Wiśniewski", "Çelik", "Y\u0131lmaz",
            "Gómez", "Peña", "Jansen", "Østergaard", "Nuñez", "Kuznetsov", "Nurlanov", "Abenov", "Tanaka", "Suzuki",
            "Takahashi", "Watanabe", "Kovalenko", "Bondarenko", "Mendes", "Ferreira", "Rossi", "Bianchi", "Dubois",
            "Lefèvre", "Schäfer", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Khan", "Ahmed", "Hassan",
            "Ali", "Rahman", "Mensah", "Boateng", "Adeyemi", "Eze", "Papadopoulos", "Horvat", "Popescu", "Ionescu"]
WORDS = ["Golden", "River", "Eastern", "Pacific", "Harbour", "Summit", "Jade", "Silver", "Northern", "Bright",
         "Orient", "Delta", "Crown", "Pearl", "Lotus", "Phoenix", "Evergreen", "Sunrise", "Horizon", "Dragon",
         "Meridian", "Atlas", "Cobalt", "Granite", "Maple", "Coral", "Zenith", "Aurora", "Vertex", "Falcon"]
TRADES = ["Metals", "Trading", "Minerals", "Logistics", "Resources", "Import Export", "Materials", "Industries",
          "Chemicals", "Alloys", "Shipping", "Technology"]
FORMS = ["Co., Ltd.", "Limited", "LLC", "GmbH", "Pte. Ltd.", "JSC", "S.A.", "Inc."]
COMMODITIES = ["antimony", "gallium", "germanium", "graphite", "rare_earths", "tungsten"]
GOODS = {"antimony": ["antimony ingots", "antimony trioxide", "stibnite ore concentrate", "antimony metal powder"],
         "gallium": ["gallium metal", "gallium arsenide wafers", "gallium nitride substrates", "high purity gallium"],
         "germanium": ["germanium ingots", "germanium dioxide", "germanium lenses", "zone refined germanium"],
         "graphite": ["spherical graphite", "graphite electrodes", "natural flake graphite", "synthetic graphite"],
         "rare_earths": ["neodymium oxide", "dysprosium metal", "terbium oxide", "mixed rare earth carbonate"],
         "tungsten": ["tungsten carbide powder", "ammonium paratungstate", "ferro tungsten", "tungsten wire"]}
PACKING = ["in bags", "in drums", "on pallets", "in crates", "bulk", "in jumbo bags", "in steel drums", "in cartons"]
PREFIXES = ["MSKU", "CMAU", "HLXU", "OOLU", "TGHU", "MEDU", "EGLV", "COSU"]
DESTINATIONS = ["DE", "NL", "JP", "KR", "US", "FR", "IT", "GB", "VN", "TH"]
STATUSES = ["declared", "in_transit", "delivered", "delivered", "intercepted", "seized", "released"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of the full size to seed (e.g. 0.05)")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per query, for each side")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    with bench_session("search", "search-bench", args.keep):
        seed = Seed(args.scale)
        seed.load()
        rows = [measure(seed, query, args.repeat) for query in seed.queries()]
        report(rows, seed, args)


# --- 1. the data ---------------------------------------------------------------------------------------------------


class Seed:
    def __init__(self, scale: float) -> None:
        self.persons = max(200, round(100_000 * scale))
        self.organizations = max(100, round(50_000 * scale))
        self.shipments = max(200, round(100_000 * scale))
        self.cases = max(10, round(200 * scale))
        self.rng = random.Random(5)
        self.token = ""
        self.person_names: list[str] = []
        self.org_names: list[str] = []
        self.references: list[str] = []

    def load(self) -> None:
        from django.db import connection
        from load import drop_queued

        from accounts.services import agency_ensure

        started = time.perf_counter()
        self.agency, self.user, self.token = bench_investigator(AGENCY, "Benchmark agency")
        other, _ = agency_ensure(code=OTHER, name="Another agency")
        for agency, share in ((self.agency, 1.0), (other, 0.05)):
            org_ids = self.load_entities(agency, share)
            self.load_shipments(agency, share, org_ids)
        self.load_cases()
        drop_queued()
        with connection.cursor() as cursor:  # what autovacuum would do after a bulk load, were it not behind
            for index in ("entity_search_trgm", "shipment_reference_trgm", "shipment_description_trgm"):
                cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
            cursor.execute("VACUUM ANALYZE entities_entity, shipments_shipment, cases_case, cases_caseparty")
        say(f"seeded {self.persons:,} persons, {self.organizations:,} organisations, {self.shipments:,} shipments "
            f"and {self.cases} cases (and a twentieth as much in another agency) "
            f"in {time.perf_counter() - started:.1f} s")

    def person_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"
        return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)} {rng.choice(SURNAMES)}"

    def org_name(self, i: int) -> str:
        rng = self.rng
        return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(TRADES)} {i} {rng.choice(FORMS)}"

    def load_entities(self, agency: Any, share: float) -> list[Any]:
        from entities.bulk import entities_upsert
        from entities.models import Entity

        persons = [{"source": SOURCE, "source_id": f"person-{i:06d}", "type": "person", "name": self.person_name(),
                    "birth_date": date(1950, 1, 1) + timedelta(days=self.rng.randrange(20000)),
                    "nationalities": [self.rng.choice(["CN", "VN", "RU", "KZ", "TH", "US", "DE", "FR"])]}
                   for i in range(round(self.persons * share))]
        orgs = [{"source": SOURCE, "source_id": f"org-{i:06d}", "type": "organization", "name": self.org_name(i),
                 "kind": "company", "jurisdiction": self.rng.choice(["CN", "HK", "VN", "SG"]),
                 "registration_number": f"9133{i:010d}"}
                for i in range(round(self.organizations * share))]
        if agency == self.agency:
            self.person_names = [str(row["name"]) for row in persons]
            self.org_names = [str(row["name"]) for row in orgs]
        for rows in (persons, orgs):
            for chunk in range(0, len(rows), CHUNK):
                entities_upsert(agency=agency, actor=None, rows=rows[chunk:chunk + CHUNK])
        return list(Entity.objects.filter(agency=agency, type="organization").order_by("source_id")
                    .values_list("pk", flat=True))

    def load_shipments(self, agency: Any, share: float, org_ids: list[Any]) -> None:
        from cases.models import Commodity
        from shipments.bulk import shipments_upsert

        commodities = {c.code: c for c in Commodity.objects.all()}
        rows = []
        for i in range(round(self.shipments * share)):
            commodity = commodities[COMMODITIES[i % len(COMMODITIES)]]
            quantity = Decimal(self.rng.randrange(100, 20000))
            reference = f"{self.rng.choice(PREFIXES)}{self.rng.randrange(10_000_000):07d}"
            rows.append({
                "source": SOURCE, "source_id": f"shipment-{i:07d}", "reference": reference, "currency": "USD",
                "commodity_id": commodity.code, "hs_code": commodity.hs_codes[0],
                "declared_hs_code": commodity.hs_codes[0],
                "declared_description": f"{self.rng.choice(GOODS[commodity.code])} {self.rng.choice(PACKING)}",
                "quantity_kg": quantity, "declared_value": quantity * (commodity.reference_value_per_kg or 1),
                "origin_country": "CN", "destination_country": self.rng.choice(DESTINATIONS),
                "transit_countries": [], "status": self.rng.choice(STATUSES),
                "departed_on": date(2024, 1, 1) + timedelta(days=self.rng.randrange(700)),
                "consignor_id": self.rng.choice(org_ids), "consignee_id": self.rng.choice(org_ids),
                "notify_party_id": None, "licence_id": None})
        if agency == self.agency:
            self.references = [row["reference"] for row in rows]
        for chunk in range(0, len(rows), CHUNK):
            shipments_upsert(agency=agency, actor=None, rows=rows[chunk:chunk + CHUNK])

    def load_cases(self) -> None:
        from django.db import transaction

        from cases.services import case_create, party_add
        from entities.models import Entity

        persons = list(Entity.objects.filter(agency=self.agency, type="person").order_by("source_id")
                       .values_list("pk", flat=True)[:5000])
        with transaction.atomic():
            for n in range(self.cases):
                case = case_create(agency=self.agency, actor=self.user, data={
                    "title": f"Operation {self.rng.choice(WORDS)} {n}", "classification": "restricted",
                    "summary": "Antimony and gallium routed through third countries."})
                for pk in self.rng.sample(persons, 3):
                    party_add(case=case, actor=self.user, data={"entity": Entity.objects.get(pk=pk),
                                                                "role": "suspect"})

    def queries(self) -> list[tuple[str, str]]:
        """(what it tries, the query): drawn from the seeded records, the same on every run."""
        rng = random.Random(17)
        accented = next(n for n in self.person_names[100:] if n != _ascii(n) and len(n.split()) == 3)
        plain = next(n for n in self.person_names[200:] if n == _ascii(n) and len(n.split()) == 3)
        two = next(n for n in self.person_names[300:] if len(n.split()) == 2)
        org = self.org_names[rng.randrange(len(self.org_names))]
        party = self.org_names[rng.randrange(len(self.org_names))]
        reference = self.references[rng.randrange(len(self.references))]
        words = org.split()
        return [
            ("person, a typo", _typo(plain, rng)),
            ("person, accents dropped", _ascii(accented).lower()),
            ("person, capitals", accented.upper()),
            ("person, word order", " ".join(reversed(two.split()))),
            ("person, surname only", plain.split()[-1]),
            ("organisation, no legal form", " ".join(words[:4])),
            ("organisation, order and typo", _typo(f"{words[2]} {words[0]} {words[1]}", rng)),
            ("organisation (consignee)", party),
            ("shipment reference", reference),
            ("shipment reference prefix", reference[:8].lower()),
            ("description words", "stibnite concentrate"),
            ("description word, typo", "neodymim oxide"),
        ]


def _ascii(text: str) -> str:
    from anyascii import anyascii

    return anyascii(text)


def _typo(text: str, rng: random.Random) -> str:
    """One letter of the longest word doubled."""
    word = max(text.split(), key=len)
    at = rng.randrange(1, len(word) - 1)
    return text.replace(word, word[:at] + word[at] + word[at:], 1)


# --- 2. the timing -------------------------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    query: str
    api_ms: float
    raw_ms: float
    api_count: int
    raw_count: int

    @property
    def ratio(self) -> float:
        return self.api_ms / self.raw_ms if self.raw_ms else float("inf")


def measure(seed: Seed, query: tuple[str, str], repeat: int) -> Row:
    from _load_urls import AUTH_SQL, Caller, _rows, search_rows
    from django.test import Client

    what, q = query
    client = Client(HTTP_AUTHORIZATION=f"Token {seed.token}", HTTP_HOST="localhost")
    caller = Caller(**_rows(AUTH_SQL, [hashlib.sha256(seed.token.encode()).hexdigest()])[0])
    api_times: list[float] = []
    raw_times: list[float] = []
    api_count = raw_count = 0
    for n in range(repeat + 2):  # two warm-ups, then alternately, so both see the same machine
        started = time.perf_counter()
        response = client.get("/api/v1/search/", {"q": q})
        api = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"search {q!r}: {response.status_code} {response.content[:300]!r}")
        started = time.perf_counter()
        rows = search_rows(caller, q)
        raw = time.perf_counter() - started
        if n >= 2:
            api_times.append(api)
            raw_times.append(raw)
        api_count, raw_count = response.json()["count"], len(rows)
    row = Row(what, q, statistics.median(api_times) * 1000, statistics.median(raw_times) * 1000, api_count, raw_count)
    say(f"  {what}: {q!r} API {row.api_ms:.1f} ms ({api_count} found), raw {row.raw_ms:.1f} ms ({raw_count})")
    return row


def report(rows: list[Row], seed: Seed, args: argparse.Namespace) -> None:
    say("")
    say(f"{seed.persons:,} persons, {seed.organizations:,} organisations, {seed.shipments:,} shipments, "
        f"{seed.cases} cases; median of {args.repeat} requests per query and side; API through Django's test client "
        f"as an investigator; found: the API's count / the raw query's rows (at most 50 a type)")
    header = f"{'query':<30} {'q':<34} {'API ms':>8} {'raw ms':>8} {'ratio':>6} {'found':>11}"
    say(header)
    say("-" * len(header))
    for row in rows:
        say(f"{row.what:<30} {row.query[:34]:<34} {row.api_ms:>8.1f} {row.raw_ms:>8.1f} {row.ratio:>6.2f} "
            f"{row.api_count:>5}/{row.raw_count:<5}")
    api, raw = sum(row.api_ms for row in rows), sum(row.raw_ms for row in rows)
    ratio = api / raw if raw else float("inf")
    say("-" * len(header))
    say(f"{'overall (sum of medians)':<30} {'':<34} {api:>8.1f} {raw:>8.1f} {ratio:>6.2f}  "
        f"aim <= {AIM:g}: {'met' if ratio <= AIM else 'MISSED'}")
    say(f"{'worst query':<30} {'':<34} {'':>8} {'':>8} {max(row.ratio for row in rows):>6.2f}")


if __name__ == "__main__":
    main()
