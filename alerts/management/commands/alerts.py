"""`python manage.py alerts [--agency CODE] [--sync]`: a full pass of the red-flag rules over an agency's shipments,
persons and organisations (every agency's without --agency), queued for the workers or, with --sync, run here.
Idempotent: a pass settles the same alerts however often it runs (one per rule and subject; a user's dismissal
stands), and a queued pass of an agency that has one queued or running already reports that one instead."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Agency
from alerts.models import AlertRun, RunStatus


class Command(BaseCommand):
    help = "Evaluate the red-flag rules over an agency's records in full (every agency's without --agency)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agency", default=None, help="The agency's code (default: every agency)")
        parser.add_argument("--sync", action="store_true", help="Run here instead of in the workers")

    def handle(self, *args: Any, **opts: Any) -> None:
        from alerts.services import run_create

        agencies = Agency.objects.filter(archived=False).order_by("code")
        if opts["agency"] is not None:
            agencies = Agency.objects.filter(code=opts["agency"])
        if not agencies.exists():
            raise CommandError(f"No agency with code {opts['agency']!r}." if opts["agency"] is not None
                               else "There is no agency to evaluate.")
        failed = []
        for agency in agencies:
            # a run left unfinished longer than its parts could take one after another is not waited for
            recent = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT * settings.ALERT_RUN_PARTS)
            pending = AlertRun.objects.filter(agency=agency, status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
                                              created_at__gte=recent)
            current = pending.order_by("-created_at").first()
            if current is not None and not opts["sync"]:
                self.stdout.write(f"{agency.code}: alerts run {current.pk} is {current.status} already")
                continue
            started = time.monotonic()
            try:
                run = run_create(agency=agency, sync=opts["sync"])
            except Exception as exc:  # the run is marked failed with its error; the other agencies go on
                failed.append(f"{agency.code}: {exc}")
                continue
            if not opts["sync"]:
                self.stdout.write(f"{agency.code}: queued alerts run {run.pk} ({settings.ALERT_RUN_PARTS} parts at "
                                  "most)")
                continue
            counts = ", ".join(f"{name} {n}" for name, n in sorted(run.counts.items()))
            self.stdout.write(f"{agency.code}: {run.status} alerts run {run.pk}: {counts or 'nothing to evaluate'}; "
                              f"parts {len(run.done_parts)}/{run.parts}, {time.monotonic() - started:.1f} s")
        if failed:
            raise CommandError("The alerts pass failed: " + "; ".join(failed))
