"""Imports of real published files from ../shared/data (see its README.md)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pycountry
import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from entities.models import Entity
from imports.models import ImportJob
from imports.services import run_job


def _shared_data() -> Path:
    """The shared data folder: SHARED_DATA_DIR if set, else `shared/data` beside this checkout, else beside the
    checkout this one was cloned from (a clone made elsewhere, as CI makes one). A missing file fails the test."""
    root = Path(settings.BASE_DIR)
    candidates = [Path(os.environ["SHARED_DATA_DIR"])] if os.environ.get("SHARED_DATA_DIR") else []
    candidates.append(root.parent / "shared" / "data")
    origin = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"],  # noqa: S607
                            capture_output=True, text=True, check=False).stdout.strip()
    if origin and "://" not in origin and not origin.startswith("git@"):
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED = _shared_data()
OFAC = SHARED / "ofac"
COUNTRY_FIXES = {"Burma": "MM", "Korea, North": "KP", "Korea, South": "KR", "Russia": "RU", "Iran": "IR",
                 "Syria": "SY", "Venezuela": "VE", "Bolivia": "BO", "Tanzania": "TZ", "Vietnam": "VN",
                 "Laos": "LA", "Moldova": "MD", "Taiwan": "TW", "Congo, Democratic Republic of the": "CD"}

pytestmark = pytest.mark.django_db


def _blank(value: str) -> str:
    value = value.strip()
    return "" if value == "-0-" else value


def _country(name: str) -> str:
    if not name:
        return ""
    if name in COUNTRY_FIXES:
        return COUNTRY_FIXES[name]
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        return ""


def ofac_rows() -> tuple[list[dict], list[dict]]:
    """The legacy SDN CSVs (sdn + alt + add) as persons and organizations rows: aliases as names."""
    aliases: dict[str, list[str]] = defaultdict(list)
    with (OFAC / "ofac_alt.csv").open(encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 4 and _blank(row[3]):
                aliases[row[0].strip()].append(_blank(row[3]))
    addresses: dict[str, list[dict]] = defaultdict(list)
    with (OFAC / "ofac_add.csv").open(encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 5:
                text = ", ".join(p for p in (_blank(row[2]), _blank(row[3])) if p)
                country = _blank(row[4])
                if text or country:
                    addresses[row[0].strip()].append({"text": text or country, "country": _country(country)})
    persons: list[dict[str, Any]] = []
    organizations: list[dict[str, Any]] = []
    with (OFAC / "ofac_sdn.csv").open(encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3 or not row[0].strip():
                continue
            number = row[0].strip()
            item = {"source_id": number, "name": _blank(row[1]), "names": aliases.get(number, [])[:100],
                    "addresses": addresses.get(number, [])[:100], "notes": _blank(row[-1])[:2000]}
            (persons if _blank(row[2]).lower() == "individual" else organizations).append(item)
    return persons, organizations


def _job(agency, kind: str, rows: list[dict]) -> ImportJob:
    job = ImportJob(agency=agency, kind=kind, source="ofac-sdn")
    job.file.save(f"{kind}.jsonl", ContentFile("\n".join(json.dumps(r) for r in rows).encode()), save=False)
    job.save()
    return job


def test_ofac_sdn_list_as_persons_and_organisations(world):
    persons, organizations = ofac_rows()
    assert len(persons) + len(organizations) >= 9043  # the README counts 9,043 entries
    for kind, rows in (("persons", persons), ("organizations", organizations)):
        job = run_job(_job(world.a, kind, rows).pk)
        assert job.status == "succeeded", job.error
        assert job.total_rows == len(rows)
        assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
        assert job.failed_rows <= len(rows) // 100, list(job.errors.values_list("row", "field", "message")[:10])
    assert Entity.objects.filter(type="person", source="ofac-sdn").count() >= len(persons) * 0.99
    bank = Entity.objects.get(source="ofac-sdn", source_id="306")
    assert bank.type == "organization" and "NATIONAL BANK OF CUBA" in bank.names
    assert bank.addresses[0]["country"] == "CH"
    again = run_job(_job(world.a, "organizations", organizations).pk)
    assert again.created == 0 and again.updated == 0


FTM = SHARED / "ftm" / "donations.ftm.jsonl"


def _ftm_job(agency, content: bytes, mode: str = "partial") -> ImportJob:
    job = ImportJob(agency=agency, kind="ftm", mode=mode, source="donations")
    job.file.save("donations.ftm.jsonl", ContentFile(content), save=False)
    job.save()
    return job


def test_ftm_donations_file(world):
    from entities.models import Link

    content = FTM.read_bytes()
    dry = run_job(_ftm_job(world.a, content, mode="dry_run").pk)
    assert dry.status == "succeeded", dry.error
    assert not Entity.objects.exists() and not Link.objects.exists()
    job = run_job(_ftm_job(world.a, content).pk)
    assert job.status == "succeeded", job.error
    assert job.total_rows == 474, job.failed_rows
    assert job.failed_rows <= 5, list(job.errors.values_list("row", "field", "message")[:10])
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
    assert (dry.created, dry.failed_rows) == (job.created, job.failed_rows)
    assert Entity.objects.filter(source="donations", type="person").count() == 22
    assert Entity.objects.filter(source="donations", type="organization").count() == 73
    assert Link.objects.filter(kind="financing", currency="EUR").count() + job.failed_rows >= 290
    with_address = Entity.objects.get(source_id="f9c295f21b233ac878fbac4d271bb6fd13d7952a")
    assert with_address.addresses == [{"text": "Schillerstraße 19, 76135 Karlsruhe", "country": "DE"}]
    # every entity and link written has its create event under the job's request id, and the chain holds
    from audit.models import AuditEvent
    from audit.services import verify_chain

    events = AuditEvent.objects.filter(request_id=str(job.pk), action="create")
    assert events.filter(object_type__in=["person", "organization"]).count() == Entity.objects.filter(
        source="donations").count()  # typed as the API types them
    assert events.filter(object_type="link").count() == Link.objects.filter(provenance_source="donations").count()
    assert verify_chain(str(world.a.pk)).ok
    again = run_job(_ftm_job(world.a, content).pk)
    assert (again.created, again.updated) == (0, 0)
    assert again.unchanged + again.failed_rows == 474
