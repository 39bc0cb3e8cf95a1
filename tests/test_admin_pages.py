"""The admin's own pages: the site named for the service, an import job's page with its progress and first errors,
and all of its errors as CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from . import factories

ERRORS = 20_000
PAGE_QUERIES = 20  # the job's page as an investigator sees it, whatever its number of errors


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_the_site_is_named_for_the_service(world):
    client = factories.admin_client(factories.user(world.a, "investigator", world.a1))
    page = client.get("/admin/").content.decode()
    assert "<title>Cases, records and imports | Export-control enforcement</title>" in page
    assert '<div id="site-name"><a href="/admin/">Export-control enforcement — case management</a></div>' in page
    assert "Django administration" not in page
    assert "<h1>Cases, records and imports</h1>" in page


def test_an_import_job_with_twenty_thousand_errors_shows_the_first_hundred_and_streams_all(world, media):
    clerk = factories.user(world.a, "investigator", world.a1)
    job = factories.import_job(world.a, clerk, good_rows=2, bad_rows=ERRORS)
    assert (job.status, job.total_rows, job.failed_rows, job.created) == ("succeeded", ERRORS + 2, ERRORS, 2)
    client = factories.admin_client(clerk)
    url = f"/admin/imports/importjob/{job.pk}/change/"
    client.get(url)  # warm-up
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
    assert page.status_code == 200
    assert len(captured) == PAGE_QUERIES
    assert len(page.content) < 200 * 1024
    body = page.content.decode()
    table = re.search(r'<table class="import-errors">.*?<tbody>(.*?)</tbody>', body, re.S)
    assert table is not None
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>", table.group(1))
    assert len(rows) == 100
    assert [int(row) for row, _ in rows] == list(range(3, 103))  # by row: the two good rows come first
    assert {field for _, field in rows} == {"birth_date"}
    assert f'<progress value="{ERRORS + 2}" max="{ERRORS + 2}"' in body
    assert f"The first 100 of {ERRORS} errors" in body
    link = f"/admin/imports/importjob/{job.pk}/errors.csv"
    assert f'href="{link}"' in body

    download = client.get(link)
    assert download.status_code == 200 and download.streaming
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    content = b"".join(download.streaming_content)  # type: ignore[attr-defined]  # a streamed response
    lines = list(csv.reader(io.StringIO(content.decode())))
    assert lines[0] == ["row", "field", "message", "values"]
    assert len(lines) == ERRORS + 1
    assert [int(line[0]) for line in lines[1:]] == list(range(3, ERRORS + 3))


def test_an_import_jobs_errors_are_for_those_who_may_see_the_job(world, media):
    job = factories.import_job(world.a, factories.user(world.a, "investigator", world.a1), bad_rows=3)
    link = f"/admin/imports/importjob/{job.pk}/errors.csv"
    other_agency = factories.admin_client(factories.user(world.b, "supervisor", world.b1))
    assert other_agency.get(link).status_code == 404
    page = other_agency.get(f"/admin/imports/importjob/{job.pk}/change/", follow=True).content.decode()
    assert "not-a-date" not in page
    root = factories.admin_client(factories.user(None, "agency_admin", is_superuser=True))
    download = root.get(link)
    assert download.status_code == 200
    content = b"".join(download.streaming_content)  # type: ignore[attr-defined]  # a streamed response
    assert len(content.decode().splitlines()) == 4
    assert factories.admin_client(factories.user(world.a, "viewer", world.a1)).get(link).status_code == 200
