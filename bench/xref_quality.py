"""Cross-referencing quality on published truth sets, beside nomenklatura's logic-v2 and Splink on the same records.

    python bench/xref_quality.py [--set csv_example|patstat|senzing] [--json] [--database NAME] [--no-peers]

For each data set (bench/xref_data.py: dedupe's csv_example and patstat, Senzing's truth set; found in `er/` of
SHARED_DATA_DIR, else ../shared/data from the project root): a fresh agency imports the set's files through the
real import path (imports.services: a job per file, run here), a full cross-referencing pass runs over its records
(xref.services.run_create, its parts run in this process),
and the bench prints records, true pairs, candidate pairs (and their share of n²), blocking recall (true pairs
among the candidates), pairwise precision, recall and F1 at settings.XREF_PROPOSE_THRESHOLD (chosen without the
truth) and at the best threshold (found with it), the block caps in effect and the wall times.

Beside them, on the same records as stored (read back from the database): nomenklatura's `logic-v2` matcher over
its own DuckDB blocker (and over all pairs of a set small enough), and Splink (DuckDB backend; u by random
sampling, m by EM, a standard set of blocking rules and comparisons per data set). Either prints "not installed"
when its package is missing (`pip install -e .[bench]`).

The database is a dedicated one (DATABASE_URL's server, the name from --database, default `bench_xref_quality`):
dropped, created and migrated at the start, so every run starts empty. DJANGO_SETTINGS_MODULE defaults to
config.settings.local.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

DEFAULT_DATABASE = "bench_xref_quality"
Pair = tuple[str, str]
Scores = dict[Pair, float]
# nomenklatura's blocker caps a token's bucket at 60 records by default; patstat's clusters (one company filed
# under hundreds of spellings) need a larger cap, as the issue measured it with (2,500).
NK_BUCKET = {"csv_example": 60, "patstat": 2500, "senzing": 60}
NK_ALL_PAIRS_MAX = 1000  # records: nomenklatura also scores every pair of a set this small


# --- metrics ------------------------------------------------------------------------------------


@dataclass
class Quality:
    precision: float
    recall: float
    f1: float
    threshold: float


def quality_at(scores: Scores, truth: set[Pair], threshold: float) -> Quality:
    predicted = {pair for pair, score in scores.items() if score >= threshold}
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, threshold)


def best_quality(scores: Scores, truth: set[Pair]) -> Quality:
    """The threshold (one of the scores) with the highest F1 over the scored pairs."""
    best = Quality(0.0, 0.0, 0.0, 1.0)
    hits = taken = 0
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    for i, (pair, score) in enumerate(ranked):
        taken += 1
        hits += pair in truth
        if i + 1 < len(ranked) and ranked[i + 1][1] == score:
            continue  # a threshold takes every pair of its score
        f1 = 2 * hits / (taken + len(truth)) if truth else 0.0
        if f1 > best.f1:
            best = Quality(hits / taken, hits / len(truth), f1, score)
    return best


@dataclass
class Result:
    """One matcher's numbers on one data set."""

    matcher: str
    candidates: int = 0
    blocking_recall: float = 0.0
    at_threshold: Quality | None = None
    best: Quality | None = None
    seconds: float = 0.0
    detail: str = ""
    status: str = "ok"  # ok | not installed | not run | failed

    @classmethod
    def of(cls, matcher: str, scores: Scores, truth: set[Pair], threshold: float, seconds: float,
           detail: str = "", proposed: Scores | None = None) -> Result:
        """`scores` of every candidate pair; `proposed` (when the matcher stores only what reaches its threshold)
        the pairs it proposed, else those of `scores` at the threshold."""
        at = quality_at(proposed if proposed is not None else scores, truth, threshold)
        return cls(matcher, len(scores), len(truth & scores.keys()) / len(truth) if truth else 0.0, at,
                   best_quality(scores, truth), seconds, detail)


