"""The red-flag rules (API.md § Alerts): each fires on a case that deserves it and not on one beside it; alerts are
one per rule and subject however often the rules run, a user's dismissal stands, and a fix closes the alert."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertRun
from alerts.redflags import RULES
from alerts.services import evaluate_entities, evaluate_shipments
from audit.models import AuditEvent
from shipments.models import Shipment

from . import factories

pytestmark = pytest.mark.django_db


def fired(subject: Any, rule: str) -> Alert | None:
    """The open alert of `rule` on `subject` after evaluating the subject's rules, if it fired."""
    if isinstance(subject, Shipment):
        evaluate_shipments([subject.pk])
        alerts = Alert.objects.filter(shipment=subject)
    else:
        evaluate_entities([subject.pk])
        alerts = Alert.objects.filter(entity=subject)
    return alerts.filter(rule=rule, status="open").first()


def antimony(world: Any, departed: str = "2025-03-01", **extra: Any) -> Shipment:
    """An antimony export from China, departed on `departed` (its one leg)."""
    fields = {"commodity_id": "antimony", "hs_code": "811010", "declared_hs_code": "811010",
              "declared_description": "Antimony ingots", "quantity_kg": Decimal("1000"),
              "declared_value": Decimal("40000"), "currency": "USD", "origin_country": "CN",
              "destination_country": "DE", **extra}
    legs = extra.pop("legs", None) or ({"from_country": "CN", "to_country": fields["destination_country"],
                                        "departed_on": date.fromisoformat(departed)},)
    fields.pop("legs", None)
    return factories.shipment(world.a, legs=legs, **fields)


def test_every_rule_of_the_contract_is_registered():
    from alerts.models import AlertRule

    assert set(RULES) == set(AlertRule.values)


# --- unlicensed_export -----------------------------------------------------------------------------------------


def test_unlicensed_antimony_fires_from_its_control_date(world):
    assert fired(antimony(world, "2024-09-14"), "unlicensed_export") is None  # the day before 2024-09-15
    on = fired(antimony(world, "2024-09-15"), "unlicensed_export")
    after = fired(antimony(world, "2024-09-16"), "unlicensed_export")
    assert on is not None and after is not None and after.severity == "high"
    assert "departed 2024-09-16" in after.explanation and "since 2024-09-15" in after.explanation


@pytest.mark.parametrize(("commodity", "hs_code", "before", "since"), [
    ("gallium", "811292", "2023-07-31", "2023-08-01"), ("germanium", "282560", "2023-07-31", "2023-08-01"),
    ("graphite", "250410", "2023-11-30", "2023-12-01"), ("rare_earths", "280530", "2025-04-03", "2025-04-04"),
    ("tungsten", "810194", "2025-02-03", "2025-02-04")])
def test_each_commodity_has_its_control_date(world, commodity, hs_code, before, since):
    values = {"commodity_id": commodity, "hs_code": hs_code, "declared_hs_code": hs_code}
    assert fired(antimony(world, before, **values), "unlicensed_export") is None
    assert fired(antimony(world, since, **values), "unlicensed_export") is not None


def test_unlicensed_export_is_found_by_hs_code_alone(world):
    shipment = antimony(world, "2025-01-10", commodity_id=None, hs_code="", declared_hs_code="8110102000")
    alert = fired(shipment, "unlicensed_export")
    assert alert is not None and "declared HS code 8110102000" in alert.explanation
    ore = antimony(world, "2025-01-10", commodity_id=None, hs_code="261790", declared_hs_code="261790")
    assert fired(ore, "unlicensed_export") is None  # ores other than antimony's


def test_a_licensed_or_foreign_shipment_is_not_unlicensed(world):
    licence = factories.licence(world.a, valid_from=date(2025, 1, 1), valid_to=date(2025, 12, 31))
    assert fired(antimony(world, "2025-03-01", licence=licence), "unlicensed_export") is None
    assert fired(antimony(world, "2025-03-01", origin_country="VN"), "unlicensed_export") is None


# --- licence_invalid -------------------------------------------------------------------------------------------


