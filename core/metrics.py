"""Prometheus metrics at /metrics: request latency, Celery task counts and queue depth.

Task outcomes happen in worker processes, so workers count them in Redis (one hash) and the
web process reads that hash and the broker's queue lengths when scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import cast

import redis
from celery import signals
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram("http_request_duration_seconds", "Request latency", ["method", "route", "status"])
TASK_COUNTS_KEY = "metrics:celery_tasks"
WORKER_SEEN_KEY = "metrics:worker_seen"  # when a worker last finished a task (a Unix time); /readyz reads it


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match else "unmatched"
        REQUEST_LATENCY.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


class CeleryCollector:
    """Task outcomes counted by the workers, and the depth of each known queue."""

    def collect(self) -> Iterator[Metric]:
        tasks = CounterMetricFamily("celery_tasks", "Celery tasks run, by name and outcome", labels=["task", "outcome"])
        depth = GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        try:
            client = _redis()
            for field, count in client.hgetall(TASK_COUNTS_KEY).items():
                # _redis() does not decode responses, so fields come back as bytes.
                name, _, outcome = cast(bytes, field).decode().rpartition("|")
                tasks.add_metric([name, outcome], float(count))
            for queue in settings.TASK_QUEUES:
                name = f"{settings.TASK_QUEUE_PREFIX}{queue}"
                depth.add_metric([name], float(client.llen(name)))
        except redis.RedisError as exc:  # metrics must not fail because the broker is away
            logger.warning("metrics: Redis unavailable: %s", exc)
        yield tasks
        yield depth


REGISTRY.register(CeleryCollector())


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


def worker_last_seen() -> float | None:
    """When a worker last finished a task (Unix time), as the workers wrote it; None if never or Redis is away."""
    try:
        value = _redis().get(WORKER_SEEN_KEY)
    except redis.RedisError:
        return None
    return float(cast(bytes, value)) if value else None


def metrics_view(request):
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
