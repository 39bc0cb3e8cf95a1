"""Hypothesis-generated files never crash the importer nor lose a row from the accounting."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from imports.models import ImportJob
from imports.services import run_job

COLUMNS = ["source_id", "name", "names", "birth_date", "nationalities", "phones", "emails", "identifiers",
           "addresses", "address_country", "gender"]
cell = st.one_of(st.text(max_size=30), st.sampled_from(["", "CN", "1980-01-01", "a@b.co", "+8613800138000",
                                                        "passport:E1234567:CN", "x;y;;z", ":::", "-0-"]))
row = st.lists(cell, min_size=0, max_size=len(COLUMNS) + 2)


def to_csv(rows: list[list[str]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


@pytest.mark.django_db
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=12), columns=st.lists(st.sampled_from(COLUMNS), min_size=1, unique=True),
       mode=st.sampled_from(["partial", "atomic", "dry_run"]))
def test_generated_csvs_are_accounted_for(world, rows, columns, mode):
    try:
        content = to_csv(rows, columns)
    except UnicodeEncodeError:
        content = b"\xff\xfe" + b"junk"
    job = ImportJob(agency=world.a, kind="persons", mode=mode, source="fuzz")
    job.file.save("f.csv", ContentFile(content), save=False)
    job.save()
    job = run_job(job.pk)
    assert job.status in ("succeeded", "failed")
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
    if job.status == "failed" and mode != "atomic":
        assert job.error and job.created == 0 and job.total_rows == 0
