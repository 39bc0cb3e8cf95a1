"""The admin's forms as a clerk uses them: lists (identifiers, addresses, phones, emails, name variants) entered as
rows, never as typed JSON, parsed into what the services take, a bad row's message shown on that row; legs in the
order listed; every autocomplete offering only what the edited record may name."""

import re

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders

from cases.models import Case, Commodity
from entities.models import Entity, Organization, Person
from shipments.models import Shipment

from . import factories
from .admin_forms import case_form
from .test_admin import _legs, _shipment_form

ROWS = {"identifiers-scheme": [""], "identifiers-number": [""], "identifiers-country": [""],
        "addresses-text": [""], "addresses-country": [""], "names": [""], "phones": [""], "emails": [""]}


def _person_form(**overrides):
    return {"name": "Wang Wei", "gender": "", "birth_date": "", "birth_place": "", "nationalities": "CN",
            "notes": "", "source": "", "source_id": "", "topics": "", **ROWS, **overrides}


@pytest.fixture
def clerk(world):
    return factories.user(world.a, "investigator", world.a1, username="clerk-a1")


def test_list_fields_render_as_rows_with_one_empty_row_and_our_script(world, clerk):
    person = factories.person(world.a, "Luo Jianhua", names=["罗建华"],
                              identifiers=[{"scheme": "passport", "number": "E1234567", "country": "CN"}])
    client = factories.admin_client(clerk)
    page = client.get(f"/admin/entities/person/{person.pk}/change/").content.decode()
    # The stored items and one empty row, each an input of its own; no JSON to type.
    assert re.findall(r'name="names" id="[^"]*" value="([^"]*)"', page) == ["罗建华", ""]
    assert re.findall(r'name="identifiers-number" id="[^"]*" value="([^"]*)"', page) == ["E1234567", ""]
    assert len(re.findall(r'<option value="passport" selected>', page)) == 1
    assert "[{" not in page and "&quot;scheme&quot;" not in page
    # The "Add another" button is our script's (served from our static files, nothing from another host).
    assert page.count('class="rows-add button"') == 5 and "/static/core/rows.js" in page
    assert finders.find("core/rows.js") and finders.find("core/rows.css")
    assert page.count('<tr class="rows-row">') == 7  # names 1 + 1, identifiers 1 + 1, addresses, phones, emails
    assert len(re.findall(r'name="addresses-text"', page)) == 1 and len(re.findall(r'name="phones"', page)) == 1


