"""The admin: same scoping as the API, the same rules, and every edit audited."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from audit.models import AuditEvent
from cases.models import Case, CustodyEntry, Evidence
from entities.models import Link
from shipments.models import Shipment

from . import factories
from .admin_forms import management as _management
from .admin_forms import prosecution_form as _prosecution_form

PASSWORD = factories.PASSWORD


@pytest.fixture
def staff_client():
    return factories.admin_client


def _case_form(case, **overrides):
    data = {
        "title": case.title, "summary": case.summary, "status": case.status, "priority": case.priority,
        "classification": case.classification, "unit": case.unit_id or "", "lead": case.lead_id or "",
        "opened_on": case.opened_on or "", "tags": ",".join(case.tags),
        "parties-TOTAL_FORMS": "0", "parties-INITIAL_FORMS": "0",
        "notes-TOTAL_FORMS": "0", "notes-INITIAL_FORMS": "0",
        "shares-TOTAL_FORMS": "0", "shares-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_staff_sees_only_cases_the_policy_allows(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    mine = factories.case(world.a, world.a1, title="Mine")
    other_unit = factories.case(world.a, world.a2, title="Other unit")
    foreign = factories.case(world.b, world.b1, title="Foreign")
    client = staff_client(user)
    page = client.get("/admin/cases/case/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Mine" in text and "Other unit" not in text and "Foreign" not in text
    assert client.get(f"/admin/cases/case/{mine.pk}/change/").status_code == 200
    for hidden in (other_unit, foreign):
        response = client.get(f"/admin/cases/case/{hidden.pk}/change/", follow=True)
        assert hidden.title not in response.content.decode()


def test_admin_edit_is_audited(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, title="Before")
    client = staff_client(user)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, title="After"))
    assert response.status_code == 302, response.content.decode()[:2000]
    case.refresh_from_db()
    assert case.title == "After" and case.version == 2
    event = AuditEvent.objects.filter(object_id=str(case.pk), action="update").latest("at")
    assert event.actor == user.username
    assert event.changes["title"] == ["Before", "After"]


def test_admin_obeys_the_status_machine(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, status="open")
    client = staff_client(user)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, status="closed"))
    assert response.status_code == 200  # the form comes back with an error
    case.refresh_from_db()
    assert case.status == "open"
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, status="investigating"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(object_id=str(case.pk), action="transition").exists()


def test_viewer_cannot_change_in_admin(world, staff_client):
    viewer = factories.user(world.a, "viewer", world.a1)
    case = factories.case(world.a, world.a1, title="Read only")
    client = staff_client(viewer)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, title="Changed"))
    assert response.status_code in (302, 403)
    case.refresh_from_db()
    assert case.title == "Read only"


def test_admin_creates_a_case_with_a_reference_and_audit(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    client = staff_client(user)
    data = _case_form(Case(title="New in admin", status="open", priority="medium", classification="restricted",
                           unit=world.a1, tags=[]))
    response = client.post("/admin/cases/case/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    case = Case.objects.get(title="New in admin")
    assert case.agency == world.a and case.reference.startswith("SSB-")
    assert AuditEvent.objects.filter(object_id=str(case.pk), action="create").exists()


def test_audit_events_are_read_only_in_admin(world, staff_client):
    auditor = factories.user(world.a, "auditor", world.a1)
    client = staff_client(auditor)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    event = AuditEvent.objects.filter(chain=str(world.a.pk)).first()
    assert event is not None  # the auditor's own sign-in
    response = client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "view"})
    assert response.status_code == 403
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403


def test_admin_sign_in_is_audited_and_locks_out(world, settings):
    user = factories.user(world.a, "investigator", world.a1, is_staff=True)
    client = Client()
    for _ in range(settings.AUTH_LOCKOUT_THRESHOLD):
        assert not client.login(username=user.username, password="wrong")
    assert not client.login(username=user.username, password=PASSWORD)
    assert AuditEvent.objects.filter(actor=user.username, action="login_failed").count() == (
        settings.AUTH_LOCKOUT_THRESHOLD + 1
    )


# --- the master index, shipments, prosecutions and evidence in the admin ------------------------

ROUTE = (
    {"from_country": "CN", "from_port": "Pingxiang", "to_country": "VN", "to_port": "Hai Phong", "mode": "road",
     "departed_on": "2026-03-02"},
    {"from_country": "VN", "from_port": "Hai Phong", "to_country": "TH", "to_port": "Laem Chabang", "mode": "sea",
     "departed_on": "2026-03-09"},
    {"from_country": "TH", "from_port": "Laem Chabang", "to_country": "AE", "to_port": "Jebel Ali", "mode": "sea",
     "departed_on": "2026-03-15"},
)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _shipment_form(**overrides):
    data = {
        "reference": "BL-ADMIN-1", "status": "declared", "commodity": "antimony", "hs_code": "8110.10",
        "declared_hs_code": "7801", "declared_description": "lead alloy", "quantity_kg": "20000",
        "origin_country": "cn", "destination_country": "AE", "currency": "usd", "declared_value": "30000",
        **_management("legs"),
    }
    data.update(overrides)
    return data


def _legs(legs, prefix="legs", existing=()):
    data = {f"{prefix}-TOTAL_FORMS": str(len(legs)), f"{prefix}-INITIAL_FORMS": str(len(existing))}
    for i, leg in enumerate(legs):
        row = {"seq": str(i + 1), **leg}
        if i < len(existing):
            row["id"] = str(existing[i].pk)
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def _ids(queryset):
    return {str(pk) for pk in queryset.values_list("pk", flat=True)}


def test_changelists_show_only_the_agencys_own_records(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    mine = factories.person(world.a, "Luo Jianhua")
    theirs = factories.person(world.b, "Deng Kaiwen")
    my_org, their_org = factories.organization(world.a, "Grand Harvest"), factories.organization(world.b, "Xinrui")
    my_ship = factories.shipment(world.a, reference="BL-MINE", consignor=my_org)
    their_ship = factories.shipment(world.b, reference="BL-THEIRS", consignor=their_org)
    factories.link(world.a, mine, factories.person(world.a, "Luo Meiling"), kind="family", subtype="sibling")
    factories.link(world.b, theirs, factories.person(world.b, "Wang Qiang"), kind="associate")
    factories.licence(world.a, my_org, number="LIC-MINE")
    factories.licence(world.b, their_org, number="LIC-THEIRS")
    client = staff_client(user)

    pages = {
        "/admin/entities/person/": ("Luo Jianhua", "Deng Kaiwen"),
        "/admin/entities/organization/": ("Grand Harvest", "Xinrui"),
        "/admin/shipments/shipment/": ("BL-MINE", "BL-THEIRS"),
        "/admin/entities/link/": ("Luo Meiling", "Wang Qiang"),
        "/admin/shipments/licence/": ("LIC-MINE", "LIC-THEIRS"),
    }
    for url, (shown, hidden) in pages.items():
        page = client.get(url)
        assert page.status_code == 200, url
        assert shown in page.content.decode() and hidden not in page.content.decode(), url

    assert client.get(f"/admin/entities/person/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/shipments/shipment/{my_ship.pk}/change/").status_code == 200
    for url in (f"/admin/entities/person/{theirs.pk}/change/", f"/admin/shipments/shipment/{their_ship.pk}/change/",
                f"/admin/entities/entity/{theirs.pk}/change/"):
        response = client.get(url, follow=True)
        assert "Deng Kaiwen" not in response.content.decode() and "BL-THEIRS" not in response.content.decode()
    # The hidden entity admin sends an entity to its typed page.
    assert client.get(f"/admin/entities/entity/{mine.pk}/change/")["Location"] == (
        f"/admin/entities/person/{mine.pk}/change/")
    # The other agency's record cannot be changed by posting either.
    response = client.post(f"/admin/entities/person/{theirs.pk}/change/", {"name": "Taken over"})
    theirs.refresh_from_db()
    assert theirs.name == "Deng Kaiwen" and response.status_code in (302, 403)


def test_autocomplete_offers_only_own_agency_records_even_when_shared(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    mine = factories.organization(world.a, "Silver Peak Resources")
    theirs = factories.organization(world.b, "Silver Peak Resources Pte Ltd")
    their_case = factories.case(world.b, world.b1)
    factories.party(their_case, theirs, role="buyer")
    factories.share(their_case, world.a, access="read")
    client = staff_client(user)
    # Visible through the share (read-only) …
    assert "Silver Peak Resources Pte Ltd" in client.get("/admin/entities/organization/").content.decode()
    # … but a shipment of SSB may not name it.
    response = client.get("/admin/autocomplete/", {"app_label": "shipments", "model_name": "shipment",
                                                   "field_name": "consignee", "term": "silver peak"})
    assert response.status_code == 200
    assert {r["id"] for r in response.json()["results"]} == {str(mine.pk)}
    # A prosecution may name only cases the user may write: not the one shared read-only.
    my_case = factories.case(world.a, world.a1)
    response = client.get("/admin/autocomplete/", {"app_label": "cases", "model_name": "prosecution",
                                                   "field_name": "case", "term": ""})
    assert {r["id"] for r in response.json()["results"]} == {str(my_case.pk)}
    # Posting the foreign id anyway is a form error on that field, and nothing is written.
    response = client.post("/admin/shipments/shipment/add/", _shipment_form(consignee=str(theirs.pk)))
    assert response.status_code == 200
    assert "consignee" in response.context["adminform"].form.errors
    assert not Shipment.objects.exists()


def test_person_edit_in_admin_applies_the_api_rules_and_is_audited(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    person = factories.person(world.a, "Luo Jianhua", names=["罗建华"], nationalities=["CN"])
    client = staff_client(user)
    form = {"name": "Luo  Jianhua", "names": ["罗建华", "LUO Jian Hua", ""], "gender": "male",
            "birth_date": "1972-11-02", "birth_place": "Lengshuijiang", "nationalities": "cn, hk",
            "identifiers-scheme": [""], "identifiers-number": [""], "identifiers-country": [""],
            "addresses-text": ["8  Yuanfeng Road, Lengshuijiang", ""], "addresses-country": ["cn", ""],
            "phones": ["138 0013 8000", ""], "emails": ["Luo.JH@Example.com", ""], "notes": "", "source": "",
            "source_id": ""}
    bad = client.post(f"/admin/entities/person/{person.pk}/change/", {**form, "nationalities": "CN, XX",
                                                                       "phones": ["+86 138 0013 8000", "12"]})
    assert bad.status_code == 200
    assert {"nationalities", "phones"} <= set(bad.context["adminform"].form.errors)
    assert bad.context["adminform"].form.errors["phones"] == ["Correct row 2 below."]  # the message is on the row

    response = client.post(f"/admin/entities/person/{person.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    person.refresh_from_db()
    assert person.name == "Luo Jianhua" and person.names == ["罗建华", "LUO Jian Hua"]
    assert person.nationalities == ["CN", "HK"] and person.phones == ["+8613800138000"]
    assert person.emails == ["luo.jh@example.com"]
    assert person.addresses == [{"text": "8 Yuanfeng Road, Lengshuijiang", "country": "CN"}]
    event = AuditEvent.objects.filter(object_id=str(person.pk), action="update").latest("seq")
    assert event.actor == user.username and event.agency_code == "SSB"
    assert event.changes["phones"] == [[], ["+8613800138000"]]
    # Found by the folded name and by the phone.
    for term in ("luo  jianhua", "罗建华", "+86 138 0013 8000"):
        assert "Luo Jianhua" in client.get("/admin/entities/person/", {"q": term}).content.decode(), term


def test_superuser_picks_the_agency_and_references_must_match_it(world, staff_client):
    root = factories.user(None, "agency_admin", is_superuser=True)
    client = staff_client(root)
    their_org = factories.organization(world.b, "Xinrui")
    data = _shipment_form(agency=str(world.a.pk), consignor=str(their_org.pk))
    response = client.post("/admin/shipments/shipment/add/", data)
    assert response.status_code == 200 and "consignor" in response.context["adminform"].form.errors
    response = client.post("/admin/shipments/shipment/add/", {**data, "agency": str(world.b.pk)})
    assert response.status_code == 302
    assert Shipment.objects.get().agency == world.b


def test_shipment_legs_inline_derives_the_route_and_is_audited_with_the_shipment(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    client = staff_client(user)
    response = client.post("/admin/shipments/shipment/add/", {**_shipment_form(), **_legs(ROUTE)})
    assert response.status_code == 302, response.content.decode()[:3000]
    shipment = Shipment.objects.get()
    assert (shipment.agency, shipment.hs_code, shipment.origin_country, shipment.currency) == (
        world.a, "811010", "CN", "USD")
    assert shipment.transit_countries == ["VN", "TH"]
    assert str(shipment.departed_on) == "2026-03-02"
    assert [leg.seq for leg in shipment.legs.all()] == [1, 2, 3]
    created = AuditEvent.objects.get(object_id=str(shipment.pk), action="create")
    assert [leg["to_country"] for leg in created.changes["legs"][1]] == ["VN", "TH", "AE"]
    assert created.changes["transit_countries"] == [None, ["VN", "TH"]]

    # Drop the Thai leg and go straight from Hai Phong to Jebel Ali.
    legs = list(shipment.legs.all())
    data = {**_shipment_form(), **_legs([ROUTE[0], {**ROUTE[1], "to_country": "AE", "to_port": "Jebel Ali"},
                                         ROUTE[2]], existing=legs)}
    data["legs-2-DELETE"] = "on"
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    shipment.refresh_from_db()
    assert shipment.transit_countries == ["VN"] and shipment.legs.count() == 2 and shipment.version == 2
    event = AuditEvent.objects.filter(object_id=str(shipment.pk), action="update").latest("seq")
    assert event.changes["transit_countries"] == [["VN", "TH"], ["VN"]]
    assert len(event.changes["legs"][0]) == 3 and len(event.changes["legs"][1]) == 2
    assert not AuditEvent.objects.filter(object_type="shipmentleg").exists()  # audited as part of the shipment

    bad_leg = {**ROUTE[0], "to_country": "ZZ", "arrived_on": "2026-03-01"}
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/",
                           {**_shipment_form(seized_quantity_kg="30000"), **_legs([bad_leg], existing=legs[:1])})
    assert response.status_code == 200
    assert "seized_quantity_kg" in response.context["adminform"].form.errors
    leg_errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert {"to_country", "arrived_on"} <= set(leg_errors)


def test_prosecution_stage_cannot_go_backwards_in_admin(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1)
    defendant = factories.person(world.a, "Luo Zhiyong")
    prosecution = factories.prosecution(case, defendant, stage="trial", court="Loudi Intermediate People's Court")
    client = staff_client(user)
    url = f"/admin/cases/prosecution/{prosecution.pk}/change/"

    for backwards in ("indicted", "investigation"):
        response = client.post(url, _prosecution_form(prosecution, stage=backwards))
        assert response.status_code == 200
        assert "stage" in response.context["adminform"].form.errors
    prosecution.refresh_from_db()
    assert prosecution.stage == "trial"

    sentence = {"verdict": "convicted", "verdict_on": "2026-12-01", "custody_months": "36",
                "fine_amount": "200000", "fine_currency": "cny"}
    charges = {"charges-TOTAL_FORMS": "1", "charges-0-seq": "", "charges-0-statute": "Customs Law Art. 82",
               "charges-0-description": "Smuggling"}
    response = client.post(url, {**_prosecution_form(prosecution, stage="verdict", **sentence), **charges})
    assert response.status_code == 302, (response.context["adminform"].form.errors,
                                         [f.formset.errors for f in response.context["inline_admin_formsets"]])
    prosecution.refresh_from_db()
    assert (prosecution.stage, prosecution.verdict, prosecution.fine_currency) == ("verdict", "convicted", "CNY")
    assert [c.statute for c in prosecution.charges.all()] == ["Customs Law Art. 82"]
    event = AuditEvent.objects.filter(object_id=str(prosecution.pk), action="transition").get()
    assert event.changes["stage"] == ["trial", "verdict"] and event.case_id == case.pk
    assert event.changes["charges"][1][0]["statute"] == "Customs Law Art. 82"

    # A sentence needs a conviction (the rule names the API's `sentence`, which the admin shows above the form);
    # a defendant of another agency is refused.
    response = client.post(url, _prosecution_form(prosecution, verdict="acquitted", custody_months="12"))
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Only a conviction carries a sentence: clear the sentence with this verdict."]
    foreign = factories.person(world.b, "Deng Kaiwen")
    response = client.post(url, _prosecution_form(prosecution, defendant=str(foreign.pk)))
    assert response.status_code == 200 and "defendant" in response.context["adminform"].form.errors


def test_evidence_upload_in_admin_stores_the_hash_and_opens_custody(world, staff_client, media):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1)
    client = staff_client(user)
    content = b"Translated chat log of the family group\n" * 100
    upload = SimpleUploadedFile("chat-log.txt", content, content_type="text/plain")
    response = client.post("/admin/cases/evidence/add/", {"case": str(case.pk), "title": "Chat log", "kind": "document",
                                                          "file": upload, **_management("custody")})
    assert response.status_code == 302, response.content.decode()[:3000]
    evidence = Evidence.objects.get()
    assert evidence.sha256 == hashlib.sha256(content).hexdigest() and evidence.size == len(content)
    assert (evidence.original_name, evidence.uploaded_by, evidence.case) == ("chat-log.txt", user, case)
    assert list(evidence.custody.values_list("action", flat=True)) == ["upload"]
    created = AuditEvent.objects.get(object_id=str(evidence.pk), action="create")
    assert created.changes["sha256"][1] == evidence.sha256 and created.case_id == case.pk

    # Title and kind change; the file does not.
    other = SimpleUploadedFile("other.txt", b"something else")
    response = client.post(f"/admin/cases/evidence/{evidence.pk}/change/",
                           {"title": "Chat log (translated)", "kind": "translation", "file": other,
                            **_management("custody", initial={"custody": 1})})
    assert response.status_code == 302, response.content.decode()[:3000]
    evidence.refresh_from_db()
    assert evidence.title == "Chat log (translated)" and evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.file.read() == content

    download = client.get(f"/admin/cases/evidence/{evidence.pk}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == content
    assert list(evidence.custody.values_list("action", flat=True)) == ["upload", "download"]
    other_agency = staff_client(factories.user(world.b, "supervisor", world.b1))
    assert other_agency.get(f"/admin/cases/evidence/{evidence.pk}/download/").status_code == 404
    assert CustodyEntry.objects.count() == 2


def test_viewer_sees_but_cannot_change_shipments_or_links(world, staff_client):
    viewer = factories.user(world.a, "viewer", world.a1)
    shipment = factories.shipment(world.a, reference="BL-VIEW")
    client = staff_client(viewer)
    assert client.get("/admin/shipments/shipment/").status_code == 200
    assert client.get("/admin/shipments/shipment/add/").status_code == 403
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/",
                           _shipment_form(reference="BL-CHANGED"))
    assert response.status_code == 403
    shipment.refresh_from_db()
    assert shipment.reference == "BL-VIEW"
    assert client.get("/admin/entities/link/add/").status_code == 403


def test_link_kind_rules_and_archiving_in_admin(world, staff_client):
    analyst = factories.user(world.a, "analyst", world.a1)
    person, company = factories.person(world.a, "Chen Xiuying"), factories.organization(world.a, "Grand Harvest")
    client = staff_client(analyst)
    form = {"source": str(person.pk), "target": str(company.pk), "kind": "family", "subtype": "Spouse",
            "confidence": "confirmed", "currency": "", "description": "", "provenance_source": "",
            "provenance_id": ""}
    response = client.post("/admin/entities/link/add/", form)
    assert response.status_code == 200 and "target" in response.context["adminform"].form.errors
    response = client.post("/admin/entities/link/add/", {**form, "kind": "directorship",
                                                        "subtype": "Nominee Director"})
    assert response.status_code == 302, response.content.decode()[:3000]
    link = Link.objects.get()
    assert (link.agency, link.subtype) == (world.a, "nominee_director")
    response = client.post("/admin/entities/link/", {"action": "archive_selected", "_selected_action": [link.pk]})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.archived
    assert AuditEvent.objects.filter(object_id=str(link.pk), action="archive").exists()


@pytest.mark.parametrize("url, make", [
    ("/admin/entities/person/", lambda w, i: factories.person(w.a, f"Person {i}", nationalities=["CN"])),
    ("/admin/entities/organization/", lambda w, i: factories.organization(w.a, f"Company {i}", jurisdiction="HK")),
    ("/admin/entities/link/", lambda w, i: factories.link(w.a, factories.person(w.a), factories.person(w.a),
                                                          case=factories.case(w.a, w.a1))),
    ("/admin/shipments/shipment/", lambda w, i: factories.shipment(
        w.a, ROUTE, consignor=factories.organization(w.a), consignee=factories.organization(w.a),
        licence=factories.licence(w.a), commodity_id="antimony")),
    ("/admin/shipments/licence/", lambda w, i: factories.licence(w.a, end_user=factories.organization(w.a))),
    ("/admin/cases/prosecution/", lambda w, i: factories.prosecution(factories.case(w.a, w.a1),
                                                                     factories.person(w.a))),
    ("/admin/cases/evidence/", lambda w, i: factories.evidence(factories.case(w.a, w.a1), w.user)),
    ("/admin/alerts/alert/", lambda w, i: factories.alert(
        factories.shipment(w.a) if i % 2 else factories.organization(w.a), case=factories.case(w.a, w.a1),
        related=({"type": "person", "id": str(factories.person(w.a).pk), "label": f"Kin {i}"},))),
    ("/admin/xref/deconflictionhit/", lambda w, i: factories.hits(
        factories.person(w.a), factories.person(factories.agency(f"X{i:02d}")))),
])
def test_changelists_take_a_constant_number_of_queries(world, staff_client, media, url, make):
    world.user = factories.user(world.a, "supervisor", world.a1)
    client = staff_client(world.user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    for i in range(2):
        make(world, i)
    client.get(url)  # warm-up
    few = queries()
    for i in range(2, 14):
        make(world, i)
    assert queries() == few, url


def test_every_add_and_change_page_renders(world, staff_client, media):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1)
    person, company = factories.person(world.a, "Zhou Peng"), factories.organization(world.a, "Jiayuan")
    records = {
        "entities/person": person, "entities/organization": company,
        "entities/link": factories.link(world.a, person, company, kind="employment"),
        "shipments/shipment": factories.shipment(world.a, ROUTE, consignor=company),
        "shipments/licence": factories.licence(world.a, company),
        "cases/prosecution": factories.prosecution(case, person, charges=(("Customs Law Art. 82", ""),)),
        "cases/evidence": factories.evidence(case, user),
        "cases/case": case,
    }
    for client in (staff_client(user), staff_client(factories.user(None, "agency_admin", is_superuser=True))):
        for path, obj in records.items():
            assert client.get(f"/admin/{path}/add/").status_code == 200, path
            assert client.get(f"/admin/{path}/{obj.pk}/change/").status_code == 200, path
            assert client.get(f"/admin/{path}/", {"q": "zhou"}).status_code == 200, path


def test_case_page_names_only_the_cases_agency_records(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, title="Grey Ore")
    foreign = factories.person(world.b, "Deng Kaiwen")
    client = staff_client(user)
    # The unit filter lists the units of the cases shown, not every agency's units.
    page = client.get("/admin/cases/case/").content.decode()
    assert "SSB/econ" in page and "ASB/ports" not in page
    # A party naming another agency's person is a form error on the inline row.
    data = _case_form(case, **{"parties-TOTAL_FORMS": "1", "parties-0-entity": str(foreign.pk),
                               "parties-0-role": "suspect", "parties-0-custody_status": "at_large"})
    response = client.post(f"/admin/cases/case/{case.pk}/change/", data)
    assert response.status_code == 200
    assert "entity" in response.context["inline_admin_formsets"][0].formset.errors[0]
    assert not case.parties.exists()
    mine = factories.person(world.a, "Luo Jianhua")
    data["parties-0-entity"] = str(mine.pk)
    assert client.post(f"/admin/cases/case/{case.pk}/change/", data).status_code == 302
    assert case.parties.get().entity_id == mine.pk


def test_units_and_agencies_are_saved_through_the_accounts_services(world, staff_client, monkeypatch):
    from accounts import services as account_services
    from accounts.models import Unit

    calls: list[str] = []
    def counted(name):
        real = getattr(account_services, name)

        def call(**kwargs):
            calls.append(name)
            return real(**kwargs)

        return call

    for name in ("unit_save", "agency_save"):
        monkeypatch.setattr(account_services, name, counted(name))
    admin_user = factories.user(world.a, "agency_admin", world.a1)
    client = staff_client(admin_user)
    response = client.post("/admin/accounts/unit/add/", {"agency": world.a.pk, "code": "ports", "name": "Ports"})
    assert response.status_code == 302, response.content.decode()[:2000]
    unit = Unit.objects.get(agency=world.a, code="ports")
    assert AuditEvent.objects.filter(object_id=str(unit.pk), action="create").count() == 1

    url = f"/admin/accounts/unit/{unit.pk}/change/"
    assert client.post(url, {"agency": world.a.pk, "code": "ports", "name": "Ports"}).status_code == 302
    unit.refresh_from_db()
    assert unit.version == 1 and not AuditEvent.objects.filter(object_id=str(unit.pk), action="update").exists()
    assert client.post(url, {"agency": world.a.pk, "code": "ports", "name": "Port control"}).status_code == 302
    event = AuditEvent.objects.get(object_id=str(unit.pk), action="update")
    assert event.changes == {"name": ["Ports", "Port control"]} and event.actor == admin_user.username

    superuser = User.objects.create_superuser("root-a", "root@example.com", PASSWORD)
    response = staff_client(superuser).post(f"/admin/accounts/agency/{world.a.pk}/change/", {
        "code": world.a.code, "name": "State Security Bureau (renamed)", "contact": world.a.contact})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert calls == ["unit_save", "unit_save", "unit_save", "agency_save"]
    assert AuditEvent.objects.filter(object_id=str(world.a.pk), action="update").count() == 1
