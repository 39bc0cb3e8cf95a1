"""Alerts through the API (API.md § Alerts; issue 10, point 3's PATCH): their shape, filters and ordering, a user's
change of status and case through `alerts.services.alert_update` (its rules, version and audit), and how it stands
beside the rules' own writes (`settle`). Who may do what is tests/test_access_matrix_alerts.py's."""

from __future__ import annotations

import pytest

from alerts import services
from alerts.models import Alert
from alerts.services import Finding, settle
from audit.models import AuditEvent
from core.rules import RuleViolation, StateConflict

from . import factories

LIST = "/api/v1/alerts/"


def detail(alert: Alert) -> str:
    return f"{LIST}{alert.pk}/"


@pytest.fixture
def analyst(world):
    return factories.user(world.a, "analyst", world.a1)


@pytest.fixture
def api(client_for, analyst):
    return client_for(analyst)


@pytest.fixture
def alerts(world):
    """SSB's alerts on a shipment, a person and an organisation, and one of ASB's."""
    company = factories.organization(world.a, "Grand Harvest Trading")
    shipment = factories.shipment(world.a, reference="BL-SB-0916", consignee=company)
    kin = factories.person(world.a, "Chen Xiuying")
    return {
        "shipment": factories.alert(
            shipment, "unlicensed_export", "high",
            explanation="Antimony (HS 811010) exported on 2024-09-16, after its control date 2024-09-15, "
                        "without a licence.",
            related=({"type": "organization", "id": str(company.pk), "label": company.name},)),
        "person": factories.alert(kin, "watchlist_match", "medium", explanation="Listed under another spelling.",
                                  related=({"type": "person", "id": str(kin.pk), "label": "CHEN, Xiu Ying",
                                            "list": "ofac-sdn", "programmes": ["SDGT"], "score": 0.93,
                                            "reasons": "name 0.93"},)),
        "organization": factories.alert(company, "new_company", "low",
                                        explanation="Incorporated 12 days before its first shipment."),
        "theirs": factories.alert(factories.shipment(world.b, reference="BL-ASB-1"), "value_anomaly", "high"),
    }


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def audit_updates(alert: Alert) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="update", object_type="alert", object_id=str(alert.pk))
                .order_by("seq"))


# --- reading -------------------------------------------------------------------------------------------------


def test_an_alert_shows_its_rule_subject_reasons_and_status(api, alerts):
    alert = alerts["shipment"]
    response = api.get(detail(alert))
    assert response.status_code == 200
    assert response["ETag"] == f'"{alert.version}"'
    body = response.json()
    assert body["subject"] == {"type": "shipment", "id": str(alert.shipment_id), "label": "BL-SB-0916"}
    assert (body["rule"], body["severity"], body["status"], body["case"], body["agency"]) == (
        "unlicensed_export", "high", "open", None, "SSB")
    assert "2024-09-15" in body["explanation"]
    assert body["related"] == alert.related and body["related"][0]["type"] == "organization"
    assert {"id", "created_at", "updated_at", "version"} <= set(body)
    subjects = {row["subject"]["type"]: row["subject"] for row in api.get(LIST).json()["results"]}
    assert subjects["person"] == {"type": "person", "id": str(alerts["person"].entity_id), "label": "Chen Xiuying"}
    assert subjects["organization"]["label"] == "Grand Harvest Trading"
    assert api.get(detail(alerts["organization"])).json()["subject"]["type"] == "organization"


def test_another_agencys_alert_is_not_there(api, alerts):
    assert str(alerts["theirs"].pk) not in ids(api.get(LIST))
    assert api.get(detail(alerts["theirs"])).status_code == 404
    response = api.patch(detail(alerts["theirs"]), {"status": "dismissed"}, format="json")
    assert response.status_code == 404
    assert Alert.objects.get(pk=alerts["theirs"].pk).status == "open"