def test_licence_invalid_names_each_reason(world):
    consignee, end_user = factories.organization(world.a, "Nordwerk"), factories.organization(world.a, "Hanseong")
    good = factories.licence(world.a, destination_country="DE", end_user=consignee, valid_from=date(2025, 1, 1),
                             valid_to=date(2025, 12, 31))
    assert fired(antimony(world, "2025-03-01", licence=good, consignee=consignee), "licence_invalid") is None

    bad = factories.licence(world.a, destination_country="KR", end_user=end_user, valid_from=date(2024, 1, 1),
                            valid_to=date(2024, 12, 31), status="revoked", commodity="gallium")
    alert = fired(antimony(world, "2025-03-01", licence=bad, consignee=consignee), "licence_invalid")
    assert alert is not None
    for reason in ("status is revoked", "expired on 2024-12-31", "for Gallium, not Antimony", "not DE",
                   "end user is Hanseong, not the consignee Nordwerk"):
        assert reason in alert.explanation
    assert [item["type"] for item in alert.related] == ["licence", "organization"]
    early = factories.licence(world.a, valid_from=date(2025, 6, 1), status="suspected_forgery")
    alert = fired(antimony(world, "2025-03-01", licence=early), "licence_invalid")
    assert alert is not None and "valid only from 2025-06-01" in alert.explanation
    assert "suspected forgery" in alert.explanation


# --- licence_exceeded ------------------------------------------------------------------------------------------


def test_licence_exceeded_by_one_shipment_or_cumulatively(world):
    licence = factories.licence(world.a, max_quantity_kg=Decimal("2500"))
    first = antimony(world, "2025-03-01", licence=licence, quantity_kg=Decimal("1000"))
    second = antimony(world, "2025-04-01", licence=licence, quantity_kg=Decimal("1000"))
    assert fired(first, "licence_exceeded") is None and fired(second, "licence_exceeded") is None
    third = antimony(world, "2025-05-01", licence=licence, quantity_kg=Decimal("1000"))
    alert = fired(third, "licence_exceeded")
    assert alert is not None and "total 3,000 kg, over its maximum of 2,500 kg" in alert.explanation
    assert fired(first, "licence_exceeded") is None  # the earlier ones were within it
    big = antimony(world, "2025-01-01", licence=factories.licence(world.a, max_quantity_kg=Decimal("500")))
    alert = fired(big, "licence_exceeded")
    assert alert is not None and "This shipment's 1,000 kg exceed" in alert.explanation


def test_an_earlier_shipment_written_later_makes_the_later_one_exceed_its_licence(world):
    licence = factories.licence(world.a, max_quantity_kg=Decimal("1500"))
    later = antimony(world, "2025-05-01", licence=licence)
    services.records_changed("shipments.shipment", [later.pk])
    assert not Alert.objects.filter(rule="licence_exceeded").exists()
    earlier = antimony(world, "2025-03-01", licence=licence)
    services.records_changed("shipments.shipment", [earlier.pk])  # as the outbox does after its commit
    assert list(Alert.objects.filter(rule="licence_exceeded", status="open").values_list("shipment", flat=True)) \
        == [later.pk]
    Shipment.objects.filter(pk=earlier.pk).update(archived=True)
    services.records_changed("shipments.shipment", [earlier.pk])
    assert not Alert.objects.filter(rule="licence_exceeded", status="open").exists()


# --- third_country_transit -------------------------------------------------------------------------------------


def test_transit_through_a_third_country(world, settings):
    direct = antimony(world, "2025-03-01")
    assert fired(direct, "third_country_transit") is None
    legs = ({"from_country": "CN", "from_port": "Pingxiang", "to_country": "VN", "to_port": "Hai Phong",
             "departed_on": date(2025, 3, 1)}, {"from_country": "VN", "from_port": "Hai Phong", "to_country": "DE"})
    via_hub = fired(antimony(world, legs=legs), "third_country_transit")
    assert via_hub is not None and via_hub.severity == "high"
    assert "through VN (Hai Phong), a transit hub" in via_hub.explanation
    settings.ALERT_TRANSIT_HUBS = []
    plain = fired(antimony(world, legs=legs), "third_country_transit")
    assert plain is not None and plain.severity == "medium"


# --- misdeclared_commodity and value_anomaly ---------------------------------------------------------------------


