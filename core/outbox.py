"""Work that must follow a commit: the transactional outbox.

A service calls `enqueue` inside its write's transaction (or `records_changed` after a write of records). The
call writes a row (core.OutboxMessage) in that transaction, so the work is committed with the write or not at
all, and the row is sent to the broker right after the commit. If the broker is away then, the write still
succeeds: the row stays, and beat's `core.outbox.dispatch` (every OUTBOX_DISPATCH_SECONDS) sends it when the
broker is back, each row after OUTBOX_RETRY_SECONDS doubling up to OUTBOX_RETRY_MAX_SECONDS. Rows are taken
with `SELECT … FOR UPDATE SKIP LOCKED`, so two dispatchers (or a dispatcher and a commit) never send one row
at the same time. A row can still be sent twice (the broker took it but the mark did not commit): every task
named here must be idempotent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from .tasks import queue_name, task

logger = logging.getLogger(__name__)

# The task that cross-references records after they change (`handle_records_changed`, below).
RECORDS_CHANGED = "xref.records_changed"
DISPATCH = "core.outbox.dispatch"

_INSERT = """
    INSERT INTO core_outboxmessage (task, kwargs, key, queue, revision, created_at, attempts, next_attempt_at,
                                    last_error)
    VALUES (%s, %s::jsonb, %s, %s, 1, now(), 0, now(), '')
"""
# While a row of the same task and key is unsent, the new work is that row's (its kwargs are the latest).
_COALESCE = """
    ON CONFLICT (task, key) WHERE (sent_at IS NULL AND NOT (key = ''))
    DO UPDATE SET kwargs = EXCLUDED.kwargs, queue = EXCLUDED.queue, revision = core_outboxmessage.revision + 1,
                  next_attempt_at = now()
"""


def enqueue(task: str, *, kwargs: dict[str, Any] | None = None, key: str = "", queue: str | None = None) -> int:
    """Leave `task(**kwargs)` to run after the current transaction commits. `key` coalesces: rows with the same
    task and key that are not yet sent become one piece of work. `queue` (one of TASK_QUEUES) overrides the
    task's route. Outside a transaction the row is written in one of its own and sent at once. Returns the
    row's id."""
    body = json.dumps(kwargs or {}, cls=DjangoJSONEncoder)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_INSERT + (_COALESCE if key else "") + " RETURNING id", [task, body, key, queue or ""])
        (pk,) = cursor.fetchone()
        transaction.on_commit(lambda: _send_after_commit(pk))
    return int(pk)


# The records_changed row each model's writes of the current transaction add their ids to (by thread, as
# Django's connections are): many single writes in one transaction (a loader, a bulk admin action) become one
# task, not one each. A row rolled back with a savepoint, or sent meanwhile, is simply not found again.
_open_rows = threading.local()
RECORDS_PER_ROW = 5000
_APPEND = """
    UPDATE core_outboxmessage SET key = '', revision = revision + 1, kwargs = jsonb_set(kwargs, '{ids}', (
        kwargs -> 'ids') || (SELECT coalesce(jsonb_agg(new.id ORDER BY new.n), '[]'::jsonb)
                             FROM jsonb_array_elements_text(%s::jsonb) WITH ORDINALITY AS new(id, n)
                             WHERE NOT (kwargs -> 'ids') ? new.id))
    WHERE id = %s AND task = %s AND sent_at IS NULL AND kwargs ->> 'model' = %s
          AND jsonb_array_length(kwargs -> 'ids') + %s <= %s
    RETURNING id
"""


