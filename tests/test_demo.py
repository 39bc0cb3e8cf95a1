"""`manage.py load_demo`: idempotent, audited, and the access rules hold on the demo cases."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command

from accounts.models import Agency, User
from audit.models import AuditEvent, ChainHead
from audit.services import verify_chain
from cases.commodities import seed_commodities
from cases.management.commands import load_demo as load_demo_module
from cases.management.commands.load_demo import BACKGROUND_SOURCE, DEMO_PASSWORD, read
from cases.models import Case, CaseParty, CaseShare, Commodity, Note, Prosecution
from core.snapshots import diff, snapshot
from entities import validators
from entities.models import Entity, Link, Organization, Person
from entities.rules import LINK_ENDS
from shipments.models import Licence, Shipment

pytestmark = pytest.mark.django_db

# The demo data are files (cases/demo/*.jsonl); cases are named by their key.
GREY_ORE, GALLIUM_PORT, DARK_CRYSTAL = "grey-ore", "gallium-port", "dark-crystal"
CASES = {case["key"]: case for case in read("cases")}


def load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def demo_case(key: str) -> Case:
    spec = CASES[key]
    return Case.objects.get(agency__code=spec["agency"], title=spec["title"])


@pytest.fixture
def demo() -> str:
    # Commodities are seeded by a data migration; a transactional test's flush empties the table of a
    # reused test database, so put them back (idempotent) before loading.
    seed_commodities(Commodity)
    return load()


def test_load_demo_twice_changes_nothing(demo):
    assert DEMO_PASSWORD in demo
    assert "issue_token demo-investigator" in demo
    counts, events = row_counts(), AuditEvent.objects.count()
    heads = dict(ChainHead.objects.values_list("chain", "last_seq"))

    again = load()

    assert row_counts() == counts
    assert AuditEvent.objects.count() == events
    assert dict(ChainHead.objects.values_list("chain", "last_seq")) == heads
    assert "nothing changed" in again


def test_every_demo_record_is_audited_and_the_chains_hold(demo):
    records = [*Person.objects.all(), *Organization.objects.all(), *Case.objects.all(),
               *CaseParty.objects.all(), *Note.objects.all(), *CaseShare.objects.all()]
    assert records
    audited = set(AuditEvent.objects.filter(action__in=["create", "share"]).values_list("object_id", flat=True))
    assert {str(r.pk) for r in records} <= audited
    for chain in ChainHead.objects.values_list("chain", flat=True):
        assert verify_chain(chain).ok, chain


def test_accounts(demo):
    for prefix, agency, unit in (("demo", "SSB", "econ"), ("asb", "ASB", "ports")):
        for role in ("viewer", "analyst", "investigator", "supervisor", "auditor", "agency_admin"):
            user = User.objects.select_related("agency", "unit").get(username=f"{prefix}-{role}")
            assert user.agency is not None and user.unit is not None
            assert (user.agency.code, user.unit.code, user.role) == (agency, unit, role)
            assert user.is_staff and not user.is_superuser and user.check_password(DEMO_PASSWORD)
    assert User.objects.get(username="demo-analyst").clearance == "confidential"
    assert User.objects.get(username="asb-viewer").clearance == "restricted"
    assert User.objects.get(username="demo-supervisor").clearance == "secret"
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.agency is None and admin.check_password(DEMO_PASSWORD)
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == ["admin"]


def test_the_antimony_case(demo):
    case = demo_case(GREY_ORE)
    assert case.reference.startswith("SSB-")
    assert (case.classification, case.priority, case.status) == ("confidential", "high", "investigating")
    assert case.unit is not None and case.lead is not None
    assert (case.unit.code, case.lead.username) == ("econ", "demo-investigator")
    assert [u.username for u in case.members.all()] == ["demo-analyst"]
    assert [c.code for c in case.commodities.all()] == ["antimony"]
    assert case.parties.filter(custody_status="arrested", entity__type="person").count() == 8
    ringleader = case.parties.get(role="ringleader")
    assert ringleader.custody_status == "wanted"
    assert ringleader.entity.type == "person" and "罗建国" in ringleader.entity.names
    assert set(case.parties.filter(entity__kind="shell_company")
               .values_list("entity__jurisdiction", flat=True)) >= {"HK", "SG", "AE"}
    assert case.notes.filter(author__username="demo-investigator").count() >= 2


def test_access_to_the_demo_cases(demo, client_for):
    ssb_case, asb_case = demo_case(GREY_ORE), demo_case(GALLIUM_PORT)
    demo_inv = client_for(User.objects.get(username="demo-investigator"))
    asb_inv = client_for(User.objects.get(username="asb-investigator"))

    assert demo_inv.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 200
    assert asb_inv.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 404
    assert asb_inv.get(f"/api/v1/cases/{ssb_case.pk}/parties/").status_code == 404

    # ASB's case is shared read-only with SSB.
    shared = demo_inv.get(f"/api/v1/cases/{asb_case.pk}/")
    assert shared.status_code == 200, shared.json()
    assert shared.json()["agency"] == "ASB"
    listed = {c["id"] for c in demo_inv.get("/api/v1/cases/", {"page_size": 500}).json()["results"]}
    assert {str(ssb_case.pk), str(asb_case.pk)} <= listed
    assert demo_inv.get(f"/api/v1/cases/{asb_case.pk}/parties/").json()["count"] == 4
    edit = demo_inv.patch(f"/api/v1/cases/{asb_case.pk}/", {"title": "Taken over"}, format="json")
    assert edit.status_code == 403
    note = demo_inv.post(f"/api/v1/cases/{asb_case.pk}/notes/", {"body": "SSB was here"}, format="json")
    assert note.status_code == 403
    asb_case.refresh_from_db()
    assert asb_case.title == CASES[GALLIUM_PORT]["title"]
    assert asb_inv.get(f"/api/v1/cases/{asb_case.pk}/").status_code == 200

    # Clearance still applies: the viewer (restricted) does not see the confidential case.
    viewer = client_for(User.objects.get(username="demo-viewer"))
    assert viewer.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 404


# --- links, licences, shipments, prosecutions and the background --------------------------------

def ssb(source_id: str) -> Entity:
    return Entity.objects.get(agency__code="SSB", source="demo", source_id=source_id)


def test_the_rings_persons_and_links(demo):
    entities = Entity.objects.filter(source="demo")
    assert entities.filter(type="person").exclude(identifiers=[]).count() >= 12
    for entity in entities:
        assert validators.normalize_phones(entity.phones) == entity.phones, entity.name
        assert validators.normalize_emails(entity.emails) == entity.emails, entity.name
        for item in entity.identifiers:
            assert validators.normalize_identifier(item["scheme"], item["number"], item["country"]) == item
        for address in entity.addresses:
            assert address["text"] and validators.normalize_country(address["country"]) == address["country"]
        for country in [*entity.nationalities, entity.jurisdiction]:
            assert validators.normalize_country(country) == country
        if entity.registration_number:
            assert validators.normalize_registration_number(entity.registration_number, entity.jurisdiction) == (
                entity.registration_number)
    ringleader = ssb("luo-jianguo")
    assert "432502196903183135" in ringleader.identifier_numbers and "+971504817263" in ringleader.phones
    # A shell company shares a phone with a suspect: something for cross-referencing to find.
    assert set(ssb("grand-harvest-hk").phones) & set(ssb("chen-xiuying").phones)

    # The links between them.
    case = demo_case(GREY_ORE)
    links = Link.objects.filter(agency__code="SSB", provenance_source="demo").select_related("source", "target")
    assert links.count() >= 20 and all(link.case_id == case.pk for link in links)
    for link in links:  # the API's rules on which entities a kind of link joins
        source_types, target_types, _ = LINK_ENDS[link.kind]
        assert link.source.type in source_types and link.target.type in target_types, link

    family = {(link.source.source_id, link.target.source_id): link.subtype for link in links.filter(kind="family")}
    assert family[("luo-jianguo", "luo-jianhua")] == "sibling"
    assert family[("luo-jianguo", "chen-xiuying")] == "spouse"
    assert family[("luo-jianguo", "luo-zhiyong")] == "cousin"
    assert family[("wu-haifeng", "luo-jianguo")] == "in_law"
    assert set(family.values()) == {"sibling", "spouse", "cousin", "in_law"}

    owners = {link.source.source_id: link.share_pct for link in
              links.filter(kind="ownership", target__source_id="silver-peak-sg")}
    assert owners == {"gulf-meridian-ae": Decimal("70.000"), "luo-jianhua": Decimal("30.000")}
    nominees = links.filter(kind="directorship", subtype="nominee_director")
    assert {link.source.source_id for link in nominees} == {"chen-xiuying", "luo-meiling"}
    assert all(link.target.kind == "shell_company" for link in nominees)

    financier = case.parties.get(role="financier").entity
    paid = links.filter(kind="financing", source=financier)
    assert paid.count() >= 3
    assert all(link.amount and link.amount > 0 and link.currency == "CNY" for link in paid)
    assert links.filter(kind="financing", target=financier, currency="USD").exists()


def test_the_rings_licences_and_shipments(demo):
    case = demo_case(GREY_ORE)
    licences = Licence.objects.filter(agency__code="SSB", number__startswith="MOFCOM-EXP-", holder__source="demo")
    assert {(lic.holder.source_id, lic.status) for lic in licences} == {("hunan-yuanfeng", "valid"),
                                                                         ("guangxi-jinshan", "expired")}
    shipments = case.shipments.all()
    assert shipments.count() == 4
    for shipment in shipments:
        legs = list(shipment.legs.all())
        assert [leg.seq for leg in legs] == list(range(1, len(legs) + 1))
        assert shipment.transit_countries and shipment.departed_on == legs[0].departed_on
        assert legs[0].from_country == shipment.origin_country == "CN"
        assert legs[-1].to_country == shipment.destination_country
        assert shipment.consignor is not None and shipment.consignor.agency_id == shipment.agency_id == case.agency_id
    assert {tuple(s.transit_countries) for s in shipments} >= {("VN", "TH"), ("VN",), ("TH",)}

    seized = shipments.get(status="seized")
    assert seized.seized_on == date(2026, 9, 9) and seized.seized_quantity_kg == seized.quantity_kg
    assert "Pingxiang" in seized.seizure_location
    misdeclared = [s for s in shipments if s.declared_hs_code != s.hs_code]
    assert misdeclared and all(s.declared_hs_code in ("7801", "7901") for s in misdeclared)
    assert all(s.commodity is not None and s.hs_code in s.commodity.hs_codes for s in shipments)
    assert shipments.filter(licence__isnull=True).count() >= 2
    expired = shipments.get(licence__status="expired")
    assert expired.licence is not None and expired.licence.valid_to and expired.departed_on
    assert expired.departed_on > expired.licence.valid_to  # shipped under a licence that had run out
    licensed = Shipment.objects.get(source="demo", source_id="yuanfeng-2025-06-licensed")
    assert licensed.licence is not None
    assert (licensed.licence.status, licensed.transit_countries, list(licensed.cases.all())) == ("valid", [], [])


def test_the_prosecutions_of_the_arrested(demo):
    case = demo_case(GREY_ORE)
    arrested = set(case.parties.filter(custody_status="arrested").values_list("entity_id", flat=True))
    prosecutions = Prosecution.objects.filter(case=case).prefetch_related("charges")
    assert {p.defendant_id for p in prosecutions} == arrested and len(arrested) == 8
    assert {p.stage for p in prosecutions} == {"investigation", "indicted", "trial", "verdict", "appeal", "final"}
    for prosecution in prosecutions:
        assert prosecution.charges.exists()
        assert [c.seq for c in prosecution.charges.all()] == list(range(1, prosecution.charges.count() + 1))
        sentenced = prosecution.custody_months is not None or prosecution.fine_amount is not None
        if prosecution.stage in ("verdict", "appeal", "final"):
            assert prosecution.verdict == "convicted" and sentenced and prosecution.fine_currency == "CNY"
            assert prosecution.verdict_on and prosecution.filed_on and prosecution.verdict_on >= prosecution.filed_on
        else:
            assert prosecution.verdict == "pending" and not sentenced and prosecution.verdict_on is None
    statutes = {c.statute for p in prosecutions for c in p.charges.all()}
    assert {"Export Control Law Art. 34", "Customs Law Art. 82"} <= statutes
    # Audited with their charges.
    final = prosecutions.get(stage="final")
    event = AuditEvent.objects.get(object_id=str(final.pk), action="create")
    assert [c["statute"] for c in event.changes["charges"][1]] == [c.statute for c in final.charges.all()]
    assert event.case_id == case.pk
    # Every other new kind of record is audited one by one too.
    records = [*Link.objects.all(), *Licence.objects.all(), *Prosecution.objects.all(),
               *Shipment.objects.filter(source="demo")]
    assert len(records) > 40
    audited = set(AuditEvent.objects.filter(action="create").values_list("object_id", flat=True))
    assert {str(r.pk) for r in records} <= audited


def test_a_second_group_in_another_agency(demo, client_for):
    case = demo_case(DARK_CRYSTAL)
    assert case.agency.code == "ASB" and [c.code for c in case.commodities.all()] == ["germanium"]
    assert case.parties.count() == 6 and case.parties.filter(custody_status="arrested").count() == 2
    shipment = case.shipments.get()
    assert (shipment.status, shipment.transit_countries, shipment.hs_code) == ("seized", ["VN"], "811292")
    assert shipment.declared_hs_code != shipment.hs_code
    assert {p.stage for p in case.prosecutions.all()} == {"indicted", "investigation"}
    assert len([p for p in read("prosecutions") if p["case"] == DARK_CRYSTAL]) == case.prosecutions.count()
    assert Link.objects.filter(case=case, kind="family", subtype="spouse").exists()
    # Not shared: SSB does not see it.
    ssb_inv = client_for(User.objects.get(username="demo-investigator"))
    assert ssb_inv.get(f"/api/v1/cases/{case.pk}/").status_code == 404
    assert demo_case(GALLIUM_PORT).shipments.get().transit_countries == ["VN"]


def test_the_two_agencies_each_see_a_deconfliction_hit_on_silver_peak(demo, client_for):
    """After a cross-referencing pass, SSB and ASB each hold a hit on their own record of Silver Peak Resources
    (the shell company of SSB's antimony ring, consignee in ASB's gallium seizure), naming the other agency."""
    call_command("xref", "--sync", stdout=StringIO())
    agencies = {code: Agency.objects.get(code=code) for code in ("SSB", "ASB")}
    spelling = {"SSB": "Silver Peak Resources Pte. Ltd.", "ASB": "Silver Peak Resources Pte Ltd"}
    for code, theirs in (("SSB", "ASB"), ("ASB", "SSB")):
        api = client_for(User.objects.get(username=f"{'demo' if code == 'SSB' else 'asb'}-analyst"))
        response = api.get("/api/v1/xref/hits/", {"q": "silver peak"})
        assert response.status_code == 200
        (hit,) = response.json()["results"]
        own = Organization.objects.get(agency__code=code, source="demo", source_id="silver-peak-sg")
        assert hit["entity"] == {"type": "organization", "id": str(own.pk), "name": spelling[code]}
        other = agencies[theirs]
        assert hit["other_agency"] == {"code": theirs, "name": other.name, "contact": other.contact}
        assert hit["score"] >= 0.9


def test_background_shipments(demo):
    background = Shipment.objects.filter(source=BACKGROUND_SOURCE).select_related("consignor", "consignee")
    assert background.count() >= 300
    assert set(background.values_list("agency__code", flat=True)) == {"SSB", "ASB"}
    for field in ("status", "commodity_id", "destination_country"):
        assert background.values(field).distinct().count() >= 4, field
    assert background.exclude(transit_countries=[]).count() >= 50
    assert background.filter(status="seized", seized_on__isnull=False).exists()
    assert background.filter(licence__isnull=False).exists()
    for shipment in background:
        assert shipment.consignor is not None and shipment.consignee is not None
        assert shipment.consignor.agency_id == shipment.consignee.agency_id == shipment.agency_id
        legs = list(shipment.legs.all())
        assert legs and legs[0].from_country == shipment.origin_country
        assert legs[-1].to_country == shipment.destination_country
    # Each written by the shipment service with its own create event (no more one summary event per agency).
    assert not AuditEvent.objects.filter(action="import").exists()
    created = set(AuditEvent.objects.filter(action="create", object_type="shipment")
                  .values_list("object_id", flat=True))
    assert {str(pk) for pk in background.values_list("pk", flat=True)} <= created

    # The same on every run: lost ones come back as they were, and only they are created.
    def fields(shipment):
        return (shipment.reference, shipment.commodity_id, shipment.hs_code, shipment.declared_hs_code,
                shipment.quantity_kg, shipment.status, shipment.transit_countries, shipment.departed_on,
                shipment.consignor.source_id, shipment.consignee.source_id,
                [(leg.from_country, leg.to_country, leg.departed_on) for leg in shipment.legs.all()])

    lost = list(Shipment.objects.filter(source=BACKGROUND_SOURCE).order_by("source_id")[10:15])
    before = {s.source_id: fields(s) for s in lost}
    total = Shipment.objects.filter(source=BACKGROUND_SOURCE).count()
    for shipment in lost:
        shipment.legs.all().delete()
        shipment.delete()

    out = load()

    assert "created 5 background shipments" in out
    assert Shipment.objects.filter(source=BACKGROUND_SOURCE).count() == total
    again = Shipment.objects.filter(source=BACKGROUND_SOURCE, source_id__in=before)
    assert {s.source_id: fields(s) for s in again} == before


def test_load_demo_says_what_it_loaded():
    seed_commodities(Commodity)
    out = load()
    assert ", 300 background shipments" in out and "Background: 300 shipments" in out
    assert "4 shipments, 8 prosecutions" in out  # Operation Grey Ore


# --- one write path: the loader writes through the services, as the API does --------------------------


def test_every_demo_record_has_the_create_event_the_services_write(demo):
    """Each record's create event (a share's `share` event) holds {field: [None, value]} for the record as it
    was created: what the service writes for an API create too. Cases are created open, then moved on."""
    kinds = [Person, Organization, Link, Licence, Shipment, Case, CaseParty, Note, CaseShare, Prosecution]
    events = {(e.object_id, e.action): e for e in AuditEvent.objects.filter(action__in=["create", "share"])}
    checked = 0
    for model in kinds:
        for record in model._default_manager.all():
            action = "share" if model is CaseShare else "create"
            event = events[str(record.pk), action]
            expected = diff({}, snapshot(record))
            if model is Case:
                expected["status"] = [None, "open"]
                assert AuditEvent.objects.filter(object_id=str(record.pk), action="transition").count() == 1
            assert event.changes == expected, (model, record)
            assert all(old is None for old, _ in event.changes.values())
            if model is Shipment:
                assert {"legs", "cases"} <= set(event.changes) and event.changes["legs"][1], record
            checked += 1
    assert checked == 13 + 38 + 29 + 8 + 307 + 3 + 26 + 5 + 1 + 10


def test_a_demo_shipment_has_the_create_event_of_the_same_shipment_posted_to_the_api(demo, client_for):
    shipment = Shipment.objects.get(source="demo", source_id="go-2025-04-yuanfeng")
    spec = next(r for r in read("shipments") if r["source_id"] == shipment.source_id)
    payload = {k: v for k, v in spec.items() if k not in ("agency", "consignor", "consignee", "notify_party",
                                                          "ordering_party", "cases")}
    payload.update({role: {"type": "organization", "id": str(getattr(shipment, f"{role}_id"))}
                    for role in ("consignor", "consignee", "notify_party", "ordering_party")})
    payload.update(source_id="api-copy", cases=[str(demo_case(GREY_ORE).pk)])
    client = client_for(User.objects.get(username="demo-investigator"))

    response = client.post("/api/v1/shipments/", payload, format="json")

    assert response.status_code == 201, response.json()
    from_api = AuditEvent.objects.get(object_id=response.json()["id"], action="create")
    from_demo = AuditEvent.objects.get(object_id=str(shipment.pk), action="create")
    assert (from_api.object_type, from_api.agency_code) == (from_demo.object_type, from_demo.agency_code)
    assert from_api.changes.pop("source_id") == [None, "api-copy"]
    assert from_demo.changes.pop("source_id") == [None, shipment.source_id]
    assert from_api.changes == from_demo.changes


def test_the_loader_writes_only_through_services():
    """Every write is a service's: no save, bulk insert or update, model validation or audit event of its own."""
    source = Path(load_demo_module.__file__).read_text()
    for writer in (r"\.save\(", r"bulk_(create|update)", r"full_clean", r"\)\.update\(",
                   r"\.objects\.(create|get_or_create|update_or_create)\(", r"\.delete\(", r"\baudit_(create|change)\b",
                   r"\brecord(_many)?\(", r"copy_insert"):
        assert not re.search(writer, source), writer



