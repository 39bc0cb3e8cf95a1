"""/healthz (the process is up) and /readyz (API.md: 200 only when PostgreSQL, Redis and the broker answer;
with each check, whether a worker answered recently, and the outbox's backlog)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    return JsonResponse({"status": "ok"})


def _error(exc: BaseException) -> str:
    return f"error: {exc.__class__.__name__}"


def _postgres() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _redis() -> str:
    redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    return "ok"


def _broker() -> str:
    from config.celery import app

    with app.connection_for_read(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=0)
    return "ok"


def _worker() -> dict[str, Any]:
    from .metrics import worker_last_seen

    seen = worker_last_seen()
    return {
        "recent": seen is not None and time.time() - seen <= settings.WORKER_RECENT_SECONDS,
        "last_seen": datetime.datetime.fromtimestamp(seen, datetime.UTC).isoformat() if seen else None,
    }


def readyz(request):
    checks: dict[str, str] = {}
    for name, check in (("postgres", _postgres), ("redis", _redis), ("broker", _broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure means not ready
            checks[name] = _error(exc)
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks, "worker": _worker()}
    if checks["postgres"] == "ok":
        from .outbox import backlog

        body["outbox"] = backlog()
    return JsonResponse(body, status=200 if ok else 503)
