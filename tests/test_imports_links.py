"""Links files (API.md § Bulk import, kind `links`): ends by `type:id` or by an imported entity's source_id,
the API's link rules per row, upsert by the link's own source_id, every format, the audit trail."""

from __future__ import annotations

import csv
import io
import json

import pytest

from audit.models import AuditEvent
from entities.models import Link
from imports.models import ImportRowError
from imports.services import run_job

from . import factories
from .test_imports import accounted, job_for, xlsx

pytestmark = pytest.mark.django_db

COLUMNS = ["source_id", "kind", "subtype", "source", "target", "share_pct", "start_date", "end_date",
           "description", "confidence"]


def links_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def ring(world):
    """Three persons and a company imported from the registry `reg`, and one entity of another agency."""
    zhang = factories.person(world.a, "Zhang Wei", source="reg", source_id="p1")
    li = factories.person(world.a, "Li Na", source="reg", source_id="p2")
    wang = factories.person(world.a, "Wang Fang")
    company = factories.organization(world.a, "Antimony Trading Co., Ltd.", source="reg", source_id="c1")
    foreign = factories.person(world.b, "Foreign Person", source="reg", source_id="p9")
    return zhang, li, wang, company, foreign


GOOD = [
    {"source_id": "l1", "kind": "family", "subtype": "Spouse", "source": "p1", "target": "p2"},
    {"source_id": "l2", "kind": "ownership", "source": "p1", "target": "c1", "share_pct": "51.5",
     "start_date": "2019-01-01"},
    {"source_id": "l3", "kind": "directorship", "source": "{wang}", "target": "organization:{company}"},
]
BAD = [
    {"source_id": "l4", "kind": "family", "source": "p1", "target": "c1"},  # family joins persons only
    {"source_id": "l5", "kind": "associate", "source": "p1", "target": "nobody"},  # no such source_id
    {"source_id": "l6", "kind": "associate", "source": "p1", "target": "p1"},  # not to itself
    {"source_id": "l7", "kind": "rivalry", "source": "p1", "target": "p2", "share_pct": "120"},  # two bad fields
    {"source_id": "l8", "kind": "associate", "source": "p1", "target": "p9"},  # the other agency's source_id
    {"source_id": "l9", "kind": "associate", "source": "p2", "target": "person:{foreign}"},  # not ours
    {"source_id": "l10", "kind": "ownership", "source": "p1", "target": "c1", "start_date": "2020-01-01",
     "end_date": "2019-01-01"},
]


def rows(ring, template: list[dict]) -> list[dict]:
    _, _, wang, company, foreign = ring
    ids = {"wang": f"person:{wang.pk}", "company": company.pk, "foreign": foreign.pk}
    return [{k: v.format(**ids) for k, v in row.items()} for row in template]


def test_links_by_source_id_and_by_reference_with_every_bad_row_reported(world, ring, investigator):
    zhang, li, wang, company, _ = ring
    job = run_job(job_for(world.a, links_csv(rows(ring, GOOD + BAD)), kind="links", source="reg",
                          user=investigator).pk)
    assert job.status == "succeeded", job.error
    assert accounted(job) and (job.total_rows, job.created, job.failed_rows) == (10, 3, 7)
    spouse = Link.objects.get(provenance_source="reg", provenance_id="l1")
    assert (spouse.source, spouse.target, spouse.kind, spouse.subtype) == (zhang, li, "family", "spouse")
    owner = Link.objects.get(provenance_id="l2")
    assert (owner.source, owner.target, str(owner.share_pct), str(owner.start_date)) == (
        zhang, company, "51.500", "2019-01-01")
    assert Link.objects.get(provenance_id="l3").source == wang
    errors = {(e.row, e.field): e.message for e in ImportRowError.objects.filter(job=job)}
    assert "organisation" in errors[(4, "target")] or "person" in errors[(4, "target")]
    assert "'nobody'" in errors[(5, "target")] and "'reg'" in errors[(5, "target")]
    assert "itself" in errors[(6, "target")]
    assert {(7, "kind"), (7, "share_pct")} <= set(errors)
    assert (8, "target") in errors and (9, "target") in errors
    assert "end" in errors[(10, "end_date")]
    assert Link.objects.count() == 3
    creates = AuditEvent.objects.filter(action="create", object_type="link", request_id=str(job.pk))
    assert creates.count() == 3 and creates.get(object_id=str(spouse.pk)).changes["kind"] == [None, "family"]