def test_filters(world, api, alerts, analyst):
    case = factories.case(world.a, world.a1)
    services.alert_update(analyst, alerts["person"], status="escalated", case=case)

    def listed(**params) -> set[str]:
        names = {str(alert.pk): name for name, alert in alerts.items()}
        return {names[pk] for pk in ids(api.get(LIST, params))}

    assert listed(rule="new_company") == {"organization"}
    assert listed(rule=["new_company", "watchlist_match"]) == {"organization", "person"}
    assert listed(severity="high") == {"shipment"}
    assert listed(severity=["low", "medium"]) == {"organization", "person"}
    assert listed(status="escalated") == {"person"}
    assert listed(status=["open", "dismissed"]) == {"shipment", "organization"}
    assert listed(subject=str(alerts["shipment"].shipment_id)) == {"shipment"}
    assert listed(subject=str(alerts["organization"].entity_id)) == {"organization"}
    assert listed(case=str(case.pk)) == {"person"}
    assert listed(q="control date") == {"shipment"}
    assert listed(q="bl-sb") == {"shipment"}  # the subject's label
    assert listed(created_after="2000-01-01T00:00:00Z") == {"shipment", "person", "organization"}
    assert listed(updated_after="2999-01-01T00:00:00Z") == set()
    for params in ({"rule": "no_such_rule"}, {"severity": "critical"}, {"status": "closed"}, {"subject": "BL-1"},
                   {"case": "12"}, {"created_after": "yesterday"}, {"q": "x" * 5000}):
        response = api.get(LIST, params)
        assert response.status_code == 400, params
        assert set(response.json()) == set(params)


def test_ordering_by_severity_ranks_rather_than_spells(api, alerts):
    names = {str(alert.pk): name for name, alert in alerts.items()}
    assert [names[pk] for pk in ids(api.get(LIST, {"ordering": "severity"}))] == ["organization", "person",
                                                                                   "shipment"]
    assert [names[pk] for pk in ids(api.get(LIST, {"ordering": "-severity"}))] == ["shipment", "person",
                                                                                    "organization"]
    assert [names[pk] for pk in ids(api.get(LIST, {"ordering": "rule"}))] == ["organization", "shipment", "person"]
    assert ids(api.get(LIST, {"ordering": "created_at"})) == ids(api.get(LIST, {"ordering": "-created_at"}))[::-1]


# --- a user's change -----------------------------------------------------------------------------------------


def test_dismissing_is_the_users_audited_and_versioned(api, alerts, analyst):
    alert = alerts["shipment"]
    response = api.patch(detail(alert), {"status": "dismissed"}, format="json", HTTP_IF_MATCH=f'"{alert.version}"')
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["version"], body["status_changed_by"]) == ("dismissed", alert.version + 1,
                                                                            analyst.username)
    assert body["closed_reason"] == "" and body["status_changed_at"]
    assert response["ETag"] == f'"{alert.version + 1}"'
    [event] = audit_updates(alert)
    assert event.actor == analyst.username and event.changes["status"] == ["open", "dismissed"]
    assert event.changes["status_changed_by"] == [None, str(analyst.pk)]
    # The same status again changes nothing: no new version, no event.
    assert api.patch(detail(alert), {"status": "dismissed"}, format="json").json()["version"] == alert.version + 1
    assert len(audit_updates(alert)) == 1


def test_read_only_fields_sent_are_ignored(api, alerts):
    alert = alerts["shipment"]
    response = api.patch(detail(alert), {
        "status": "escalated", "rule": "new_company", "severity": "low", "explanation": "nothing to see",
        "related": [], "subject": {"type": "person", "id": str(alerts["person"].entity_id)}, "agency": "ASB",
        "version": 99, "closed_reason": "mine", "status_changed_by": "someone", "id": str(alerts["person"].pk),
    }, format="json")
    assert response.status_code == 200, response.json()
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.rule, stored.severity, stored.related, stored.closed_reason, stored.version) == (
        "escalated", "unlicensed_export", "high", alert.related, "", alert.version + 1)
    assert stored.explanation == alert.explanation and stored.shipment_id == alert.shipment_id


