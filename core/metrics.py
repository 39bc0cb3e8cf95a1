"""Prometheus metrics at /metrics: request latency by route name, Celery task counts and durations, queue depth.

Requests: under gunicorn every worker process writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(config/gunicorn.py sets it) and a scrape, whichever process answers it, adds up all of them. Without the variable
(runserver, tests) the process's own registry answers.

Tasks: outcomes and durations happen in worker processes, on any number of hosts, so the workers count them in
Redis (two hashes) and the web process reads those and the broker's queue lengths when scraped: one scrape of any
web process sees every worker's tasks, with no scrape target per worker host or pool process. They are global
totals, the same from every web process: scrape one of them, or take `max` rather than `sum` across them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import cast

import redis
from celery import signals
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .middleware import route_name

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram("http_request_duration_seconds", "Request latency", ["method", "route", "status"])
# Any other method a client sends is counted as OTHER: a label's values stay few whatever clients send.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TASK_COUNTS_KEY = "metrics:celery_tasks"
TASK_SECONDS_KEY = "metrics:celery_task_seconds"  # fields "<task>|<bucket index>" (a count) and "<task>|sum"
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0, float("inf"))
WORKER_SEEN_KEY = "metrics:worker_seen"  # when a worker last finished a task (a Unix time); /readyz reads it


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "OTHER"
        REQUEST_LATENCY.labels(method, route_name(request), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


class CeleryCollector:
    """Task outcomes and durations recorded by the workers, and the depth of each known queue."""

    def collect(self) -> Iterator[Metric]:
        tasks = CounterMetricFamily("celery_tasks", "Celery tasks run, by name and outcome", labels=["task", "outcome"])
        seconds = HistogramMetricFamily("celery_task_duration_seconds", "Time a Celery task ran, by name",
                                        labels=["task"])
        depth = GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        try:
            client = _redis()
            for field, count in client.hgetall(TASK_COUNTS_KEY).items():
                # _redis() does not decode responses, so fields come back as bytes.
                name, _, outcome = cast(bytes, field).decode().rpartition("|")
                tasks.add_metric([name, outcome], float(count))
            for name, (buckets, total) in _durations(client.hgetall(TASK_SECONDS_KEY)).items():
                seconds.add_metric([name], buckets=buckets, sum_value=total)
            for queue in settings.TASK_QUEUES:
                name = f"{settings.TASK_QUEUE_PREFIX}{queue}"
                depth.add_metric([name], float(client.llen(name)))
        except redis.RedisError as exc:  # metrics must not fail because the broker is away
            logger.warning("metrics: Redis unavailable: %s", exc)
        yield tasks
        yield seconds
        yield depth


def _durations(fields: dict) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """The duration hash as each task's cumulative buckets and sum (each run is counted in one bucket only)."""
    counts: dict[str, list[float]] = {}
    sums: dict[str, float] = {}
    for field, value in fields.items():
        name, _, which = cast(bytes, field).decode().rpartition("|")
        if which == "sum":
            sums[name] = float(value)
        elif which.isdigit() and int(which) < len(TASK_BUCKETS):
            counts.setdefault(name, [0.0] * len(TASK_BUCKETS))[int(which)] = float(value)
    result = {}
    for name, per_bucket in counts.items():
        cumulative, buckets = 0.0, []
        for bound, count in zip(TASK_BUCKETS, per_bucket, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        result[name] = (buckets, sums.get(name, 0.0))
    return result


CELERY_COLLECTOR = CeleryCollector()
REGISTRY.register(CELERY_COLLECTOR)


def _count(task_name: str, outcome: str) -> None:
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrby(TASK_COUNTS_KEY, f"{task_name}|{outcome}", 1)
        pipe.set(WORKER_SEEN_KEY, time.time())
        pipe.execute()
    except redis.RedisError:
        logger.warning("metrics: could not count task %s (%s)", task_name, outcome)


@signals.task_success.connect
def _on_success(sender=None, **kwargs) -> None:
    _count(getattr(sender, "name", "unknown"), "success")


@signals.task_failure.connect
def _on_failure(sender=None, **kwargs) -> None:
    _count(getattr(sender, "name", "unknown"), "failure")


@signals.task_retry.connect
def _on_retry(sender=None, **kwargs) -> None:
    _count(getattr(sender, "name", "unknown"), "retry")


_started: dict[str, float] = {}


@signals.task_prerun.connect
def _on_start(sender=None, task_id=None, **kwargs) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _on_end(sender=None, task_id=None, **kwargs) -> None:
    started = _started.pop(task_id, None) if task_id is not None else None
    if started is None:
        return
    elapsed = time.perf_counter() - started
    name = getattr(sender, "name", "unknown")
    bucket = next(i for i, bound in enumerate(TASK_BUCKETS) if elapsed <= bound)
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrby(TASK_SECONDS_KEY, f"{name}|{bucket}", 1)
        pipe.hincrbyfloat(TASK_SECONDS_KEY, f"{name}|sum", elapsed)
        pipe.execute()
    except redis.RedisError:
        logger.warning("metrics: could not record the duration of task %s", name)


def worker_last_seen() -> float | None:
    """When a worker last finished a task (Unix time), as the workers wrote it; None if never or Redis is away."""
    try:
        value = _redis().get(WORKER_SEEN_KEY)
    except redis.RedisError:
        return None
    return float(cast(bytes, value)) if value else None


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # every gunicorn worker's samples, from their files
        registry.register(CELERY_COLLECTOR)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