def test_the_antimony_ring_raises_the_alerts_it_deserves(demo):
    from alerts.models import Alert

    out = StringIO()
    call_command("alerts", "--sync", stdout=out)
    assert "SSB: succeeded" in out.getvalue() and "ASB: succeeded" in out.getvalue()
    grey_ore = demo_case(GREY_ORE)
    ring = Alert.objects.filter(agency__code="SSB", status="open")

    def alert(rule: str, subject: str) -> Alert:
        found = ring.filter(rule=rule).filter(label=subject).first()
        assert found is not None, (rule, subject, list(ring.filter(rule=rule).values_list("label", flat=True)))
        return found

    # The unlicensed exports of antimony after 2024-09-15 (one under an expired licence for Korea is invalid).
    for reference in ("PXG-HPH-250408-01", "QZH-LCB-260312-07", "PXG-HPH-260907-03"):
        assert "without an export licence" in alert("unlicensed_export", reference).explanation
    invalid = alert("licence_invalid", "PXG-HPH-251103-02")
    assert "expired on 2025-10-07" in invalid.explanation and "not SG" in invalid.explanation
    assert not ring.filter(rule="unlicensed_export", label="SHA-HAM-250617-11").exists()  # licensed, to Hamburg
    # Through the third country, mis-declared as lead or zinc, far below antimony's value.
    transit = alert("third_country_transit", "PXG-HPH-250408-01")
    assert "VN (Hai Phong)" in transit.explanation and transit.severity == "high"
    assert "HS 7801" in alert("misdeclared_commodity", "PXG-HPH-250408-01").explanation
    assert alert("value_anomaly", "PXG-HPH-250408-01").case_id == grey_ore.pk
    # The shell company at the wife's flat in Kowloon, with her phone; she is its nominee director.
    wife = Person.objects.get(name="Chen Xiuying")
    shell = alert("shared_address", "Grand Harvest Trading Limited")
    assert "Chen Xiuying (facilitator in" in shell.explanation and shell.case_id == grey_ore.pk
    assert {"type": "person", "id": str(wife.pk)}.items() <= shell.related[0].items()
    assert alert("shared_phone", "Grand Harvest Trading Limited").case_id == grey_ore.pk
    assert "Luo Jianguo is a ringleader" in alert("shared_officer", "Gulf Meridian Metals FZE").explanation

    # A second pass changes nothing.
    before = sorted(Alert.objects.values_list("id", "version"))
    call_command("alerts", "--sync", "--agency", "SSB", stdout=StringIO())
    assert sorted(Alert.objects.values_list("id", "version")) == before
