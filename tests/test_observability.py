"""JSON logs of the web and of a real worker, metrics that add up across gunicorn's workers, local API docs."""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest
import structlog
from django.core.cache import cache
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from alerts.models import AlertRun
from alerts.services import run_create
from audit.services import record
from audit.tasks import verification_key, verify_chains

from . import factories
from .worker import celery_worker, process_env, worker_process


def _json_lines(text: str) -> list[dict]:
    """Every non-empty line of `text` as a JSON object (a line that is not one fails the test)."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
    return lines


@pytest.fixture
def log_lines(caplog) -> Iterator[Callable[[], list[dict]]]:
    """What the configured formatter writes while the test runs (INFO and up), as parsed lines."""
    root = logging.getLogger()
    configured = [h.formatter for h in root.handlers if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)]
    assert configured, "no handler of the root logger has the project's formatter"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configured[0])
    root.addHandler(handler)
    caplog.set_level(logging.INFO)
    try:
        yield lambda: _json_lines(stream.getvalue())
    finally:
        root.removeHandler(handler)


def test_a_request_logs_json_lines_with_its_request_id_user_and_agency(api, log_lines):
    response = api.get("/api/v1/cases/", HTTP_X_REQUEST_ID="trace-42")
    assert response.status_code == 200
    missing = api.get(f"/api/v1/cases/{uuid.uuid4()}/", HTTP_X_REQUEST_ID="trace-43")
    assert missing.status_code == 404

    lines = log_lines()
    for line in lines:
        assert {"timestamp", "level", "logger", "event", "request_id", "user", "agency"} <= set(line), line
    done = [line for line in lines if line["event"] == "request" and line["request_id"] == "trace-42"]
    assert len(done) == 1, lines
    assert done[0]["user"] == "inv-a1" and done[0]["agency"] == "SSB"
    assert done[0]["route"] == "case-list" and done[0]["status"] == 200 and done[0]["method"] == "GET"
    assert done[0]["level"] == "info" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", done[0]["timestamp"])
    # A standard-library logger's line (Django's own "Not Found") carries the same fields.
    not_found = [line for line in lines if line["logger"] == "django.request"]
    assert [(line["request_id"], line["user"], line["agency"], line["level"]) for line in not_found] == [
        ("trace-43", "inv-a1", "SSB", "warning")]


def test_an_anonymous_request_logs_no_user(db, log_lines):
    APIClient().get("/api/v1/cases/", HTTP_X_REQUEST_ID="anon-1")
    [line] = [line for line in log_lines() if line["event"] == "request"]
    assert line["request_id"] == "anon-1" and line["user"] is None and line["agency"] is None
    assert line["status"] == 401


def test_an_admin_request_logs_its_signed_in_user(supervisor, log_lines):
    browser = factories.admin_client(supervisor)
    assert browser.get("/admin/", HTTP_X_REQUEST_ID="admin-1").status_code == 200
    [line] = [line for line in log_lines() if line["event"] == "request"]
    assert (line["request_id"], line["user"], line["agency"], line["route"]) == ("admin-1", "sup-a", "SSB",
                                                                                  "admin:index")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_json_lines_with_its_task_and_job(world, settings):
    factories.shipment(world.a, commodity_id="antimony", origin_country="CN", reference="BL-LOG-1")
    settings.ALERT_RUN_PARTS = 1
    with worker_process(LOG_LEVEL="INFO") as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        run = run_create(agency=world.a)
        deadline = time.monotonic() + 60
        while not AlertRun.objects.filter(pk=run.pk, status="succeeded").exists():
            assert time.monotonic() < deadline, "the alerts run did not finish"
            time.sleep(0.2)
    assert worker.process.stdout is not None
    output = worker.process.stdout.read().decode()
    # Celery's signal handler writes its shutdown notice straight to the terminal, not as a log record.
    lines = _json_lines(re.sub(r"(?m)^worker: Warm shutdown \(MainProcess\)$", "", output))

    for line in lines:
        assert {"timestamp", "level", "logger", "event", "request_id", "user", "agency"} <= set(line), line
    # A line the task's own code wrote (alerts.services, a standard-library logger) inside the task.
    [started] = [line for line in lines if line["logger"] == "alerts.services" and line.get("task") == "alerts.run"]
    assert started["job_id"] == str(run.pk) and started["task_id"] and started["request_id"] == started["task_id"]
    parts = [line for line in lines if line["logger"] == "alerts.services" and line.get("task") == "alerts.run_part"]
    assert parts and all(line["job_id"] == str(run.pk) for line in parts)
    # Celery's own lines about the task carry its id and name too.
    succeeded = [line for line in lines if line["logger"] == "celery.app.trace" and "succeeded" in line["event"]]
    assert {(line["task"], line["task_id"]) for line in succeeded} >= {("alerts.run", started["task_id"])}


def _metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name}


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_task_durations(world, client):
    def durations() -> tuple[float, float, float]:
        text = client.get("/metrics").content.decode()
        count = _metric_samples(text, "celery_task_duration_seconds_count").get((("task", "audit.verify_chains"),), 0)
        total = _metric_samples(text, "celery_task_duration_seconds_sum").get((("task", "audit.verify_chains"),), 0)
        inf = _metric_samples(text, "celery_task_duration_seconds_bucket").get(
            (("le", "+Inf"), ("task", "audit.verify_chains")), 0)
        return count, total, inf

    before, before_total, _ = durations()
    record(action="update", agency=world.a, object_type="test", object_id="1")
    key = verification_key(str(world.a.pk))
    cache.delete(key)
    with celery_worker() as queue:
        verify_chains.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while durations()[0] < before + 1:
            assert time.monotonic() < deadline, "the task's duration was not recorded"
            time.sleep(0.2)
    count, total, inf = durations()
    # Other workers on the same Redis (a parallel test, a development server) may record theirs too.
    assert count >= before + 1 and total > before_total and inf == count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, **headers: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _requests_by_worker(metrics_dir: Path) -> dict[str, float]:
    """The requests each gunicorn worker counted, read from its own files (by its pid)."""
    counted = {}
    for path in metrics_dir.glob("histogram_*.db"):
        samples = [sample for family in MultiProcessCollector.merge([str(path)]) for sample in family.samples
                   if sample.name == "http_request_duration_seconds_count"]
        counted[path.stem.rpartition("_")[2]] = sum(sample.value for sample in samples)
    return {pid: count for pid, count in counted.items() if count}


@pytest.mark.django_db(transaction=True)
def test_gunicorn_metrics_add_up_across_its_workers(investigator, tmp_path: Path):
    token = factories.token(investigator)
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    env = process_env(f"test-{uuid.uuid4().hex[:8]}-", GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2",
                      PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), LOG_LEVEL="INFO")
    with open(tmp_path / "stdout", "wb") as stdout, open(tmp_path / "stderr", "wb") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"], env=env,
                                  stdout=stdout, stderr=stderr, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
            try:
                if _get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        # The readiness polls above were counted too: start from what the server says now.
        started = _metric_samples(_get(port, "/metrics")[1], "http_request_duration_seconds_count")
        healthz_before = sum(v for labels, v in started.items() if ("route", "healthz") in labels)

        auth = {"Authorization": f"Token {token}"}
        calls: list[tuple[str, dict[str, str], int]] = (
            [("/healthz", {}, 200)] * 12 + [("/api/v1/cases/", auth, 200)] * 8
            + [(f"/api/v1/cases/{uuid.uuid4()}/", auth, 404)] * 4 + [("/no-such-page", {}, 404)] * 2)

        def call(n: int) -> int:
            path, headers, _ = calls[n % len(calls)]
            return _get(port, path, **headers, **{"X-Request-ID": f"load-{n}"})[0]

        # Rounds of requests, four at a time, until each of the two workers has answered some (after the first
        # round, unless one worker was still starting): the sums below are then across processes.
        rounds = 0
        while rounds == 0 or len(_requests_by_worker(metrics_dir)) < 2:
            assert rounds < 10, _requests_by_worker(metrics_dir)
            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(call, range(rounds * len(calls), (rounds + 1) * len(calls))))
            assert statuses == [status for _, _, status in calls]
            rounds += 1
        assert sum(_requests_by_worker(metrics_dir).values()) == healthz_before + 1 + rounds * len(calls)

        for scrape in range(1, 6):
            status, text = _get(port, "/metrics")
            assert status == 200
            counts = _metric_samples(text, "http_request_duration_seconds_count")
            by_route: dict[str, float] = {}
            for labels, value in counts.items():
                route = dict(labels)["route"]
                by_route[route] = by_route.get(route, 0) + value
            # Route names only: never a pattern or a path.
            assert set(by_route) <= {"healthz", "case-list", "case-detail", "unmatched", "metrics"}, by_route
            assert by_route.get("healthz", 0) - healthz_before == 12 * rounds, by_route
            assert (by_route.get("case-list"), by_route.get("case-detail"), by_route.get("unmatched")) == (
                8 * rounds, 4 * rounds, 2 * rounds)
            assert by_route.get("metrics") == scrape  # this scrape is not yet counted; the first one above was
            assert counts[(("method", "GET"), ("route", "case-detail"), ("status", "404"))] == 4 * rounds
    finally:
        server.terminate()
        server.wait(timeout=30)

    access = _json_lines((tmp_path / "stdout").read_text())
    assert all(line["logger"] == "gunicorn.access" for line in access)
    answered = {line["request_id"]: line for line in access if (line["request_id"] or "").startswith("load-")}
    assert set(answered) == {f"load-{n}" for n in range(rounds * len(calls))}
    assert answered["load-0"]["path"] == "/healthz" and answered["load-0"]["status"] == 200
    app_lines = _json_lines((tmp_path / "stderr").read_text())
    requests = [line for line in app_lines if line["event"] == "request" and line.get("route") == "case-list"]
    assert len(requests) == 8 * rounds and {(line["user"], line["agency"]) for line in requests} == {("inv-a1", "SSB")}


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_api_docs_load_nothing_from_another_host(api, settings, page):
    settings.WHITENOISE_USE_FINDERS = True  # static files from the apps, as collectstatic gathers them for production
    response = api.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.findall(r"https?://(?!testserver/)[^\s\"'<>]+", html)
    parser = _Assets()
    parser.feed(html)
    scripts = [url for url in parser.urls if url.endswith(".js")]
    assert scripts and all(url.startswith("/static/drf_spectacular_sidecar/") for url in scripts), parser.urls
    for url in parser.urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content]), url