def test_misdeclared_commodity(world):
    assert fired(antimony(world), "misdeclared_commodity") is None
    as_lead = fired(antimony(world, declared_hs_code="7801", declared_description="Antimony ingots"),
                    "misdeclared_commodity")
    assert as_lead is not None and "declared under HS 7801, which is not among Antimony's codes" in as_lead.explanation
    described = fired(antimony(world, declared_description="Unwrought lead alloy"), "misdeclared_commodity")
    assert described is not None and "does not name Antimony" in described.explanation
    # Declared under gallium's code at an antimony price: implausible for the code.
    priced = fired(antimony(world, commodity_id=None, hs_code="", declared_hs_code="811292",
                            declared_description="Gallium metal", declared_value=Decimal("40000")),
                   "misdeclared_commodity")
    assert priced is not None and "40.00 USD/kg, implausible for HS 811292" in priced.explanation
    cheap = antimony(world, declared_value=Decimal("1000"))  # declared as what it is: value_anomaly's, not this
    assert fired(cheap, "misdeclared_commodity") is None and fired(cheap, "value_anomaly") is not None


def test_value_anomaly(world, settings):
    assert fired(antimony(world, declared_value=Decimal("30000")), "value_anomaly") is None  # 30 USD/kg of 40
    cheap = fired(antimony(world, declared_value=Decimal("1300")), "value_anomaly")
    assert cheap is not None and "1.30 USD/kg" in cheap.explanation and "3.2%" in cheap.explanation
    assert fired(antimony(world, declared_value=Decimal("1300"), currency="EUR"), "value_anomaly") is None
    settings.ALERT_VALUE_RATIO = 0.01
    assert fired(antimony(world, declared_value=Decimal("1300")), "value_anomaly") is None


# --- new_company -------------------------------------------------------------------------------------------------


def test_new_company(world):
    shell = factories.organization(world.a, "Silver Peak", incorporated_on=date(2024, 9, 23))
    old = factories.organization(world.a, "Nordwerk", incorporated_on=date(1998, 6, 15))
    antimony(world, "2024-11-01", consignee=shell, consignor=old)
    antimony(world, "2025-06-01", consignee=shell)
    alert = fired(shell, "new_company")
    assert alert is not None and "first shipment" in alert.explanation and "39 days after" in alert.explanation
    assert alert.related[0]["type"] == "shipment"
    assert fired(old, "new_company") is None
    unshipped = factories.organization(world.a, "Fresh Ltd", incorporated_on=date(2025, 1, 1))
    assert fired(unshipped, "new_company") is None


# --- shared_address, shared_phone, shared_officer ----------------------------------------------------------------


@pytest.fixture
def ring(world) -> Any:
    case = factories.case(world.a, title="Grey Ore")
    wife = factories.person(world.a, "Chen Xiuying", phones=["+85291837264"],
                            addresses=[{"text": "Flat 9C, Block 2, Lotus Terrace, Yau Ma Tei, Kowloon"}])
    factories.party(case, wife, role="facilitator")
    witness = factories.person(world.a, "Harbour Clerk", phones=["+85290000000"],
                               addresses=[{"text": "1 Harbour Road, Wan Chai"}])
    factories.party(case, witness, role="witness")
    return case, wife, witness


def test_shared_address_and_phone_with_a_suspect(world, ring):
    case, wife, _ = ring
    shell = factories.organization(world.a, "Grand Harvest", phones=["+85291837264"],
                                   addresses=[{"text": "FLAT 9C BLOCK 2, LOTUS TER., YAU MA TEI, KOWLOON"}])
    address = fired(shell, "shared_address")
    assert address is not None and address.case_id == case.pk
    assert "Chen Xiuying (facilitator in" in address.explanation
    assert [(i["type"], i["id"]) for i in address.related] == [("person", str(wife.pk)), ("case", str(case.pk))]
    assert fired(shell, "shared_phone") is not None
    # A witness's address and phone are no red flag; nor is an address of another agency's.
    beside = factories.organization(world.a, "Harbour Co", phones=["+85290000000"],
                                    addresses=[{"text": "1 Harbour Road, Wan Chai"}])
    assert fired(beside, "shared_address") is None and fired(beside, "shared_phone") is None
    other = factories.organization(world.b, "Grand Harvest", phones=["+85291837264"],
                                   addresses=[{"text": "Flat 9C, Block 2, Lotus Terrace, Yau Ma Tei, Kowloon"}])
    assert fired(other, "shared_address") is None and fired(other, "shared_phone") is None


