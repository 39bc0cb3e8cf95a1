"""Task behaviour with a real worker process and real Redis."""

import time

import pytest
from django.core.cache import cache
from django.db import connection

from audit.models import ChainHead
from audit.services import record
from audit.tasks import verification_key, verify_chains

from .worker import celery_worker


def _wait_for(key, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"nothing at {key} after {seconds}s")


@pytest.mark.django_db(transaction=True)
def test_worker_verifies_the_audit_chains(world):
    for i in range(3):
        record(action="update", agency=world.a, object_type="test", object_id=str(i))
    chain = str(world.a.pk)
    cache.delete(verification_key(chain))
    with celery_worker() as queue:
        verify_chains.apply_async(queue=queue)
        result = _wait_for(verification_key(chain))
    assert result["ok"] is True and result["checked"] == ChainHead.objects.get(chain=chain).last_seq

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update_delete")
        cursor.execute("UPDATE audit_auditevent SET actor = 'mallory' WHERE chain = %s AND seq = 2", [chain])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update_delete")
    cache.delete(verification_key(chain))
    with celery_worker() as queue:
        verify_chains.apply_async(queue=queue)
        result = _wait_for(verification_key(chain))
    assert result["ok"] is False and result["first_bad_seq"] == 2


@pytest.mark.django_db(transaction=True)
def test_metrics_count_tasks_run_by_the_worker(world, client):
    def verify_count() -> float:
        for line in client.get("/metrics").content.decode().splitlines():
            if line.startswith('celery_tasks_total{outcome="success",task="audit.verify_chains"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = verify_count()
    record(action="update", agency=world.a, object_type="test", object_id="1")
    cache.delete(verification_key(str(world.a.pk)))
    with celery_worker() as queue:
        verify_chains.apply_async(queue=queue)
        _wait_for(verification_key(str(world.a.pk)))
        deadline = time.monotonic() + 10
        while verify_count() < before + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    # Other workers on the same Redis (a parallel test, a dev server) may count theirs too.
    assert verify_count() >= before + 1
    assert "celery_queue_depth" in client.get("/metrics").content.decode()
