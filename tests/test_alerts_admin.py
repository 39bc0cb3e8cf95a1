"""Alerts in the admin (issue 10, point 4): the list with its filters and search, an alert's page with its reasons
readable, and status and case changed one by one or in bulk through `alerts.services.alert_update`, as through the
API; only what the policy lets the user see and change. (The list's query count: tests/test_admin.py.)"""

from __future__ import annotations

import pytest

from alerts.models import Alert
from audit.models import AuditEvent

from . import factories

LIST = "/admin/alerts/alert/"


@pytest.fixture
def alerts(world):
    """Three of SSB's alerts and one of ASB's that SSB's staff never see."""
    company = factories.organization(world.a, "Grand Harvest Trading")
    kin = factories.person(world.a, "Chen Xiuying")
    return {
        "unlicensed": factories.alert(factories.shipment(world.a, reference="BL-SB-0916"), "unlicensed_export",
                                      "high", explanation="Antimony exported after its control date, unlicensed."),
        "listed": factories.alert(kin, "watchlist_match", "medium", explanation="Listed under another spelling.",
                                  related=({"type": "person", "id": str(kin.pk), "label": "CHEN, Xiu Ying",
                                            "list": "ofac-sdn", "programmes": ["SDGT", "CHINA-EO13936"],
                                            "score": 0.93, "reasons": "name 0.93"},)),
        "shell": factories.alert(company, "shared_address", "low", explanation="Shares 12 Harbour Road with a suspect.",
                                 related=({"type": "organization", "id": str(company.pk), "label": company.name},)),
        "theirs": factories.alert(factories.shipment(world.b, reference="BL-HIDDEN"), "value_anomaly", "high",
                                  explanation="the other agency's alert"),
    }


def shown(client, **params) -> str:
    page = client.get(LIST, params)
    assert page.status_code == 200
    return page.content.decode()


def audited(alert: Alert) -> int:
    return AuditEvent.objects.filter(action="update", object_type="alert", object_id=str(alert.pk)).count()


def test_the_list_shows_only_what_the_policy_allows(world, alerts):
    client = factories.admin_client(factories.user(world.a, "viewer", world.a1))
    text = shown(client)
    assert "BL-SB-0916" in text and "Chen Xiuying" in text and "Grand Harvest Trading" in text
    assert "BL-HIDDEN" not in text
    assert client.get(f"{LIST}{alerts['theirs'].pk}/change/", follow=True).status_code in (200, 404)
    assert "the other agency" not in client.get(f"{LIST}{alerts['theirs'].pk}/change/", follow=True).content.decode()
    assert client.get(f"{LIST}add/").status_code == 403


def test_filters_and_search(world, alerts):
    client = factories.admin_client(factories.user(world.a, "analyst", world.a1))
    text = shown(client, rule="watchlist_match")
    assert "Chen Xiuying" in text and "BL-SB-0916" not in text
    text = shown(client, severity="high")
    assert "BL-SB-0916" in text and "Chen Xiuying" not in text and "Grand Harvest" not in text
    Alert.objects.filter(pk=alerts["shell"].pk).update(status="escalated")
    text = shown(client, status="escalated")
    assert "Grand Harvest" in text and "BL-SB-0916" not in text
    text = shown(client, q="harbour road")
    assert "Grand Harvest" in text and "Chen Xiuying" not in text
    text = shown(client, q="bl-sb")
    assert "BL-SB-0916" in text and "Grand Harvest" not in text
    assert client.get(LIST, {"severity": "nonsense"}).status_code in (200, 302)  # Django's "?e=1": never a 500