@dataclass
class SetReport:
    name: str
    records: int
    clusters: int
    true_pairs: int
    import_seconds: float
    row_errors: list[str]
    skipped: list[tuple[str, str]]
    notes: list[str]
    caps: dict[str, Any]
    results: list[Result] = field(default_factory=list)


def share_of_n2(candidates: int, records: int) -> float:
    return candidates / (records * records) if records else 0.0


# --- the database -------------------------------------------------------------------------------


def fresh_database(name: str) -> str:
    """Drop, create and migrate the bench's own database on DATABASE_URL's server; its description."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    params = settings.DATABASES["default"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"--database {name!r}: lower-case letters, digits and underscores only")
    with psycopg.connect(dbname="postgres", user=params["USER"], password=params["PASSWORD"] or None,
                         host=params["HOST"] or None, port=params["PORT"] or None, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    call_command("migrate", verbosity=0)
    return f"{name} on {params['HOST'] or 'localhost'}:{params['PORT'] or 5432}"


# --- our engine ---------------------------------------------------------------------------------


def full_pass(agency: Any) -> tuple[Any, Scores, Scores]:
    """A full cross-referencing pass as the system runs it (`xref.services.run_create`, its parts run here one after
    the other), then every candidate pair of the same pass scored again for the threshold sweep (the run stores
    only the pairs it proposes). Returns (the run, the proposed pairs' scores, every candidate pair's score),
    keyed by entity id."""
    from django.conf import settings

    from xref import matching
    from xref.models import Match
    from xref.services import run_create

    run = run_create(agency=agency, sync=True)
    if run.status != "succeeded":
        raise RuntimeError(f"the xref run ended {run.status}: {run.error}")
    proposed: Scores = {(str(left), str(right)): score for left, right, score in Match.objects.filter(
        left_agency=agency, right_agency=agency, archived=False).values_list("left_id", "right_id", "score")}
    pairs = {pair for part in range(run.parts) for pair in matching.full_candidates(agency.pk, part, run.parts)}
    scores: Scores = {}
    for batch in _chunks(sorted(pairs), settings.XREF_BATCH):
        for s in matching.score_pairs(batch):
            scores[(str(s.left), str(s.right))] = s.score
    return run, proposed, scores


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start:start + size]


def run_ours(agency: Any, data: Any, threshold: float) -> Result:
    from entities.models import Entity

    started = time.perf_counter()
    run, proposed, scores = full_pass(agency)
    seconds = time.perf_counter() - started
    source_ids = dict(Entity.objects.filter(agency=agency).values_list("pk", "source_id"))

    def by_source(found: Scores) -> Scores:
        keyed: Scores = {}
        for (a, b), score in found.items():
            left, right = source_ids.get(_uuid(a)), source_ids.get(_uuid(b))
            if left and right:  # a pair within this agency's records
                keyed[(min(left, right), max(left, right))] = score
        return keyed

    run_seconds = (run.finished_at - run.started_at).total_seconds()
    return Result.of("ours (xref run)", by_source(scores), data.truth, threshold, seconds, proposed=by_source(proposed),
                     detail=f"run {run_seconds:.1f} s in {run.parts} parts: {run.candidates:,} candidates, "
                            f"{run.matches:,} proposed")


def _uuid(value: str) -> Any:
    return uuid.UUID(str(value))


# --- the records as stored, for the peers -------------------------------------------------------


def stored_records(agency: Any) -> list[dict[str, Any]]:
    from entities.models import Entity

    return [dict(row) for row in Entity.objects.filter(agency=agency, archived=False).order_by("source_id").values(
        "source_id", "type", "name", "names", "gender", "birth_date", "nationalities", "jurisdiction",
        "registration_number", "identifiers", "addresses", "phones", "emails")]


# --- nomenklatura logic-v2 ----------------------------------------------------------------------


def run_nomenklatura(name: str, records: list[dict[str, Any]], truth: set[Pair]) -> list[Result]:
    try:
        from followthemoney import Dataset, StatementEntity
        from nomenklatura.blocker.index import Index
        from nomenklatura.matching import LogicV2, ScoringConfig
        from nomenklatura.resolver.linker import Linker
        from nomenklatura.store.memory import MemoryStore
    except ImportError:
        return [Result("nomenklatura logic-v2", status="not installed")]
    import logging

    logging.getLogger("nomenklatura").setLevel(logging.WARNING)
    dataset = Dataset.make({"name": "bench", "title": "bench"})
    store: Any = MemoryStore(dataset, Linker({}))
    writer = store.writer()
    for r in records:
        entity = StatementEntity.from_data(dataset, {"id": r["source_id"], **_ftm(r)})
        writer.add_entity(entity)
    view = store.default_view()
    config = ScoringConfig.defaults()
    threshold = 0.7  # logic-v2's own suggestion threshold, as the issue measured it

    def score(pairs: Iterable[Pair]) -> Scores:
        return {(min(a, b), max(a, b)): LogicV2.compare(view.get_entity(a), view.get_entity(b), config).score
                for a, b in pairs}

    results = []
    started = time.perf_counter()
    bucket = NK_BUCKET.get(name, 60)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index(view, Path(tmp), {"max_bucket_size": bucket})
        index.build()
        blocked = [(left.id, right.id) for (left, right), _ in index.pairs(max_pairs=10**8)]
        index.close()
    scores = score(blocked)
    results.append(Result.of("nomenklatura logic-v2, blocked", scores, truth, threshold,
                             time.perf_counter() - started, detail=f"bucket cap {bucket}"))
    if len(records) <= NK_ALL_PAIRS_MAX:
        started = time.perf_counter()
        ids = [r["source_id"] for r in records]
        kinds = {r["source_id"]: r["type"] for r in records}
        every = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if kinds[a] == kinds[b]]
        results.append(Result.of("nomenklatura logic-v2, all pairs", score(every), truth, threshold,
                                 time.perf_counter() - started))
    return results


def _ftm(r: dict[str, Any]) -> dict[str, Any]:
    """An FtM entity's schema and properties from a stored record."""
    person = r["type"] == "person"
    ids = r["identifiers"] or []
    props: dict[str, list[str]] = {
        "name": [r["name"]], "alias": list(r["names"] or []), "phone": list(r["phones"] or []),
        "email": list(r["emails"] or []), "address": [a["text"] for a in r["addresses"] or []],
        "country": sorted({a["country"] for a in r["addresses"] or [] if a.get("country")}),
    }
    if person:
        props["birthDate"] = [r["birth_date"].isoformat()] if r["birth_date"] else []
        props["gender"] = [r["gender"]] if r["gender"] else []
        props["nationality"] = list(r["nationalities"] or [])
        props["passportNumber"] = [i["number"] for i in ids if i["scheme"] == "passport"]
        props["idNumber"] = [i["number"] for i in ids if i["scheme"] != "passport"]
    else:
        props["registrationNumber"] = [r["registration_number"]] if r["registration_number"] else []
        props["jurisdiction"] = [r["jurisdiction"]] if r["jurisdiction"] else []
        props["taxNumber"] = [i["number"] for i in ids if i["scheme"] == "tax_id"]
        props["idNumber"] = [i["number"] for i in ids if i["scheme"] != "tax_id"]
    return {"schema": "Person" if person else "Organization",
            "properties": {key: values for key, values in props.items() if values}}