def test_shared_officer_with_a_suspect(world, ring):
    case, wife, witness = ring
    shell = factories.organization(world.a, "Grand Harvest")
    factories.link(world.a, wife, shell, kind="directorship")
    alert = fired(shell, "shared_officer")
    assert alert is not None and alert.case_id == case.pk
    assert "director Chen Xiuying is a facilitator" in alert.explanation
    # Sharing an owner with a company that is a suspect of the case.
    front = factories.organization(world.a, "Front Co")
    factories.party(case, front, role="suspect")
    owner = factories.person(world.a, "Nominee")
    factories.link(world.a, owner, front, kind="ownership")
    sister = factories.organization(world.a, "Sister Co")
    factories.link(world.a, owner, sister, kind="ownership")
    alert = fired(sister, "shared_officer")
    assert alert is not None and "also directs or owns Front Co, a suspect" in alert.explanation
    employer = factories.organization(world.a, "Employer")
    factories.link(world.a, wife, employer, kind="employment")
    factories.link(world.a, witness, employer, kind="directorship")
    assert fired(employer, "shared_officer") is None


# --- watchlist_match ---------------------------------------------------------------------------------------------


def test_watchlist_match_on_a_party(world):
    entry = factories.listed(world.a, "Silver Peak Resources Pte Ltd", programmes=("IRAN", "SDGT"))
    consignee = factories.organization(world.a, "Silver Peak Resources Pte. Ltd.")
    antimony(world, consignee=consignee)
    factories.match(consignee, entry, score=0.93, explanation="name 0.97 (Silver Peak Resources)")
    alert = fired(consignee, "watchlist_match")
    assert alert is not None and alert.severity == "high"
    assert "Silver Peak Resources Pte Ltd on ofac-sdn (IRAN, SDGT), score 0.93" in alert.explanation
    assert alert.related == [{"type": "organization", "id": str(entry.pk), "label": entry.name, "list": "ofac-sdn",
                              "programmes": ["IRAN", "SDGT"], "score": 0.93,
                              "reasons": "name 0.97 (Silver Peak Resources)"}]
    assert fired(entry, "watchlist_match") is None  # the listed entry itself is never the subject


def test_watchlist_match_needs_a_live_match_of_a_party_to_a_listed_entry(world, settings):
    entry = factories.listed(world.a, "Ivan Petrov", entity_type="person")
    not_a_party = factories.person(world.a, "Ivan Petrov")
    factories.match(not_a_party, entry)
    assert fired(not_a_party, "watchlist_match") is None
    case = factories.case(world.a)
    rejected, weak, plain = (factories.person(world.a, "Ivan Petrov") for _ in range(3))
    for person in (rejected, weak, plain):
        factories.party(case, person, role="witness")
    factories.match(rejected, entry, status="rejected")
    factories.match(weak, entry, score=settings.XREF_PROPOSE_THRESHOLD - 0.1)
    factories.match(plain, factories.person(world.a, "Ivan Petrov (not listed)"))
    for person in (rejected, weak, plain):
        assert fired(person, "watchlist_match") is None
    other_agency = factories.listed(world.b, "Ivan Petrov", entity_type="person")
    factories.match(plain, other_agency)
    assert fired(plain, "watchlist_match") is None
    factories.match(plain, entry, score=0.8)
    assert fired(plain, "watchlist_match") is not None


def test_a_write_re_evaluates_what_it_touches(world, ring):
    case, wife, _ = ring
    shell = factories.organization(world.a, "Grand Harvest", phones=["+85299999999"])
    services.records_changed("entities.organization", [shell.pk])
    assert not Alert.objects.filter(entity=shell).exists()
    # The suspect's new phone is the company's: the company is evaluated with her.
    wife.phones = ["+85299999999"]
    wife.save()
    services.records_changed("entities.person", [wife.pk])
    assert Alert.objects.filter(entity=shell, rule="shared_phone", status="open", case=case).exists()
    # A listed entry written (an import of its list) screens the parties matched to it.
    consignee = factories.organization(world.a, "Ivan Petrov Trading")
    antimony(world, consignee=consignee)
    entry = factories.listed(world.a, "IVAN PETROV TRADING")
    factories.match(consignee, entry)
    services.records_changed("entities.organization", [entry.pk])
    assert Alert.objects.filter(entity=consignee, rule="watchlist_match", status="open").exists()
    # A link's ends.
    director = factories.organization(world.a, "Directed Co")
    link = factories.link(world.a, wife, director, kind="directorship")
    services.records_changed("entities.link", [link.pk])
    assert Alert.objects.filter(entity=director, rule="shared_officer", status="open").exists()