def records_changed(model_label: str, ids: Iterable[Any]) -> None:
    """After a write of one or many records of `model_label` (e.g. 'entities.person'): one outbox row for all,
    and for all the other writes of that model in the same transaction (up to RECORDS_PER_ROW records a row)."""
    ids = list(dict.fromkeys(str(pk) for pk in ids))
    if not ids:
        return
    rows: dict[str, int] = getattr(_open_rows, "rows", None) or {}
    _open_rows.rows = rows
    if connection.in_atomic_block and model_label in rows:
        with connection.cursor() as cursor:
            cursor.execute(_APPEND, [json.dumps(ids), rows[model_label], RECORDS_CHANGED, model_label, len(ids),
                                     RECORDS_PER_ROW])
            if cursor.fetchone() is not None:
                return
    pk = enqueue(RECORDS_CHANGED, kwargs={"model": model_label, "ids": ids},
                 key=f"{model_label}:{ids[0]}" if len(ids) == 1 else "")
    if connection.in_atomic_block:
        rows[model_label] = pk
        # The row is this transaction's: the next transaction's writes start their own (rather than first trying
        # to add to this one, sent by then).
        transaction.on_commit(functools.partial(_forget_open_row, model_label, pk))
    else:
        rows.pop(model_label, None)


def _forget_open_row(model_label: str, pk: int) -> None:
    rows: dict[str, int] = getattr(_open_rows, "rows", None) or {}
    if rows.get(model_label) == pk:
        del rows[model_label]


# --- sending ---------------------------------------------------------------------------------------------------

# After a refused send, the process's commits leave their rows to the dispatcher for OUTBOX_RETRY_SECONDS instead
# of each waiting for the broker's connect timeout. (Per broker URL, when it refused.)
_broker_down_until: dict[str, float] = {}


def _broker_recently_failed() -> bool:
    return time.monotonic() < _broker_down_until.get(settings.CELERY_BROKER_URL, 0.0)


def _send_after_commit(pk: int) -> None:
    from config.celery import app

    eager = app.conf.task_always_eager
    if _broker_recently_failed() and not eager:
        _defer([pk], "the broker was unreachable a moment ago")
        return
    try:
        if not eager:
            _send_one(app, pk)
            return
        with transaction.atomic():
            _mark_lazily()
            rows = list(_unsent().filter(pk=pk))
            if rows:  # else sent already, or a dispatcher holds it
                send(rows)
    except Exception:  # the write has committed: whatever happens here, the row is the dispatcher's
        logger.exception("outbox: row %s was not sent after commit; the dispatcher will", pk)


# The row of a commit, taken as `send` takes rows (locked, skipped when a dispatcher holds it or it is sent) and
# marked sent in the same statement; the mark commits only once the broker took the message (else it is rolled
# back, and the row deferred). `synchronous_commit` off for this transaction, as `_mark_lazily`.
_CLAIM = """
    UPDATE core_outboxmessage SET sent_at = now(), last_error = ''
    WHERE id = (SELECT id FROM core_outboxmessage WHERE id = %s AND sent_at IS NULL FOR UPDATE SKIP LOCKED)
    RETURNING task, kwargs, queue, set_config('synchronous_commit', 'off', true)
"""


def _send_one(app: Any, pk: int) -> None:
    """`send` of one row after its commit, in three statements (BEGIN, the claim, COMMIT) rather than five: the
    request that committed it waits for them."""
    refused: Exception | None = None
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, [pk])
            claimed = cursor.fetchone()
        if claimed is None:  # sent already, or a dispatcher holds it
            return
        name, kwargs, queue = claimed[:3]
        try:
            with _producer(app) as producer:
                producer.connection.ensure_connection(max_retries=0)  # refused at once, not after retries
                options: dict[str, Any] = {"queue": queue_name(queue)} if queue else {}  # else routed
                app.send_task(name, kwargs=json.loads(kwargs) if isinstance(kwargs, str) else kwargs,
                              producer=producer, retry=False, **options)
        except Exception as exc:
            refused = exc
            transaction.set_rollback(True)  # the row stays unsent
    if refused is None:
        _broker_down_until.pop(settings.CELERY_BROKER_URL, None)
        return
    _broker_down_until[settings.CELERY_BROKER_URL] = time.monotonic() + float(settings.OUTBOX_RETRY_SECONDS)
    logger.warning("outbox: broker refused row %s (%s); it waits for the dispatcher", pk, refused)
    _defer([pk], f"{refused.__class__.__name__}: {refused}")


