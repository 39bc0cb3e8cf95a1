"""Safe retries of a POST (API.md § Basics): the `Idempotency-Key` request header.

The same user sending the same key with the same request (method, path and body) within IDEMPOTENCY_KEEP_HOURS gets
the first answer again (status, body, Location, ETag, and `Idempotent-Replayed: true`) and nothing is done twice;
the same key with another request is a 422. While the first request with a key runs, it holds a PostgreSQL advisory
lock on (user, key): a second one with that key meanwhile gets a 409 at once, rather than holding a worker while it
waits (the lock goes with the connection, so a worker that dies mid-request leaves no key stuck).

Every answer but a 5xx is kept: a 4xx is the answer to that request and will be again, so a retry gets it at once,
while after a 5xx the request may be tried again under the same key. Answers given before the view starts (401,
403 of the role, 429, a bad key) are not kept. Sign-in (`POST /auth/tokens/`) has no user to key by and its answer
holds a token that is stored only as a hash: a key sent to it is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions, status

from .tasks import task

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_MAX = 255
KEPT_HEADERS = ("Content-Type", "Location", "ETag")

logger = logging.getLogger(__name__)


class KeyInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still running; retry when it has answered."
    default_code = "idempotency_key_in_use"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = ("This Idempotency-Key was already used with another request (method, path or body); "
                      "use a new key for a new request.")
    default_code = "idempotency_key_reused"


class Replay(Exception):
    """Not an error: the way out of the view with the kept answer."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("replayed")
        self.response = response


def _canonical(value: Any) -> Any:
    """The parsed body in a form that hashes the same however it was sent (key order, multipart boundary)."""
    if hasattr(value, "lists"):  # a QueryDict: form fields and files
        return sorted((name, [_canonical(item) for item in items]) for name, items in value.lists())
    if hasattr(value, "chunks"):  # an uploaded file: its name and content
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "sha256": digest.hexdigest()}
    return value


def fingerprint(request: Any) -> str:
    body: Any = _canonical(request.data)
    if hasattr(request, "FILES") and request.FILES and not hasattr(request.data, "lists"):
        body = [body, _canonical(request.FILES)]
    text = json.dumps([request.method, request.get_full_path(), body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_id(user_id: Any, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()[:8], "big", signed=True)


@dataclass
class Guard:
    """A POST running under a key it holds the lock of: `finish` keeps its answer and lets the key go."""

    user: Any
    key: str
    fingerprint: str
    lock_id: int

    def finish(self, response: Any) -> None:
        from . import services

        try:
            if response.status_code < 500:
                if hasattr(response, "render"):
                    response.render()
                headers = {name: response[name] for name in KEPT_HEADERS if name in response}
                services.idempotent_response_keep(user=self.user, key=self.key, fingerprint=self.fingerprint,
                                                  status=response.status_code, body=bytes(response.content),
                                                  headers=headers)
        except DatabaseError:
            # The work is done and answered: a lost copy of the answer only means a retry runs it again.
            logger.warning("The answer to a request with Idempotency-Key was not kept", exc_info=True)
        finally:
            _unlock(self.lock_id)


def _unlock(lock_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
    except DatabaseError:
        pass  # the connection is gone, and the lock with it


def release(guard: Guard) -> None:
    """Let the key go without keeping an answer (the request ended in an error nothing answered)."""
    _unlock(guard.lock_id)


def key_of(request: Any) -> str | None:
    """The request's key; None without the header. An empty or overlong key, or one not in printable ASCII, is
    a 400 on the header."""
    if HEADER not in request.headers:
        return None
    key = request.headers[HEADER].strip()
    if not key or len(key) > KEY_MAX or not key.isascii() or not key.isprintable():
        raise exceptions.ValidationError(
            {HEADER: [f"Give 1 to {KEY_MAX} printable ASCII characters (a UUID is a good key)."]})
    return key


def begin(request: Any, key: str) -> Guard:
    """Take the key for this request, or end it here: the kept answer (Replay), 422 for another request under the
    key, 409 while the first request with the key still runs."""
    from .models import IdempotentResponse

    user = request.user
    digest = fingerprint(request)
    lock_id = _lock_id(user.pk, key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
        if not cursor.fetchone()[0]:
            raise KeyInUse()
    try:
        since = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS)
        kept = IdempotentResponse.objects.filter(user=user, key=key, created_at__gte=since).first()
    except BaseException:
        _unlock(lock_id)
        raise
    if kept is None:
        return Guard(user=user, key=key, fingerprint=digest, lock_id=lock_id)
    _unlock(lock_id)
    if kept.fingerprint != digest:
        raise KeyReused()
    raise Replay(replayed(kept))


def replayed(kept: Any) -> HttpResponse:
    response = HttpResponse(bytes(kept.body), status=kept.status,
                            content_type=kept.headers.get("Content-Type", "application/json"))
    for name in ("Location", "ETag"):
        if name in kept.headers:
            response[name] = kept.headers[name]
    response[REPLAYED] = "true"
    return response


@task("core.idempotency.purge", acks_late=True, retry=False, soft_time_limit=120, time_limit=180)
def purge() -> int:
    """Forget the answers older than IDEMPOTENCY_KEEP_HOURS (beat runs this every IDEMPOTENCY_PURGE_SECONDS;
    running it twice is harmless)."""
    from . import services

    return services.idempotent_responses_purge(
        before=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS))