def test_a_links_file_again_changes_nothing_and_a_changed_row_updates_its_link(world, ring):
    content = links_csv(rows(ring, GOOD))
    run_job(job_for(world.a, content, kind="links", source="reg").pk)
    again = run_job(job_for(world.a, content, kind="links", source="reg").pk)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = [dict(GOOD[0], subtype="sibling"), *GOOD[1:]]
    third = run_job(job_for(world.a, links_csv(rows(ring, changed)), kind="links", source="reg").pk)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    link = Link.objects.get(provenance_id="l1")
    assert link.subtype == "sibling" and link.version == 2
    update = AuditEvent.objects.get(request_id=str(third.pk), action="update")
    assert update.changes["subtype"] == ["spouse", "sibling"]


def test_links_without_source_id_are_keyed_by_content(world, ring):
    content = links_csv([{k: v for k, v in r.items() if k != "source_id"} for r in rows(ring, GOOD)])
    first = run_job(job_for(world.a, content, kind="links", source="reg").pk)
    second = run_job(job_for(world.a, content, kind="links", source="reg").pk)
    assert (first.created, second.created, second.unchanged) == (3, 0, 3)
    assert Link.objects.count() == 3


def test_links_as_json_lines_json_and_xlsx(world, ring):
    good = rows(ring, GOOD)
    zhang, li, *_ = ring
    as_objects = [dict(good[0], source={"type": "person", "id": str(zhang.pk)},
                       target={"type": "person", "id": str(li.pk)})]
    for label, content, created in [
        ("lines", "\n".join(json.dumps(r) for r in as_objects).encode(), 1),
        ("array", json.dumps(good).encode(), 3),
        ("xlsx", xlsx(COLUMNS, good), 3),
    ]:
        job = run_job(job_for(world.a, content, kind="links", source="reg", name=f"links.{label}").pk)
        assert job.status == "succeeded", (label, job.error)
        assert (job.created, job.failed_rows) == (created, 0), label
        Link.objects.all().delete()


def test_atomic_and_dry_run_links_write_nothing(world, ring):
    content = links_csv(rows(ring, GOOD + BAD[:1]))
    atomic = run_job(job_for(world.a, content, kind="links", source="reg", mode="atomic").pk)
    assert atomic.status == "failed" and atomic.failed_rows == 1
    dry = run_job(job_for(world.a, links_csv(rows(ring, GOOD)), kind="links", source="reg", mode="dry_run").pk)
    assert dry.status == "succeeded" and (dry.created, dry.failed_rows) == (3, 0)
    assert not Link.objects.exists()


def test_a_links_file_with_other_columns_fails_with_the_columns_taken(world, ring):
    job = run_job(job_for(world.a, b"from,to,relation\np1,p2,family\n", kind="links", source="reg").pk)
    assert job.status == "failed" and "missing column(s): kind, source, target" in job.error
    assert "source_id" in job.error and not Link.objects.exists()


def test_a_links_file_through_the_api(world, ring, investigator, client_for, django_capture_on_commit_callbacks,
                                      eager):
    from django.core.files.base import ContentFile

    api = client_for(investigator)
    upload = ContentFile(links_csv(rows(ring, GOOD + BAD[:2])), name="links.csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/imports/", {"file": upload, "kind": "links", "source": "reg"},
                            format="multipart")
    assert response.status_code == 202, response.content
    job = api.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert (job["status"], job["total_rows"], job["created"], job["failed_rows"]) == ("succeeded", 5, 3, 2)
    errors = api.get(f"/api/v1/imports/{job['id']}/errors/").json()["results"]
    assert [(e["row"], e["field"]) for e in errors] == [(4, "target"), (5, "target")]
    spouse = Link.objects.get(provenance_id="l1")
    assert api.get(f"/api/v1/links/{spouse.pk}/").json()["kind"] == "family"