def test_attach_to_a_case_and_detach(world, api, alerts, analyst):
    alert = alerts["organization"]
    case = factories.case(world.a, world.a1)
    response = api.patch(detail(alert), {"case": str(case.pk)}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["case"] == str(case.pk) and response.json()["status"] == "open"
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.case == case and stored.status_changed_by is None  # the status is not the user's yet
    [event] = audit_updates(alert)
    assert event.changes == {"case": [None, str(case.pk)]} and event.case_id == case.pk
    response = api.patch(detail(alert), {"case": None}, format="json")
    assert response.status_code == 200 and response.json()["case"] is None
    assert Alert.objects.get(pk=alert.pk).case is None


def test_a_case_the_user_may_not_name_is_a_400_on_case(world, api, alerts):
    """Another agency's case (shared read-write with SSB too), a case of SSB the analyst does not see, an archived
    one and one that does not exist all answer alike, and change nothing."""
    alert = alerts["organization"]
    theirs = factories.case(world.b, world.b1)
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "write", by=factories.user(world.b, "supervisor", world.b1))
    hidden = factories.case(world.a, world.a2)  # another unit's: an analyst of a1 does not see it
    archived = factories.case(world.a, world.a1, archived=True)
    before = Alert.objects.values().get(pk=alert.pk)
    messages = set()
    for case_id in (theirs.pk, shared.pk, hidden.pk, archived.pk, "8c7e4b0a-6c1d-4e8e-9a7b-0d3f2b1c5e66"):
        response = api.patch(detail(alert), {"case": str(case_id), "status": "escalated"}, format="json")
        assert response.status_code == 400, (case_id, response.json())
        assert list(response.json()) == ["case"]
        messages.add(response.json()["case"][0])
    assert len(messages) == 1, "a hidden case answers as one that does not exist"
    assert Alert.objects.values().get(pk=alert.pk) == before
    assert audit_updates(alert) == []


@pytest.mark.parametrize("body", [
    {"status": "closed"}, {"status": ""}, {"status": None}, {"status": 3}, {"status": ["open"]},
    {"status": {"value": "open"}}, {"status": "open" * 100_000}, {"status": "open\x00"},
    {"case": "not-a-uuid"}, {"case": 12}, {"case": 10**400}, {"case": {"id": "x"}}, {"case": ["x"]},
    {"case": "1" * 100_000}, {"case": True}, {"unknown": 1}, {"status": "open", "case": "x"},
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, alerts, body):
    alert = alerts["shipment"]
    before = Alert.objects.values().get(pk=alert.pk)
    response = api.patch(detail(alert), body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()) <= set(body) | {"non_field_errors"} and response.json()
    assert Alert.objects.values().get(pk=alert.pk) == before


@pytest.mark.parametrize("raw", [b"[]", b'"open"', b"null", b"{", b'{"status": "open"', b"\xff\xfe"])
def test_a_body_that_is_not_an_object_is_a_400(api, alerts, raw):
    response = api.generic("PATCH", detail(alerts["shipment"]), raw, content_type="application/json")
    assert response.status_code == 400 and response.json()


def test_no_create_replace_or_delete(api, alerts):
    alert = alerts["shipment"]
    assert api.post(LIST, {"rule": "new_company"}, format="json").status_code == 405
    assert api.put(detail(alert), {"status": "dismissed"}, format="json").status_code == 405
    assert api.delete(detail(alert)).status_code == 405
    assert Alert.objects.get(pk=alert.pk).status == "open" and not Alert.objects.get(pk=alert.pk).archived


def test_an_archived_alert_is_a_409(api, alerts):
    alert = alerts["shipment"]
    Alert.objects.filter(pk=alert.pk).update(archived=True)
    response = api.patch(detail(alert), {"status": "dismissed"}, format="json")
    assert response.status_code == 409 and "detail" in response.json()
    assert Alert.objects.get(pk=alert.pk).status == "open"


# --- the user's word and the rules' --------------------------------------------------------------------------


def refire(alert: Alert) -> dict[str, int]:
    """The alert's rule evaluated again on its subject, and firing."""
    subject = alert.subject
    assert subject is not None
    return settle([subject], [alert.rule], {subject.pk: [Finding(alert.rule, alert.severity, alert.explanation)]})


def test_a_user_dismissal_stands_while_the_rule_fires(api, alerts):
    alert = alerts["shipment"]
    api.patch(detail(alert), {"status": "dismissed"}, format="json")
    assert refire(alert)["reopened"] == 0
    assert Alert.objects.get(pk=alert.pk).status == "dismissed"


def test_a_user_takes_over_an_alert_the_system_closed(api, alerts, analyst):
    alert = alerts["shipment"]
    subject = alert.shipment
    settle([subject], [alert.rule], {})  # the rule no longer fires: closed by the system
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, bool(stored.closed_reason)) == ("dismissed", True)
    # Dismissing it again is the user's decision: the reason goes, and the rule firing again leaves it dismissed.
    response = api.patch(detail(alert), {"status": "dismissed"}, format="json")
    assert response.status_code == 200
    assert (response.json()["closed_reason"], response.json()["status_changed_by"]) == ("", analyst.username)
    assert audit_updates(alert)[-1].changes["closed_reason"] == [stored.closed_reason, ""]
    refire(alert)
    assert Alert.objects.get(pk=alert.pk).status == "dismissed"


