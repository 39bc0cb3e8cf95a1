"""One write path for shipments and licences: the services, and every door (API, admin, import) giving the
same rules, the same messages, the same stored row and the same audit event."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from imports.models import ImportRowError
from imports.services import run_job
from shipments import rules, services
from shipments.models import Licence, Shipment

from . import factories
from .test_imports import job_for, shipments_csv

pytestmark = pytest.mark.django_db

URL = "/api/v1/shipments/"
LICENCES = "/api/v1/licences/"
VIA_VIETNAM = ({"from_country": "CN", "to_country": "VN", "mode": "road", "departed_on": datetime.date(2025, 3, 1)},
               {"from_country": "VN", "to_country": "DE", "mode": "sea", "departed_on": datetime.date(2025, 3, 5)})


def ref(entity) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


staff = factories.admin_client


def admin_shipment_form(**overrides) -> dict[str, str]:
    return {"reference": "BL-ADMIN", "status": "declared", "legs-TOTAL_FORMS": "0", "legs-INITIAL_FORMS": "0",
            **overrides}


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code  # the form came back
    return {name: list(messages) for name, messages in response.context["adminform"].form.errors.items()}


# --- transit countries -----------------------------------------------------------------------------


def test_transit_countries_sent_to_the_api_without_legs_are_ignored(api):
    response = api.post(URL, {"reference": "BL-KP", "transit_countries": ["KP"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["transit_countries"] == []
    assert Shipment.objects.get().transit_countries == []


def test_transit_countries_patched_through_the_api_are_ignored(api, world):
    shipment = factories.shipment(world.a, reference="BL-1", transit_countries=["VN"])
    response = api.patch(f"{URL}{shipment.pk}/", {"transit_countries": ["KP"]}, format="json")
    assert response.status_code == 200 and response.json()["transit_countries"] == ["VN"]
    shipment.refresh_from_db()
    assert shipment.version == 1  # nothing changed: no new version, no event
    assert not AuditEvent.objects.filter(object_id=str(shipment.pk), action="update").exists()


def test_an_import_row_cannot_give_transit_countries_to_a_shipment_with_legs(world):
    with_legs = factories.shipment(world.a, reference="BL-1", origin_country="CN", destination_country="DE",
                                   legs=VIA_VIETNAM, source="customs", source_id="s1")
    without = factories.shipment(world.a, reference="BL-2", origin_country="CN", destination_country="DE",
                                 source="customs", source_id="s2")
    rows = [{"source_id": "s1", "reference": "BL-1", "origin_country": "CN", "destination_country": "DE",
             "transit_countries": "TH"},
            {"source_id": "s2", "reference": "BL-2", "origin_country": "CN", "destination_country": "DE",
             "transit_countries": "TH"}]
    job = run_job(job_for(world.a, shipments_csv(rows), kind="shipments", source="customs").pk)
    assert job.status == "succeeded", job.error
    assert (job.updated, job.failed_rows) == (1, 1)
    errors = [(e.row, e.field, e.message) for e in ImportRowError.objects.filter(job=job)]
    assert errors == [(1, "transit_countries", rules.TRANSIT_WITH_LEGS)]
    with_legs.refresh_from_db()
    without.refresh_from_db()
    assert with_legs.transit_countries == ["VN"] and with_legs.version == 1
    assert without.transit_countries == ["TH"]  # a shipment without legs takes them from the file


def test_the_service_refuses_transit_countries_beside_legs(world, investigator):
    data = {"reference": "BL-1", "origin_country": "CN", "destination_country": "DE", "legs": list(VIA_VIETNAM),
            "transit_countries": ["TH"]}
    with pytest.raises(rules.RuleViolation) as caught:
        services.shipment_create(agency=world.a, actor=investigator, data=data)
    assert caught.value.errors == {"transit_countries": [rules.TRANSIT_WITH_LEGS]}
    shipment = services.shipment_create(agency=world.a, actor=investigator,
                                        data={**data, "legs": [], "transit_countries": ["TH", "TH"]})
    assert shipment.transit_countries == ["TH"]
    with pytest.raises(rules.RuleViolation):
        services.shipment_update(shipment=factories.shipment(world.a, legs=VIA_VIETNAM), actor=investigator,
                                 data={"transit_countries": ["TH"]})


# --- the same rule, the same message, through every door ------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"quantity_kg": "10", "seized_quantity_kg": "11"}, "seized_quantity_kg"),
        ({"quantity_kg": "-1"}, "quantity_kg"),
        ({"declared_value": "-5"}, "declared_value"),
        ({"purity_pct": "100.5"}, "purity_pct"),
    ],
)
def test_a_bad_shipment_gets_the_same_message_from_the_api_and_the_admin(api, world, investigator, values, field):
    through_api = api.post(URL, {"reference": "BL-BAD", **values}, format="json")
    assert through_api.status_code == 400
    through_admin = staff(investigator).post("/admin/shipments/shipment/add/", admin_shipment_form(**values))
    assert form_errors(through_admin)[field] == through_api.json()[field]
    with pytest.raises(rules.RuleViolation) as caught:
        services.shipment_create(agency=world.a, actor=investigator, data={"reference": "BL-BAD", **values})
    assert caught.value.errors[field] == through_api.json()[field]
    assert not Shipment.objects.exists()


def test_a_bad_licence_gets_the_same_message_from_the_api_and_the_admin(api, world, investigator):
    holder = factories.organization(world.a, "Holder Co")
    values = {"valid_from": "2025-06-01", "valid_to": "2025-05-31"}
    through_api = api.post(LICENCES, {"number": "L-1", "holder": ref(holder), "commodity": "antimony", **values},
                           format="json")
    assert through_api.status_code == 400
    through_admin = staff(investigator).post("/admin/shipments/licence/add/", {
        "number": "L-1", "status": "valid", "holder": str(holder.pk), "commodity": "antimony", **values})
    assert form_errors(through_admin)["valid_to"] == through_api.json()["valid_to"]
    assert not Licence.objects.exists()


def test_a_licence_holder_of_another_agency_is_refused_by_the_service(world, investigator):
    foreign = factories.organization(world.b, "Their Co")
    with pytest.raises(rules.RuleViolation) as caught:
        services.licence_create(agency=world.a, actor=investigator,
                                data={"number": "L-1", "holder": foreign, "commodity_id": "antimony"})
    assert caught.value.errors == {"holder": [rules.SAME_AGENCY]}


# --- plain Python writes what the API writes -------------------------------------------------------


def _event_shape(event: AuditEvent) -> tuple[str, str, dict]:
    changes = {key: value for key, value in event.changes.items() if key not in ("reference",)}
    return event.action, event.actor, changes


def test_a_service_call_writes_the_row_and_event_the_api_writes(api, world, investigator):
    org = factories.organization(world.a, "Consignee Co")
    case = factories.case(world.a, world.a1)
    legs = [{"from_country": "CN", "to_country": "VN", "mode": "road", "departed_on": "2025-03-01"},
            {"from_country": "VN", "to_country": "DE", "mode": "sea", "vessel": "Grey Ship"}]
    body = {"commodity": "antimony", "quantity_kg": "1200.5", "origin_country": "CN", "destination_country": "DE",
            "consignee": ref(org), "cases": [str(case.pk)], "legs": legs, "status": "in_transit"}
    response = api.post(URL, {"reference": "BL-API", **body}, format="json")
    assert response.status_code == 201, response.json()
    from_api = Shipment.objects.get(pk=response.json()["id"])

    from_python = services.shipment_create(agency=world.a, actor=investigator, data={
        "reference": "BL-PY", "commodity_id": "antimony", "quantity_kg": Decimal("1200.5"),
        "origin_country": "CN", "destination_country": "DE", "consignee": org, "cases": [case],
        "legs": [{**leg, "departed_on": datetime.date(2025, 3, 1)} if "departed_on" in leg else leg
                 for leg in legs], "status": "in_transit"})

    def row(shipment):
        values = {f.attname: getattr(shipment, f.attname) for f in Shipment._meta.concrete_fields
                  if f.name not in ("id", "reference", "created_at", "updated_at")}
        legs = list(shipment.legs.order_by("seq").values("seq", "from_country", "to_country", "mode", "vessel",
                                                         "departed_on"))
        return values, legs, sorted(shipment.cases.values_list("pk", flat=True))

    from_python.refresh_from_db()
    assert row(from_python) == row(from_api)
    assert from_python.transit_countries == ["VN"] and from_python.version == 1
    events = {s.pk: AuditEvent.objects.get(object_id=str(s.pk), action="create") for s in (from_api, from_python)}
    assert _event_shape(events[from_api.pk]) == _event_shape(events[from_python.pk])
    assert {"cases", "legs", "transit_countries", "departed_on"} <= set(events[from_python.pk].changes)


def test_an_update_that_changes_nothing_keeps_the_version_and_writes_no_event(world, investigator):
    case = factories.case(world.a, world.a1)
    shipment = services.shipment_create(agency=world.a, actor=investigator, data={
        "reference": "BL-1", "quantity_kg": Decimal("10"), "origin_country": "CN", "destination_country": "DE",
        "legs": list(VIA_VIETNAM), "cases": [case]})
    same = services.shipment_update(shipment=shipment, actor=investigator, data={
        "reference": "BL-1", "quantity_kg": "10.000", "legs": list(VIA_VIETNAM), "cases": [case]})
    assert same.version == 1 and same.legs.count() == 2
    assert AuditEvent.objects.filter(object_id=str(shipment.pk)).count() == 1
    changed = services.shipment_update(shipment=same, actor=investigator, data={"legs": list(VIA_VIETNAM[:1])})
    assert changed.version == 2 and changed.transit_countries == ["VN"]
    event = AuditEvent.objects.get(object_id=str(shipment.pk), action="update")
    assert set(event.changes) == {"legs"}  # the route still passes through VN only

    licence = services.licence_create(agency=world.a, actor=investigator, data={
        "number": "L-1", "holder": factories.organization(world.a), "commodity_id": "antimony",
        "max_quantity_kg": "500"})
    again = services.licence_update(licence=licence, actor=investigator, data={"max_quantity_kg": Decimal("500.0")})
    assert again.version == 1 and AuditEvent.objects.filter(object_id=str(licence.pk)).count() == 1


def test_a_service_write_leaves_its_record_to_the_outbox(world, investigator, monkeypatch):
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(services.outbox, "records_changed", lambda label, ids: sent.append((label, list(ids))))
    shipment = services.shipment_create(agency=world.a, actor=investigator, data={"reference": "BL-1"})
    services.shipment_update(shipment=shipment, actor=investigator, data={"reference": "BL-1"})  # unchanged
    licence = services.licence_create(agency=world.a, actor=investigator, data={
        "number": "L-1", "holder": factories.organization(world.a), "commodity_id": "antimony"})
    assert sent == [("shipments.shipment", [shipment.pk]), ("shipments.licence", [licence.pk])]


# --- the admin saves through the services ------------------------------------------------------------


def _admin_form_of(shipment, **overrides) -> dict[str, str]:
    legs = list(shipment.legs.order_by("seq"))
    form = {"reference": shipment.reference, "status": shipment.status, "origin_country": shipment.origin_country,
            "destination_country": shipment.destination_country, "quantity_kg": str(shipment.quantity_kg or ""),
            "legs-TOTAL_FORMS": str(len(legs)), "legs-INITIAL_FORMS": str(len(legs))}
    for i, leg in enumerate(legs):
        form.update({f"legs-{i}-id": str(leg.pk), f"legs-{i}-shipment": str(shipment.pk), f"legs-{i}-seq": str(leg.seq),
                     f"legs-{i}-from_country": leg.from_country, f"legs-{i}-to_country": leg.to_country,
                     f"legs-{i}-mode": leg.mode, f"legs-{i}-departed_on": str(leg.departed_on or "")})
    form.update(overrides)
    return form


def test_an_admin_save_that_changes_nothing_keeps_the_version_and_writes_no_event(world, investigator):
    shipment = services.shipment_create(agency=world.a, actor=investigator, data={
        "reference": "BL-1", "origin_country": "CN", "destination_country": "DE", "quantity_kg": Decimal("5"),
        "legs": list(VIA_VIETNAM)})
    response = staff(investigator).post(f"/admin/shipments/shipment/{shipment.pk}/change/", _admin_form_of(shipment))
    assert response.status_code == 302, response.content.decode()[:2000]
    shipment.refresh_from_db()
    assert shipment.version == 1 and shipment.legs.count() == 2
    assert AuditEvent.objects.filter(object_id=str(shipment.pk)).count() == 1


def test_an_admin_edit_keeps_the_links_to_cases_the_editor_cannot_see(world, investigator):
    hidden = factories.case(world.a, world.a2)  # another unit's case: not visible to an investigator of a1
    visible = factories.case(world.a, world.a1)
    shipment = factories.shipment(world.a, reference="BL-1", cases=(hidden,))
    client = staff(investigator)
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/",
                           _admin_form_of(shipment, reference="BL-1b"))
    assert response.status_code == 302, response.content.decode()[:2000]
    shipment.refresh_from_db()
    assert shipment.reference == "BL-1b" and list(shipment.cases.all()) == [hidden] and shipment.version == 2
    event = AuditEvent.objects.get(object_id=str(shipment.pk), action="update")
    assert set(event.changes) == {"reference"}
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/",
                           _admin_form_of(shipment, cases=[str(visible.pk)]))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(shipment.cases.all()) == {hidden, visible}
    event = AuditEvent.objects.filter(object_id=str(shipment.pk), action="update").latest("seq")
    assert set(event.changes) == {"cases"}


def test_archiving_in_the_admin_goes_through_the_service(world, investigator):
    shipment = factories.shipment(world.a, reference="BL-1")
    licence = factories.licence(world.a)
    client = staff(investigator)
    for url, obj in (("/admin/shipments/shipment/", shipment), ("/admin/shipments/licence/", licence)):
        response = client.post(url, {"action": "archive_selected", "_selected_action": [str(obj.pk)]})
        assert response.status_code == 302
        obj.refresh_from_db()
        assert obj.archived and obj.version == 2
        assert AuditEvent.objects.filter(object_id=str(obj.pk), action="archive").count() == 1


def test_a_shipment_whose_stored_values_break_a_rule_can_still_be_archived(api, world):
    legacy = factories.shipment(world.a, reference="BL-OLD", quantity_kg="10", seized_quantity_kg="11")
    assert api.delete(f"{URL}{legacy.pk}/").status_code == 204
    legacy.refresh_from_db()
    assert legacy.archived and legacy.version == 2
    assert AuditEvent.objects.filter(object_id=str(legacy.pk), action="archive").count() == 1
    # Any other change is checked against the rules, as before.
    response = api.patch(f"{URL}{legacy.pk}/", {"reference": "BL-OLD-2"}, format="json")
    assert response.status_code == 400 and response.json() == {"seized_quantity_kg": [rules.SEIZED_OVER_QUANTITY]}