def _mark_lazily() -> None:
    """A "sent" mark lost in a crash only sends its row again (tasks are idempotent): the transaction that writes
    it need not wait for its WAL to be flushed (this transaction only)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def _unsent() -> Any:
    from .models import OutboxMessage

    return OutboxMessage.objects.select_for_update(skip_locked=True).filter(sent_at__isnull=True)


def _delay(attempts: int) -> timedelta:
    seconds = float(settings.OUTBOX_RETRY_SECONDS) * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, float(settings.OUTBOX_RETRY_MAX_SECONDS)))


def _defer(pks: Sequence[int], error: str) -> None:
    from .models import OutboxMessage

    now = timezone.now()
    for row in OutboxMessage.objects.filter(pk__in=pks, sent_at__isnull=True).only("pk", "attempts"):
        OutboxMessage.objects.filter(pk=row.pk).update(
            attempts=row.attempts + 1, next_attempt_at=now + _delay(row.attempts + 1), last_error=error[:2000])


@contextlib.contextmanager
def _producer(app: Any) -> Iterator[Any]:
    """A producer on the broker of CELERY_BROKER_URL: one of the app's pool (connections and declared queues
    are reused) when that is the app's broker, else on a connection of its own."""
    if app.conf.broker_url == settings.CELERY_BROKER_URL:
        with app.producer_or_acquire() as producer:
            yield producer
    else:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            yield app.amqp.Producer(conn, auto_declare=False)


def send(rows: Sequence[Any]) -> int:
    """Publish locked unsent rows in order and mark those the broker took; at the first refusal the rest wait
    for their next attempt. Returns how many were sent. (Eager mode, in tests: each task runs here.)"""
    from config.celery import app

    from .models import OutboxMessage

    sent: list[int] = []
    try:
        if app.conf.task_always_eager:
            # As .delay() would, eagerly; after this transaction, so that a task does not run under its lock.
            if any(row.task not in app.tasks for row in rows):
                app.loader.import_default_modules()  # the apps' tasks modules (a worker imports them at start)
            for row in rows:
                transaction.on_commit(functools.partial(app.tasks[row.task].apply, kwargs=row.kwargs))
                sent.append(row.pk)
        else:
            with _producer(app) as producer:
                producer.connection.ensure_connection(max_retries=0)  # refused at once, not after retries
                for row in rows:
                    options: dict[str, Any] = {"queue": queue_name(row.queue)} if row.queue else {}  # else routed
                    app.send_task(row.task, kwargs=row.kwargs, producer=producer, retry=False, **options)
                    sent.append(row.pk)
    except Exception as exc:
        _broker_down_until[settings.CELERY_BROKER_URL] = time.monotonic() + float(settings.OUTBOX_RETRY_SECONDS)
        left = [row.pk for row in rows if row.pk not in set(sent)]
        logger.warning("outbox: broker refused %d row(s) (%s); they wait for the dispatcher", len(left), exc)
        _defer(left, f"{exc.__class__.__name__}: {exc}")
    else:
        _broker_down_until.pop(settings.CELERY_BROKER_URL, None)
    if sent:
        OutboxMessage.objects.filter(pk__in=sent).update(sent_at=timezone.now(), last_error="")
    return len(sent)


@task(DISPATCH, acks_late=False, retry=False, soft_time_limit=50, time_limit=60)
def dispatch() -> int:
    """Beat's periodic sender: every unsent row whose next attempt is due, a batch at a time; then forget rows
    sent more than OUTBOX_KEEP_SENT_HOURS ago. Two dispatchers at once share the rows, never send one twice."""
    from .models import OutboxMessage

    total = 0
    while True:
        with transaction.atomic():
            _mark_lazily()
            rows = list(_unsent().filter(next_attempt_at__lte=timezone.now())
                        .order_by("next_attempt_at", "id")[: settings.OUTBOX_BATCH])
            sent = send(rows) if rows else 0
        total += sent
        if sent < len(rows) or len(rows) < settings.OUTBOX_BATCH:
            break
    kept = timezone.now() - timedelta(hours=float(settings.OUTBOX_KEEP_SENT_HOURS))
    OutboxMessage.objects.filter(sent_at__lt=kept).delete()
    return total


