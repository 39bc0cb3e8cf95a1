"""Red flags with a real Celery worker on real Redis: a write through the API reaches the rules through the outbox
(after cross-referencing), and its alert is there to list soon after the commit; a licence or a case party written
later re-evaluates what it touches; a full pass's parts are shared by the workers."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from django.core.files.base import ContentFile

from alerts.models import Alert, AlertRun
from alerts.services import run_create
from core.models import OutboxMessage
from entities.models import Entity
from imports.models import ImportJob
from xref import services as xref_services

from . import factories
from .test_watchlists import _real_zip, needs_ofac
from .test_xref_worker import _handled
from .worker import wait_until, worker_process

pytestmark = pytest.mark.django_db(transaction=True)


def _open(rule: str, **subject: Any) -> Alert | None:
    return Alert.objects.filter(rule=rule, status="open", **subject).first()


def _ref(entity: Any) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


def _unlicensed(reference: str, **extra: Any) -> dict[str, Any]:
    return {"reference": reference, "commodity": "antimony", "hs_code": "811010", "declared_hs_code": "811010",
            "declared_description": "Antimony ingots", "quantity_kg": "1000", "declared_value": "40000",
            "currency": "USD", "origin_country": "CN", "destination_country": "DE",
            "legs": [{"from_country": "CN", "to_country": "DE", "departed_on": "2025-03-01"}], **extra}


def test_a_shipment_posted_to_the_api_has_its_alert_soon_after_its_commit(world, client_for, investigator, settings):
    api = client_for(investigator)
    delays = []
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        for n in range(5):
            response = api.post("/api/v1/shipments/", _unlicensed(f"BL-{n}"), format="json")
            committed = time.monotonic()
            assert response.status_code == 201, response.content
            created = response.json()["id"]
            wait_until(lambda: _open("unlicensed_export", shipment_id=created), every=0.005)  # noqa: B023 (at once)
            delays.append(time.monotonic() - committed)

        # A licence given later closes it; the licence's expiry, written later, raises licence_invalid.
        shipment = response.json()["id"]
        licence = api.post("/api/v1/licences/", {"number": "LIC-1", "holder": _ref(factories.organization(world.a)),
                                                  "commodity": "antimony", "valid_from": "2025-01-01"},
                           format="json").json()
        patched = api.patch(f"/api/v1/shipments/{shipment}/", {"licence": licence["id"]}, format="json")
        assert patched.status_code == 200, patched.content
        wait_until(lambda: not _open("unlicensed_export", shipment_id=shipment))
        response = api.patch(f"/api/v1/licences/{licence['id']}/", {"valid_to": "2025-02-01"}, format="json")
        assert response.status_code == 200, response.content
        alert = wait_until(lambda: _open("licence_invalid", shipment_id=shipment))
    print(f"\ncommit of a new shipment -> its alert, live worker: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms ({', '.join(f'{d * 1000:.0f}' for d in delays)})")
    assert "expired on 2025-02-01" in alert.explanation
    assert max(delays) < 2.0


def test_a_consignee_matching_a_listed_company_under_another_spelling(world, client_for, investigator, settings):
    api = client_for(investigator)
    entry = factories.listed(world.a, "SILVER PEAK RESOURCES PTE LTD", programmes=("IRAN-EO13846",),
                             registration_number="202437715C")
    xref_services.records_changed([entry.pk])  # indexed, as its import would have done
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        consignee = api.post("/api/v1/organizations/", {"name": "Silver Peak Resources Pte. Ltd.",
                                                        "registration_number": "202437715C"}, format="json").json()
        party = {"type": "organization", "id": consignee["id"]}
        response = api.post("/api/v1/shipments/", _unlicensed("BL-SP", consignee=party), format="json")
        assert response.status_code == 201, response.content
        alert = wait_until(lambda: _open("watchlist_match", entity_id=consignee["id"]))
    assert alert.severity == "high" and alert.related[0]["list"] == "ofac-sdn"
    assert alert.related[0]["programmes"] == ["IRAN-EO13846"] and alert.related[0]["id"] == str(entry.pk)
    assert not Alert.objects.filter(entity=entry).exists()


@needs_ofac
def test_the_real_sdn_list_screens_a_consignee_named_in_another_spelling(world, client_for, investigator, settings):
    """The Treasury's SDN list imported through the API as a watchlist, cross-referenced by the worker as it
    arrives; then a shipment to "Banko Nacional de Cuba S.A." (a typo and a legal form the list does not have)
    raises watchlist_match on that consignee, naming the entry, the list and its programme."""
    api = client_for(investigator)
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        upload = ContentFile(_real_zip(), name="sdn.zip")
        response = api.post("/api/v1/imports/", {"file": upload, "kind": "ofac_sdn"}, format="multipart")
        assert response.status_code == 202, response.content
        job = ImportJob.objects.get(pk=response.json()["id"])
        wait_until(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).exists(), 600)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        listed = list(Entity.objects.filter(agency=world.a, lists__contains=["ofac-sdn"]).values_list("pk", flat=True))
        assert len(listed) == 9043
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True)
        wait_until(lambda: _handled(*listed) and not unsent.exists(), 900, 1)

        consignee = api.post("/api/v1/organizations/", {"name": "Banko Nacional de Cuba S.A.", "jurisdiction": "CU"},
                             format="json").json()
        party = {"type": "organization", "id": consignee["id"]}
        response = api.post("/api/v1/shipments/", _unlicensed("BL-CU", consignee=party), format="json")
        assert response.status_code == 201, response.content
        alert = wait_until(lambda: _open("watchlist_match", entity_id=consignee["id"]))
    bank = Entity.objects.get(agency=world.a, source="ofac-sdn", source_id="306")
    entry = next(item for item in alert.related if item["id"] == str(bank.pk))
    assert (entry["list"], entry["programmes"], alert.severity) == ("ofac-sdn", ["CUBA"], "high")
    assert "banco nacional de cuba" in alert.explanation.lower(), alert.explanation


def test_a_suspect_added_to_a_case_flags_the_company_at_their_address(world, client_for, investigator, settings):
    api = client_for(investigator)
    case = factories.case(world.a, world.a1, lead=investigator)
    wife = factories.person(world.a, "Chen Xiuying", addresses=[{"text": "Flat 9C, Block 2, Lotus Terrace, Kowloon"}])
    shell = factories.organization(world.a, "Grand Harvest", addresses=[{"text": "Flat 9C Block 2 Lotus Terrace "
                                                                                 "Kowloon"}])
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix
        response = api.post(f"/api/v1/cases/{case.pk}/parties/", {"entity": _ref(wife), "role": "facilitator"},
                            format="json")
        assert response.status_code == 201, response.content
        alert = wait_until(lambda: _open("shared_address", entity_id=shell.pk))
        assert alert.case_id == case.pk
        # She turns out to be a witness: the alert closes.
        response = api.patch(f"/api/v1/cases/{case.pk}/parties/{response.json()['id']}/", {"role": "witness"},
                             format="json")
        assert response.status_code == 200, response.content
        wait_until(lambda: not _open("shared_address", entity_id=shell.pk))


def test_a_full_pass_is_shared_by_two_workers(world, settings):
    settings.ALERT_RUN_PARTS = 4
    legs = ({"from_country": "CN", "to_country": "VN"}, {"from_country": "VN", "to_country": "DE"})
    for n in range(40):
        factories.shipment(world.a, commodity_id="antimony", origin_country="CN", reference=f"BL-{n}", legs=legs)
    with worker_process(node="one") as one, worker_process(prefix=one.prefix, node="two"):
        settings.TASK_QUEUE_PREFIX = one.prefix
        run = run_create(agency=world.a)
        wait_until(lambda: AlertRun.objects.filter(pk=run.pk, status="succeeded").exists())
    run.refresh_from_db()
    assert run.parts == len(run.done_parts) >= 2
    assert Alert.objects.filter(agency=world.a, rule="third_country_transit").count() == 40
