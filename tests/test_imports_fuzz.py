"""Hypothesis-generated files never crash the importer nor lose a row from the accounting, for every kind."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from imports.models import ImportJob
from imports.services import run_job

COLUMNS = {
    "persons": ["source_id", "name", "names", "birth_date", "nationalities", "phones", "emails", "identifiers",
                "addresses", "address_country", "gender"],
    "organizations": ["source_id", "name", "jurisdiction", "registration_number", "kind", "incorporated_on",
                      "website"],
    "shipments": ["source_id", "reference", "hs_code", "quantity_kg", "declared_value", "currency",
                  "origin_country", "destination_country", "transit_countries", "consignor", "consignor_country",
                  "consignee", "consignee_registration_number", "status"],
    "links": ["source_id", "kind", "subtype", "source", "target", "share_pct", "start_date", "end_date"],
}
cell = st.one_of(st.text(max_size=30), st.sampled_from([
    "", "CN", "1980-01-01", "a@b.co", "+8613800138000", "passport:E1234567:CN", "x;y;;z", ":::", "-0-", "8110",
    "12.5", "-3", "1e9", "USD", "VN;TH", "Antimony Trading Co., Ltd.", "91350100M000100Y43", "family", "p1", "p2",
    "person:00000000-0000-0000-0000-000000000000", "seized", "company",
]))
row = st.lists(cell, min_size=0, max_size=16)


def to_csv(rows: list[list[str]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(COLUMNS))
@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data(), mode=st.sampled_from(["partial", "atomic", "dry_run"]))
def test_generated_csvs_are_accounted_for(world, kind, data, mode):
    from . import factories

    if kind == "links" and not world.__dict__.get("linked"):
        world.linked = [factories.person(world.a, "P One", source="fuzz", source_id=i) for i in ("p1", "p2")]
    # mostly files with the kind's required columns (their rows reach the checks), sometimes any header
    required = {"persons": ["name"], "organizations": ["name"], "shipments": ["reference"],
                "links": ["kind", "source", "target"]}[kind]
    others = data.draw(st.lists(st.sampled_from(COLUMNS[kind]), min_size=1, unique=True))
    columns = others if data.draw(st.integers(0, 4)) == 0 else list(dict.fromkeys(required + others))
    rows = data.draw(st.lists(row, max_size=12))
    try:
        content = to_csv(rows, columns)
    except UnicodeEncodeError:
        content = b"\xff\xfe" + b"junk"
    job = ImportJob(agency=world.a, kind=kind, mode=mode, source="fuzz")
    job.file.save("f.csv", ContentFile(content), save=False)
    job.save()
    job = run_job(job.pk)
    assert job.status in ("succeeded", "failed")
    event(f"{job.status}, {'some' if job.created + job.updated else 'no'} rows written or counted to write")
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
    if job.status == "failed" and mode != "atomic":
        assert job.error and job.created == 0 and job.total_rows == 0