def test_an_alerts_page_shows_its_reasons_readably(world, alerts):
    client = factories.admin_client(factories.user(world.a, "viewer", world.a1))
    alert = alerts["listed"]
    page = client.get(f"{LIST}{alert.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Listed under another spelling." in text
    assert "CHEN, Xiu Ying" in text and "ofac-sdn" in text and "SDGT, CHINA-EO13936" in text
    assert f"/admin/entities/entity/{alert.entity_id}/change/" in text  # the subject and the entry, linked
    assert '"programmes"' not in text and "&quot;programmes&quot;" not in text, "not raw JSON"
    shipment_page = client.get(f"{LIST}{alerts['unlicensed'].pk}/change/").content.decode()
    assert f"/admin/shipments/shipment/{alerts['unlicensed'].shipment_id}/change/" in shipment_page
    superuser = factories.admin_client(factories.user(None, "agency_admin", is_superuser=True))
    for each in alerts.values():
        assert superuser.get(f"{LIST}{each.pk}/change/").status_code == 200
    assert superuser.get(LIST, {"q": "spelling"}).status_code == 200


def test_bulk_dismiss_escalate_and_reopen_go_through_the_service(world, alerts):
    analyst = factories.user(world.a, "analyst", world.a1)
    client = factories.admin_client(analyst)
    chosen = [alerts["unlicensed"], alerts["listed"], alerts["theirs"]]  # the last is not theirs to change
    response = client.post(LIST, {"action": "dismiss_selected", "_selected_action": [str(a.pk) for a in chosen]})
    assert response.status_code == 302
    statuses = dict(Alert.objects.values_list("pk", "status"))
    assert statuses[alerts["unlicensed"].pk] == statuses[alerts["listed"].pk] == "dismissed"
    assert statuses[alerts["theirs"].pk] == "open" and audited(alerts["theirs"]) == 0
    stored = Alert.objects.get(pk=alerts["unlicensed"].pk)
    assert (stored.status_changed_by, stored.closed_reason, stored.version) == (analyst, "", 2)
    assert audited(stored) == 1

    client.post(LIST, {"action": "escalate_selected", "_selected_action": [str(alerts["unlicensed"].pk)]})
    assert Alert.objects.get(pk=alerts["unlicensed"].pk).status == "escalated"
    client.post(LIST, {"action": "reopen_selected", "_selected_action": [str(alerts["unlicensed"].pk)]})
    assert Alert.objects.get(pk=alerts["unlicensed"].pk).status == "open"
    assert audited(alerts["unlicensed"]) == 3


def test_an_alerts_page_sets_status_and_case(world, alerts):
    analyst = factories.user(world.a, "analyst", world.a1)
    client = factories.admin_client(analyst)
    alert = alerts["shell"]
    case = factories.case(world.a, world.a1)
    response = client.post(f"{LIST}{alert.pk}/change/", {"status": "escalated", "case": str(case.pk),
                                                          "severity": "high", "explanation": "changed"})
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.case, stored.status_changed_by) == ("escalated", case, analyst)
    assert (stored.severity, stored.explanation) == ("low", alert.explanation), "not the admin's to change"
    assert audited(alert) == 1

    # Only the case changes: an alert the system closed stays the system's.
    other = alerts["unlicensed"]
    Alert.objects.filter(pk=other.pk).update(status="dismissed", closed_reason="the rule no longer fires")
    response = client.post(f"{LIST}{other.pk}/change/", {"status": "dismissed", "case": str(case.pk)})
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Alert.objects.get(pk=other.pk)
    assert (stored.case, stored.closed_reason, stored.status_changed_by) == (case, "the rule no longer fires", None)


def test_a_case_the_user_may_not_name_is_a_form_error(world, alerts):
    analyst = factories.user(world.a, "analyst", world.a1)
    client = factories.admin_client(analyst)
    alert = alerts["shell"]
    for case in (factories.case(world.b, world.b1), factories.case(world.a, world.a2)):  # foreign; hidden
        response = client.post(f"{LIST}{alert.pk}/change/", {"status": "escalated", "case": str(case.pk)})
        assert response.status_code == 200
        assert "case" in response.context["adminform"].form.errors
    assert Alert.objects.get(pk=alert.pk).status == "open" and audited(alert) == 0


def test_viewers_neither_act_nor_change(world, alerts):
    client = factories.admin_client(factories.user(world.a, "viewer", world.a1))
    alert = alerts["unlicensed"]
    response = client.post(LIST, {"action": "dismiss_selected", "_selected_action": [str(alert.pk)]})
    assert response.status_code in (200, 302, 403)
    response = client.post(f"{LIST}{alert.pk}/change/", {"status": "dismissed"})
    assert response.status_code in (302, 403)
    assert Alert.objects.get(pk=alert.pk).status == "open" and audited(alert) == 0