# --- Splink -------------------------------------------------------------------------------------


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    """A record as one flat row of Splink's input: lower-cased names, first and last name tokens, the first of
    each list, a postcode read off the first address."""
    name = " ".join(re.sub(r"[^\w]+", " ", r["name"].lower()).split())
    tokens = name.split()
    address = (r["addresses"] or [{}])[0].get("text", "").lower() or None
    postcodes = re.findall(r"\b\d{5,6}\b", address or "")
    ids = [i["number"] for i in r["identifiers"] or []] + ([r["registration_number"]] if r["registration_number"]
                                                           else [])
    return {
        "unique_id": r["source_id"], "type": r["type"], "name": name or None,
        "first_name": tokens[0] if tokens and r["type"] == "person" else None,
        "surname": tokens[-1] if len(tokens) > 1 and r["type"] == "person" else None,
        "dob": r["birth_date"].isoformat() if r["birth_date"] else None,
        "email": (r["emails"] or [None])[0], "phone": (r["phones"] or [None])[0],
        "address": address, "postcode": postcodes[-1] if postcodes else None, "id_number": ids[0] if ids else None,
    }


def _splink_setup(name: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Comparisons, prediction blocking rules and training rules of a standard Splink model for the set; None
    when the set has too little for EM to learn from (one name column)."""
    import splink.comparison_library as cl
    from splink import block_on

    def has(column: str) -> bool:
        return any(row[column] for row in rows)

    if name == "csv_example":
        comparisons = [cl.NameComparison("name"), cl.JaroWinklerAtThresholds("address", [0.95, 0.88, 0.7]),
                       cl.ExactMatch("postcode")]
        if has("phone"):
            comparisons.append(cl.ExactMatch("phone"))
        blocking = [block_on("name"), block_on("address"), block_on("postcode", "substr(name, 1, 3)"),
                    block_on("substr(address, 1, 6)"), block_on("substr(name, 1, 6)"),
                    *([block_on("phone")] if has("phone") else [])]
        return {"comparisons": comparisons, "blocking": blocking,
                "deterministic": [block_on("name"), block_on("address")],
                "em": [block_on("postcode"), block_on("substr(name, 1, 4)")]}
    if name == "senzing":
        comparisons = [cl.NameComparison("first_name"), cl.NameComparison("surname"), cl.NameComparison("name"),
                       cl.DateOfBirthComparison("dob", input_is_string=True), cl.EmailComparison("email"),
                       cl.ExactMatch("phone"), cl.LevenshteinAtThresholds("address", [3, 8]),
                       cl.ExactMatch("postcode"), cl.ExactMatch("id_number")]
        blocking = [block_on("type", column) for column in
                    ("surname", "first_name", "dob", "email", "phone", "postcode", "id_number", "name")]
        return {"comparisons": comparisons, "blocking": blocking,
                "deterministic": [block_on("name", "dob"), block_on("email"), block_on("id_number")],
                "em": [block_on("surname"), block_on("dob"), block_on("address")]}
    return None


def run_splink(name: str, records: list[dict[str, Any]], truth: set[Pair]) -> list[Result]:
    try:
        import splink  # noqa: F401
        from splink import DuckDBAPI, Linker, SettingsCreator
    except ImportError:
        return [Result("Splink", status="not installed")]
    import logging

    rows = [_flat(r) for r in records]
    setup = _splink_setup(name, rows)
    if setup is None:
        return [Result("Splink", status="not run", detail="names only: nothing for EM to learn beside the name")]
    started = time.perf_counter()
    db_api = DuckDBAPI()
    table = db_api.register(rows)
    settings = SettingsCreator(link_type="dedupe_only", comparisons=setup["comparisons"],
                               blocking_rules_to_generate_predictions=setup["blocking"],
                               retain_matching_columns=False)
    logging.getLogger("splink").setLevel(logging.ERROR)  # its training notes are many; failures still raise
    linker = Linker(table, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(setup["deterministic"], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in setup["em"]:
        linker.training.estimate_parameters_using_expectation_maximisation(rule, record_sample_proportion=1.0)
    predicted = linker.inference.predict().as_record_list()
    scores = {(min(p["unique_id_l"], p["unique_id_r"]), max(p["unique_id_l"], p["unique_id_r"])):
              float(p["match_probability"]) for p in predicted}
    return [Result.of("Splink (DuckDB, EM)", scores, truth, 0.5, time.perf_counter() - started,
                      detail=f"{len(setup['blocking'])} blocking rules, {len(setup['comparisons'])} comparisons")]


# --- the run ------------------------------------------------------------------------------------


def run_set(name: str, peers: bool) -> SetReport:
    import xref_data
    from django.conf import settings

    from accounts.models import Agency

    data = xref_data.load(name)
    agency = Agency.objects.create(code=f"xq-{uuid.uuid4().hex[:8]}", name=f"Quality bench: {name}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = xref_data.import_dataset(data, agency, Path(tmp))
    import_seconds = time.perf_counter() - started
    caps = {"XREF_BLOCK_MAX_SIZE": settings.XREF_BLOCK_MAX_SIZE, "XREF_BLOCK_MAX_SHARE": settings.XREF_BLOCK_MAX_SHARE,
            "XREF_PROPOSE_THRESHOLD": settings.XREF_PROPOSE_THRESHOLD}
    report = SetReport(name, len(data.records), data.clusters, len(data.truth), import_seconds,
                       xref_data.row_errors(jobs), data.skipped, data.notes, caps)
    report.results.append(run_ours(agency, data, settings.XREF_PROPOSE_THRESHOLD))
    if peers:
        records = stored_records(agency)
        runners: list[Callable[[str, list[dict[str, Any]], set[Pair]], list[Result]]] = [run_nomenklatura,
                                                                                          run_splink]
        for runner in runners:
            try:
                report.results += runner(name, records, data.truth)
            except Exception as exc:  # a peer's failure is reported, the bench goes on
                report.results.append(Result(runner.__name__.removeprefix("run_"), status="failed",
                                             detail=f"{type(exc).__name__}: {exc}"[:300]))
    return report


def print_report(report: SetReport) -> None:
    print(f"\n== {report.name}: {report.records:,} records, {report.clusters:,} clusters, "
          f"{report.true_pairs:,} true pairs; imported in {report.import_seconds:.1f} s, "
          f"{len(report.row_errors)} row errors")
    for error in report.row_errors[:10]:
        print(f"   row error: {error}")
    for source_id, why in report.skipped:
        print(f"   left out: {source_id} ({why})")
    for note in report.notes:
        print(f"   mapping: {note}")
    print("   caps: " + ", ".join(f"{k}={v}" for k, v in report.caps.items()))
    header = (f"   {'matcher':<44} {'candidates':>11} {'of n²':>7} {'block R':>7}   {'P':>5} {'R':>5} {'F1':>5} "
              f"{'at':>5}   {'best F1':>7} {'at':>5}  {'time':>7}")
    print(header)
    for r in report.results:
        if r.status != "ok" or r.at_threshold is None or r.best is None:
            print(f"   {r.matcher:<44} {r.status}{': ' + r.detail if r.detail else ''}")
            continue
        a, b = r.at_threshold, r.best
        print(f"   {r.matcher:<44} {r.candidates:>11,} {share_of_n2(r.candidates, report.records):>7.2%} "
              f"{r.blocking_recall:>7.3f}   {a.precision:>5.3f} {a.recall:>5.3f} {a.f1:>5.3f} {a.threshold:>5.2f}"
              f"   {b.f1:>7.3f} {b.threshold:>5.2f}  {r.seconds:>6.1f}s" + (f"  ({r.detail})" if r.detail else ""))


def main() -> None:
    import xref_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(xref_data.DATASETS), action="append",
                        help="run this data set only (repeatable; default: all)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="the bench's own database (dropped first)")
    parser.add_argument("--no-peers", action="store_true", help="skip nomenklatura and Splink")
    args = parser.parse_args()
    if not xref_data.available():
        raise SystemExit(f"the ER data sets are not at {xref_data.er_dir()}: set SHARED_DATA_DIR")
    os.environ["DATABASE_NAME"] = args.database
    import django

    django.setup()
    where = fresh_database(args.database)
    if not args.json:
        print(f"database: {where} (fresh)")
    reports = []
    for name in args.set or list(xref_data.DATASETS):
        report = run_set(name, peers=not args.no_peers)
        reports.append(report)
        if not args.json:
            print_report(report)
    if args.json:
        print(json.dumps({"database": where, "sets": [asdict(r) for r in reports]}, indent=2, default=str))


if __name__ == "__main__":
    main()
