"""`python manage.py xref [--agency CODE] [--sync]`: a full cross-referencing pass over an agency's records (every
agency's without --agency), queued for the workers or, with --sync, run here. Idempotent: a pass gives the same
matches however often it runs (decisions kept), and a queued pass of an agency that has one queued or running
already reports that one instead of adding another."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Agency
from xref.models import RunStatus, XrefRun


class Command(BaseCommand):
    help = "Cross-reference an agency's persons and organisations in full (every agency's without --agency)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agency", default=None, help="The agency's code (default: every agency)")
        parser.add_argument("--sync", action="store_true", help="Run here instead of in the workers")

    def handle(self, *args: Any, **opts: Any) -> None:
        from xref.services import run_create

        code = opts["agency"]
        if code is not None:
            agencies = list(Agency.objects.filter(code=code))
            if not agencies:
                raise CommandError(f"No agency with code {code!r}.")
        else:
            agencies = list(Agency.objects.filter(archived=False).order_by("code"))
            if not agencies:
                raise CommandError("There is no agency to cross-reference.")
        failed = []
        for agency in agencies:
            if not opts["sync"]:
                current = _unfinished(agency)
                if current is not None:
                    self.stdout.write(f"{agency.code}: run {current.pk} is {current.status} already")
                    continue
                run = run_create(agency=agency)
                self.stdout.write(f"{agency.code}: queued {run.pk}")
                continue
            started = time.monotonic()
            try:
                run = run_create(agency=agency, sync=True)
            except Exception:  # the run is marked failed with its error; the other agencies go on
                failed_run = XrefRun.objects.filter(agency=agency).order_by("-created_at").first()
                if failed_run is None:
                    raise
                run = failed_run
            self.stdout.write(f"{agency.code}: {run.status} {run.pk}: candidates {run.candidates}, "
                              f"matches {run.matches}, parts {run.parts_done}/{run.parts}, "
                              f"{time.monotonic() - started:.1f} s")
            if run.status != RunStatus.SUCCEEDED:
                failed.append(f"{agency.code}: {run.error}")
        if failed:
            raise CommandError("Cross-referencing failed: " + "; ".join(failed))


def _unfinished(agency: Agency) -> XrefRun | None:
    """The agency's whole-agency run that is queued or running and not older than a run's time limit."""
    recent = timezone.now() - timedelta(seconds=settings.XREF_RUN_TIME_LIMIT)
    return (XrefRun.objects.filter(agency=agency, case__isnull=True, created_at__gte=recent,
                                   status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .order_by("-created_at").first())