def test_a_person_entered_as_rows_is_stored_as_the_service_takes_it(world, clerk, client_for):
    client = factories.admin_client(clerk)
    form = _person_form(**{
        "names": ["王伟", "", "WANG  Wei", "王伟"],  # blanks and repeats dropped
        "identifiers-scheme": ["national_id", "passport", ""], "identifiers-number": ["11010519491231002X",
                                                                                     "e 1234567", ""],
        "identifiers-country": ["cn", "CN", ""],
        "addresses-text": ["18  Nanjing Road, Shanghai", ""], "addresses-country": ["cn", ""],
        "phones": ["138 0013 8000", ""], "emails": ["Wang.Wei@Example.com", ""]})
    response = client.post("/admin/entities/person/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    person = Person.objects.get()
    assert person.names == ["王伟", "WANG Wei"]
    assert person.identifiers == [{"scheme": "national_id", "number": "11010519491231002X", "country": "CN"},
                                  {"scheme": "passport", "number": "E1234567", "country": "CN"}]
    assert person.addresses == [{"text": "18 Nanjing Road, Shanghai", "country": "CN"}]
    assert (person.phones, person.emails) == (["+8613800138000"], ["wang.wei@example.com"])
    body = client_for(clerk).get(f"/api/v1/persons/{person.pk}/").json()
    assert (body["names"], body["identifiers"]) == (person.names, person.identifiers)


def test_a_bad_row_is_marked_on_its_row_and_nothing_is_written(world, clerk):
    client = factories.admin_client(clerk)
    form = _person_form(**{
        "identifiers-scheme": ["passport", "national_id"], "identifiers-number": ["E1234567", "110101199003070000"],
        "identifiers-country": ["CN", "CN"], "addresses-text": ["", "Kowloon"], "addresses-country": ["HK", "XX"],
        "emails": ["wang@example.com", "not an address"]})
    response = client.post("/admin/entities/person/add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["identifiers"] == ["Correct row 2 below."]
    assert errors["addresses"] == ["Correct rows 1, 2 below."]  # a country without its text; an unknown country
    assert errors["emails"] == ["Correct row 2 below."]
    page = response.content.decode()
    rows = re.findall(r'<tr class="rows-row rows-invalid">(.*?)</tr>', page, re.S)
    assert len(rows) == 4
    # Each message on its row, beside what was typed there (kept to correct).
    assert 'value="110101199003070000"' in rows[0] and "checksum" in rows[0]
    assert 'value="HK"' in rows[1] and "an address needs its text" in rows[1]
    assert 'value="Kowloon"' in rows[2] and "XX" in rows[2]
    assert "not an address" in rows[3]
    assert not Entity.objects.exists()


def test_phones_are_read_in_the_jurisdictions_plan_and_the_records_rules_are_form_errors(world, clerk):
    client = factories.admin_client(clerk)
    form = {"name": "Silver Peak Trading Ltd", "kind": "", "jurisdiction": "HK", "registration_number": "",
            "incorporated_on": "2020-05-01", "dissolved_on": "2019-01-01", "website": "", "notes": "", "source": "",
            "source_id": "", "topics": "", **ROWS, "phones": ["2345 6789", "12"]}
    response = client.post("/admin/entities/organization/add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["phones"] == ["Correct row 2 below."]
    assert re.search(r'rows-invalid">.*?value="12".*?</tr>', response.content.decode(), re.S)
    response = client.post("/admin/entities/organization/add/", {**form, "phones": ["2345 6789"]})
    assert response.context["adminform"].form.errors == {
        "dissolved_on": ["An organisation cannot be dissolved before it was incorporated."]}
    response = client.post("/admin/entities/organization/add/", {**form, "phones": ["2345 6789"],
                                                                 "dissolved_on": ""})
    assert response.status_code == 302
    assert Organization.objects.get().phones == ["+85223456789"]


def test_legs_take_their_order_from_the_departure_dates_else_from_the_rows(world, clerk):
    client = factories.admin_client(clerk)
    page = client.get("/admin/shipments/shipment/add/").content.decode()
    assert "legs-__prefix__-from_country" in page and "legs-__prefix__-seq" not in page  # no number to type
    late = {"from_country": "AE", "to_country": "DE", "mode": "air", "departed_on": "2026-03-20"}
    early = {"from_country": "TH", "to_country": "AE", "mode": "sea", "departed_on": "2026-03-15"}
    form = _shipment_form(origin_country="TH", destination_country="DE")
    # Entered late-first, the legs are put in departure order.
    response = client.post("/admin/shipments/shipment/add/", {**form, **_legs([late, early])})
    assert response.status_code == 302, response.content.decode()[:3000]
    shipment = Shipment.objects.get()
    assert [(leg.seq, leg.to_country) for leg in shipment.legs.all()] == [(1, "AE"), (2, "DE")]
    assert (shipment.transit_countries, str(shipment.departed_on)) == (["AE"], "2026-03-15")
    # A leg without a date: the rows' order stands.
    legs = list(shipment.legs.all())
    response = client.post(f"/admin/shipments/shipment/{shipment.pk}/change/",
                           {**form, **_legs([{**late, "departed_on": ""}, early], existing=legs)})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [(leg.seq, leg.to_country) for leg in shipment.legs.all()] == [(1, "DE"), (2, "AE")]


def test_case_members_and_commodities_by_autocomplete(world, clerk):
    colleague = factories.user(world.a, "analyst", world.a2, username="colleague-a2")
    factories.user(world.b, "investigator", world.b1, username="outsider-b1")
    case = factories.case(world.a, world.a1, title="Antimony")
    client = factories.admin_client(clerk)
    page = client.get(f"/admin/cases/case/{case.pk}/change/").content.decode()
    for name in ("members", "commodities"):
        assert re.search(rf'<select name="{name}"[^>]*class="admin-autocomplete', page), name
    found = client.get("/admin/autocomplete/", {"app_label": "cases", "model_name": "case",
                                                "field_name": "members", "term": ""}).json()
    assert {r["text"] for r in found["results"]} == {"clerk-a1", "colleague-a2"}
    found = client.get("/admin/autocomplete/", {"app_label": "cases", "model_name": "case",
                                                "field_name": "commodities", "term": "antim"}).json()
    assert [r["id"] for r in found["results"]] == ["antimony"]
    response = client.post(f"/admin/cases/case/{case.pk}/change/",
                           case_form(case, members=[str(colleague.pk)], commodities=["antimony"]))
    assert response.status_code == 302, response.content.decode()[:3000]
    case = Case.objects.get(pk=case.pk)
    assert list(case.members.all()) == [colleague] and list(case.commodities.values_list("pk", flat=True)) == [
        "antimony"]


def _autocomplete_fields():
    """Every (source model, field) an admin page offers by autocomplete, its inlines' included."""
    fields = set()
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.autocomplete_fields:
            fields.add((model, name))
        for inline in model_admin.inlines:
            for name in inline(model, admin.site).autocomplete_fields:
                fields.add((inline.model, name))
    return sorted(fields, key=lambda pair: (pair[0]._meta.label, pair[1]))


def test_no_autocomplete_offers_another_agencys_records(world, clerk):
    """Each record of the other agency exists under a name the clerk types; no autocomplete lists one."""
    theirs = {
        factories.person(world.b, "Zhou Theirs").pk, factories.organization(world.b, "Zhou Theirs Ltd").pk,
        factories.case(world.b, world.b1, title="Zhou Theirs case").pk,
        factories.licence(world.b, number="ZHOU-THEIRS").pk,
        factories.user(world.b, "investigator", world.b1, username="zhou-theirs").pk,
    }
    their_case = Case.objects.get(title="Zhou Theirs case")
    factories.share(their_case, world.a, access="read")  # shared: seen, and still not named
    mine = {
        factories.person(world.a, "Zhou Mine").pk, factories.organization(world.a, "Zhou Mine Ltd").pk,
        factories.case(world.a, world.a1, title="Zhou Mine case").pk, factories.licence(world.a, number="ZHOU-MINE").pk,
        factories.user(world.a, "analyst", world.a1, username="zhou-mine").pk,
    }
    client = factories.admin_client(clerk)
    fields = _autocomplete_fields()
    offered_mine = 0
    for model, name in fields:
        target = model._meta.get_field(name).related_model
        if target is Commodity:
            continue  # the control list is common to every agency
        response = client.get("/admin/autocomplete/", {"app_label": model._meta.app_label,
                                                       "model_name": model._meta.model_name,
                                                       "field_name": name, "term": "zhou"})
        assert response.status_code == 200, (model, name)
        ids = {r["id"] for r in response.json()["results"]}
        assert not ids & {str(pk) for pk in theirs}, (model._meta.label, name, ids)
        offered_mine += bool(ids & {str(pk) for pk in mine})
    # The fields are there and do offer the agency's own records (the check above cannot pass by listing nothing).
    assert (Shipment, "consignor") in fields and (Case, "members") in fields
    assert offered_mine == len([f for f in fields if f[0]._meta.get_field(f[1]).related_model is not Commodity])