# --- one alert per rule and subject --------------------------------------------------------------------------------


def test_evaluating_twice_settles_to_one_alert_and_a_fix_closes_it(world):
    shipment = antimony(world, "2025-03-01")
    evaluate_shipments([shipment.pk])
    first = list(Alert.objects.filter(shipment=shipment).values_list("id", "version"))
    events = AuditEvent.objects.filter(object_type="alert").count()
    assert evaluate_shipments([shipment.pk])["created"] == 0
    assert list(Alert.objects.filter(shipment=shipment).values_list("id", "version")) == first
    assert AuditEvent.objects.filter(object_type="alert").count() == events

    shipment.licence = factories.licence(world.a, valid_from=date(2025, 1, 1))
    shipment.save()
    evaluate_shipments([shipment.pk])
    closed = Alert.objects.get(shipment=shipment, rule="unlicensed_export")
    assert closed.status == "dismissed" and closed.closed_reason == services.RESOLVED
    shipment.licence = None
    shipment.save()
    evaluate_shipments([shipment.pk])
    closed.refresh_from_db()
    assert closed.status == "open" and not closed.closed_reason  # fires again: the same alert, reopened


def test_a_user_dismissed_alert_stays_dismissed(world):
    shipment = antimony(world, "2025-03-01")
    alert = fired(shipment, "unlicensed_export")
    assert alert is not None
    Alert.objects.filter(pk=alert.pk).update(status="dismissed", status_changed_at=timezone.now())
    evaluate_shipments([shipment.pk])
    alert.refresh_from_db()
    assert alert.status == "dismissed" and not alert.closed_reason


def test_an_archived_subject_closes_its_alerts(world):
    shipment = antimony(world, "2025-03-01")
    assert fired(shipment, "unlicensed_export") is not None
    Shipment.objects.filter(pk=shipment.pk).update(archived=True)
    evaluate_shipments([shipment.pk])
    assert not Alert.objects.filter(shipment=shipment, status="open").exists()


# --- the full pass ------------------------------------------------------------------------------------------------


def test_a_full_pass_evaluates_every_shipment_and_entity_of_the_agency(world, settings):
    settings.ALERT_RUN_PARTS = 3
    shell = factories.organization(world.a, "Shell", incorporated_on=date(2025, 2, 1))
    for day in range(1, 5):
        antimony(world, f"2025-03-0{day}", consignee=shell)
    antimony(world, "2024-09-14")
    factories.shipment(world.b, commodity_id="antimony", origin_country="CN")  # another agency's, undated

    out = StringIO()
    call_command("alerts", "--agency", "SSB", "--sync", stdout=out)
    run = AlertRun.objects.get(agency=world.a)
    assert run.status == "succeeded" and run.parts == len(run.done_parts) == 3, out.getvalue()
    assert run.counts["evaluated"] == 5 + 1 + Shipment.objects.filter(agency=world.a).count() - 5
    assert Alert.objects.filter(agency=world.a, rule="unlicensed_export").count() == 4
    assert Alert.objects.filter(agency=world.a, rule="new_company", entity=shell).count() == 1
    assert not Alert.objects.filter(agency=world.b).exists()
    assert "SSB: succeeded" in out.getvalue()

    call_command("alerts", "--agency", "SSB", "--sync", stdout=StringIO())
    assert AlertRun.objects.filter(agency=world.a).latest("created_at").counts.get("created", 0) == 0


def test_the_command_refuses_bad_input(world):
    with pytest.raises(CommandError, match="No agency with code 'NOPE'"):
        call_command("alerts", "--agency", "NOPE")
    assert not AlertRun.objects.exists()
    call_command("alerts", "--agency", "SSB", stdout=(out := StringIO()))
    assert "queued alerts run" in out.getvalue()
    call_command("alerts", "--agency", "SSB", stdout=(out := StringIO()))
    assert "queued already" in out.getvalue() or "is queued already" in out.getvalue()
