"""The cross-referencing quality bench's data adapters (bench/xref_data.py): the published truth sets become import
files that the real import path takes without a row error, with the truth pairs their clusters give."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.conf import settings

from entities.models import Entity, Link

sys.path.insert(0, str(Path(settings.BASE_DIR) / "bench"))
import xref_data

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not xref_data.available(),
                       reason=f"the shared ER data sets are not at {xref_data.er_dir()} (set SHARED_DATA_DIR)"),
]

# data set: (records imported, clusters in the truth, true pairs among the imported records)
EXPECTED = {"csv_example": (3337, 1162, 6608), "patstat": (2379, 102, 293_785), "senzing": (158, 85, 107)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adapter_imports_every_row_and_gives_the_truth_pairs(name, world, tmp_path):
    data = xref_data.load(name)
    records, clusters, pairs = EXPECTED[name]
    assert (len(data.records), data.clusters, len(data.truth)) == (records, clusters, pairs)
    ids = {r["source_id"] for r in data.records}
    assert len(ids) == records
    assert all(a < b and a in ids and b in ids for a, b in data.truth)

    jobs = xref_data.import_dataset(data, world.a, tmp_path)

    assert xref_data.row_errors(jobs) == []
    assert sum(job.created for job in jobs if job.kind != "links") == records
    stored = set(Entity.objects.filter(agency=world.a).values_list("source_id", flat=True))
    assert stored == ids


def test_senzing_keeps_scripts_identifiers_and_ownership(world, tmp_path):
    data = xref_data.load("senzing")
    assert data.skipped == [("WATCHLIST-1021", "no name (the import requires one)")]

    xref_data.import_dataset(data, world.a, tmp_path)

    by_id = {e.source_id: e for e in Entity.objects.filter(agency=world.a)}
    assert by_id["CUSTOMERS-1069"].name == "王杰"
    assert by_id["CUSTOMERS-1070"].identifiers == [{"scheme": "national_id", "number": "832721", "country": "HK"}]
    assert by_id["CUSTOMERS-1001"].phones == ["+17029191300"]  # 702-919-1300 in the default region, US
    assert by_id["CUSTOMERS-1033"].phones == []  # 321-3212 has no area code: kept in the notes, never guessed
    assert "321-3212" in by_id["CUSTOMERS-1033"].notes
    assert by_id["CUSTOMERS-1034"].emails == ["msentosa@fmail.com"]  # from "Maria Sentosa<msentosa@fmail.com>"
    assert str(by_id["CUSTOMERS-1032"].birth_date) == "1991-08-20"  # 20/8/1991: day first, as it must be
    owner = Link.objects.get(agency=world.a, provenance_id="REFERENCE-2013>REFERENCE-2012")
    assert (owner.kind, owner.source.source_id, owner.target.source_id, owner.share_pct) == \
        ("ownership", "REFERENCE-2013", "REFERENCE-2012", 60)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("702-919-1300", "US", "+17029191300"),
    ("(807) 422-9031", "US", "+18074229031"),
    ("3865286", "US", ""),  # a local number: its area code is not known
    ("0352 6553537", "US", ""),  # an Italian number without +39
    ("+39 0352 6553537", "US", "+3903526553537"),
    ("4936202565", "IN", "+914936202565"),
])
def test_phones_are_e164_or_left_out(raw, region, expected):
    assert xref_data.phone_e164(raw, region) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("12/11/1978", "1978-12-11"), ("20/8/1991", "1991-08-20"), ("3/1/70", "1970-03-01"), ("Mar 1 1970", "1970-03-01"),
    ("24-May-11", "2011-05-24"), ("2/4/31", "1931-02-04"), ("1993-09-14", "1993-09-14"), ("31/31/1990", ""),
])
def test_birth_dates(raw, expected):
    import datetime

    assert xref_data.birth_date(raw, today=datetime.date(2026, 1, 1)) == expected
