from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Agency, User
from imports.models import ImportKind, ImportMode, ImportStatus


class Command(BaseCommand):
    help = "Import a file of persons, organisations, links, shipments or FtM entities into an agency."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path")
        parser.add_argument("--kind", required=True, choices=ImportKind.values)
        parser.add_argument("--agency", required=True, help="The agency's code")
        parser.add_argument("--mode", default=ImportMode.PARTIAL, choices=ImportMode.values)
        parser.add_argument("--user", default=None, help="Username recorded as the importer")
        parser.add_argument("--source", default="", help="Source label for rows without a source column")
        parser.add_argument("--sync", action="store_true", help="Run here instead of in a worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        from imports.services import job_create, run_job

        path = Path(opts["path"])
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        agency = Agency.objects.filter(code=opts["agency"]).first()
        if agency is None:
            raise CommandError(f"No agency with code {opts['agency']!r}.")
        user = None
        if opts["user"]:
            user = User.objects.filter(username=opts["user"], agency=agency).first()
            if user is None:
                raise CommandError(f"No user {opts['user']!r} in agency {agency.code}.")
        with path.open("rb") as handle:
            job = job_create(agency=agency, actor=user, upload=File(handle, name=path.name), kind=opts["kind"],
                             mode=opts["mode"], source=opts["source"], run=not opts["sync"])
        if not opts["sync"]:
            self.stdout.write(f"queued {job.pk}")
            return
        job = run_job(job.pk)
        self.stdout.write(f"{job.status} {job.pk}: total {job.total_rows}, created {job.created}, "
                          f"updated {job.updated}, unchanged {job.unchanged}, failed {job.failed_rows}")
        if job.error:
            self.stdout.write(job.error)
        if job.status == ImportStatus.FAILED:
            raise CommandError(f"The import failed: {job.error}")
