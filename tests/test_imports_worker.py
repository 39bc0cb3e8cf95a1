"""An import job run by a real Celery worker process against real Redis."""

from __future__ import annotations

import time

import pytest
from django.core.files.base import ContentFile

from entities.models import Entity
from imports.models import ImportJob
from imports.tasks import run

from .test_imports import BAD, GOOD, persons_csv
from .worker import celery_worker


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_job_from_queued_to_succeeded(world):
    job = ImportJob(agency=world.a, kind="persons", source="worker")
    job.file.save("p.csv", ContentFile(persons_csv(GOOD + BAD)), save=False)
    job.save()
    assert job.status == "queued"
    with celery_worker() as queue:
        run.apply_async(args=(str(job.pk),), queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        # A second delivery of the same job (acks_late) finds it finished and changes nothing.
        run.apply_async(args=(str(job.pk),), queue=queue)
        time.sleep(1)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.processed_rows, job.created, job.failed_rows) == (5, 5, 3, 2)
    assert job.started_at is not None and job.finished_at is not None
    assert job.started_at <= job.finished_at
    assert Entity.objects.filter(source="worker").count() == 3