def test_escalating_a_system_closed_alert_reopens_it_for_the_rules_too(api, alerts):
    alert = alerts["organization"]
    settle([alert.entity], [alert.rule], {})
    api.patch(detail(alert), {"status": "escalated"}, format="json")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.closed_reason) == ("escalated", "")
    assert refire(alert)["reopened"] == 0 and Alert.objects.get(pk=alert.pk).status == "escalated"


# --- the service itself, as a script or the admin calls it ---------------------------------------------------


def test_the_service_checks_what_the_api_checks(world, alerts, analyst):
    alert = alerts["shipment"]
    viewer = factories.user(world.a, "viewer", world.a1)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.alert_update(viewer, alert, status="dismissed")
    with pytest.raises(PermissionDenied):
        services.alert_update(analyst, alerts["theirs"], status="dismissed")
    with pytest.raises(RuleViolation) as caught:
        services.alert_update(analyst, alert, status="closed", case=factories.case(world.b, world.b1))
    assert set(caught.value.errors) == {"status", "case"}
    Alert.objects.filter(pk=alert.pk).update(archived=True)
    with pytest.raises(StateConflict):
        services.alert_update(analyst, alert, status="dismissed")
    assert Alert.objects.get(pk=alert.pk).version == alert.version
    # Without a user (a script): the same rules of the record, no role to check.
    Alert.objects.filter(pk=alert.pk).update(archived=False)
    with pytest.raises(RuleViolation):
        services.alert_update(None, alert, case=factories.case(world.b, world.b1))
    changed = services.alert_update(None, alert, status="escalated", case=factories.case(world.a, world.a2))
    assert (changed.status, changed.status_changed_by, changed.version) == ("escalated", None, alert.version + 1)


def test_the_browsable_api_offers_no_case_the_user_may_not_name(world, client_for, alerts, analyst):
    theirs = factories.case(world.b, world.b1, title="Another agency's gallium case")
    hidden = factories.case(world.a, world.a2, title="Another unit's case")
    client = client_for(analyst)
    page = client.get(detail(alerts["shipment"]), HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    text = page.content.decode()
    assert theirs.reference not in text and hidden.reference not in text
    assert "gallium case" not in text and "Another unit" not in text