def backlog() -> dict[str, Any]:
    """What /readyz reports: rows not sent yet, and how long the oldest has waited."""
    from django.db.models import Count, Min

    from .models import OutboxMessage

    found = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    oldest = found["oldest"]
    return {"unsent": found["n"],
            "oldest_seconds": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None}


# --- the records_changed task ----------------------------------------------------------------------------------

_HANDLE = """
    INSERT INTO core_handledversion (model, record_id, version, handled_at)
    SELECT %s, k.id, k.version, now() FROM unnest(%s::text[], %s::int[]) AS k(id, version)
    ON CONFLICT (model, record_id) DO UPDATE SET version = EXCLUDED.version, handled_at = EXCLUDED.handled_at
    WHERE core_handledversion.version < EXCLUDED.version
    RETURNING record_id
"""


@task(RECORDS_CHANGED, acks_late=True)
def handle_records_changed(model: str, ids: list[str]) -> int:
    """Records of `model` were written: move each one's handled version up to its current version, once.
    Idempotent: a second delivery (or an older one) finds every version handled and does nothing. Returns how
    many records had a version not handled before. Those records are cross-referenced (`_cross_reference`), then
    the red-flag rules their write touched are evaluated (`_evaluate_alerts`, which sees the matches just written),
    XREF_BATCH at a time, each batch in the transaction that marks its versions handled: a failure leaves the
    batch's versions to the next delivery. At the task's soft time limit, the records not yet done are left to a
    new task (through the outbox) when this one got somewhere."""
    versions = list(apps.get_model(model).objects.filter(pk__in=ids).order_by("pk").values_list("pk", "version"))
    done = 0
    for start in range(0, len(versions), settings.XREF_BATCH):
        batch = versions[start:start + settings.XREF_BATCH]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_HANDLE, [model, [str(pk) for pk, _ in batch], [version for _, version in batch]])
                handled = [record_id for (record_id,) in cursor.fetchall()]
                _cross_reference(model, handled)
                _evaluate_alerts(model, handled)
        except SoftTimeLimitExceeded:
            if start == 0:
                raise  # not even one batch in the time: sending the rest again would only repeat this
            rest = [str(pk) for pk, _ in versions[start:]]
            records_changed(model, rest)
            logger.warning("xref: %s records of %s left to a new task at the time limit", len(rest), model)
            return done
        done += len(handled)
    return done


XREF_ENTITY_MODELS = frozenset({"entities.entity", "entities.person", "entities.organization"})
# Records whose write changes the relationship evidence of the entities they name (a link's two ends, a
# shipment's parties): those entities are cross-referenced again.
XREF_EVIDENCE: dict[str, tuple[str, ...]] = {
    "entities.link": ("source_id", "target_id"),
    "shipments.shipment": ("consignor_id", "consignee_id", "notify_party_id", "ordering_party_id"),
}


def _cross_reference(model: str, handled: list[str]) -> None:
    """Persons and organisations are cross-referenced themselves, the entities a link or a shipment names
    again (xref.services.records_changed works in batches of XREF_BATCH)."""
    from xref import services

    if not handled:
        return
    if model in XREF_ENTITY_MODELS:
        services.records_changed(handled)
    elif model in XREF_EVIDENCE:
        named = apps.get_model(model).objects.filter(pk__in=handled).values_list(*XREF_EVIDENCE[model])
        services.records_changed({pk for row in named for pk in row if pk is not None})


def _evaluate_alerts(model: str, handled: list[str]) -> None:
    """The red-flag rules of what these records' write touched (alerts.services.records_changed)."""
    from alerts import services

    if handled:
        services.records_changed(model, handled)
