"""The admin in a real browser: a clerk signs in, enters a person (with a Hanzi name variant), an organisation, a
shipment with two legs and a prosecution with two charges, picks the parties by autocomplete, and finds each in
its change list. Chromium (Debian's package) is driven by Playwright; Django's live server serves the pages and the
admin's static files, our rows script included."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from . import factories

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = chromium_path()


def pick(page, select_id: str, term: str, choice: str) -> None:
    """An autocomplete field: open its select2 box, type `term`, pick the suggestion `choice`."""
    page.click(f"#{select_id} + .select2 .select2-selection")
    search = page.locator(".select2-container--open .select2-search__field")
    search.fill(term)
    page.locator(".select2-container--open .select2-results__option", has_text=choice).first.click()
    assert choice in page.locator(f"#{select_id} + .select2 .select2-selection").inner_text()


def save(page, changelist: str) -> None:
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(re.escape(changelist) + r"$"))
    assert page.locator(".messagelist .success").count() == 1, page.locator("#content").inner_text()


@pytest.mark.django_db(transaction=True)
def test_a_clerk_enters_records_in_the_admin_with_a_browser(world, live_server, client_for):
    if CHROMIUM is None:
        print("SKIPPED: no chromium executable on PATH nor at /usr/bin/chromium (Debian's `chromium` package)")
        pytest.skip("no chromium executable on PATH nor at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    from cases.models import Prosecution
    from entities.models import Organization, Person
    from shipments.models import Shipment

    clerk = factories.user(world.a, "investigator", world.a1, username="clerk-a1")
    clerk.is_staff = True
    clerk.save()
    case = factories.case(world.a, world.a1, title="Antimony via Hai Phong")
    # Another agency's namesake: the autocomplete must never offer it.
    factories.organization(world.b, "Silver Peak Trading Limited")
    base = live_server.url

    # The ORM stays outside the browser's block: Playwright's sync API runs an event loop on this thread.
    with tempfile.TemporaryDirectory(prefix="chromium-profile") as profile, sync_playwright() as playwright:
        # A new, empty profile (Playwright passes it as --user-data-dir).
        browser = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                                args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)

            # Signing in through the admin's form.
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", clerk.username)
            page.fill("#id_password", factories.PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")

            # A person: the name variants, an identifier and an address as rows, a second row added by our script.
            page.goto(f"{base}/admin/entities/person/add/")
            page.fill("#id_name", "Wang Wei")
            page.fill("#id_names", "王伟")
            page.click("button.rows-add[data-rows=id_names_rows]")
            page.locator("#id_names_rows tbody tr").nth(1).locator("input").fill("WANG Wei")
            page.fill("#id_nationalities", "CN")
            page.select_option("#id_identifiers", "passport")
            page.locator("#id_identifiers_rows input[name=identifiers-number]").first.fill("E12345678")
            page.locator("#id_identifiers_rows input[name=identifiers-country]").first.fill("cn")
            page.fill("#id_addresses", "18 Nanjing Road, Shanghai")
            page.locator("#id_addresses_rows input[name=addresses-country]").first.fill("CN")
            save(page, "/admin/entities/person/")
            assert "王伟" in page.locator("#result_list").inner_text()

            # An organisation, its phone read in the jurisdiction's numbering plan.
            page.goto(f"{base}/admin/entities/organization/add/")
            page.fill("#id_name", "Silver Peak Trading Ltd")
            page.fill("#id_jurisdiction", "HK")
            page.fill("#id_phones", "2345 6789")
            save(page, "/admin/entities/organization/")
            assert "Silver Peak Trading Ltd" in page.locator("#result_list").inner_text()

            # A shipment: the parties picked by autocomplete (only the agency's own organisation is offered), two legs.
            page.goto(f"{base}/admin/shipments/shipment/add/")
            page.fill("#id_reference", "BL-BROWSER-1")
            page.fill("#id_hs_code", "8110.10")
            page.fill("#id_quantity_kg", "20000")
            page.fill("#id_origin_country", "CN")
            page.fill("#id_destination_country", "AE")
            page.click("#id_consignor + .select2 .select2-selection")
            page.locator(".select2-container--open .select2-search__field").fill("silver peak")
            options = page.locator(".select2-container--open .select2-results__option")
            # The box first shows the unfiltered list, then "Searching…", then the answer for the term: the assertion
            # waits for the answer and holds only when it is exactly this one (never the other agency's namesake).
            expect(options).to_have_text(["Silver Peak Trading Ltd"])
            page.keyboard.press("Escape")
            pick(page, "id_consignor", "silver peak", "Silver Peak Trading Ltd")
            pick(page, "id_consignee", "wang wei", "Wang Wei")
            for _ in range(2):
                page.click("#legs-group .add-row a")
            for index, (origin, destination, departed) in enumerate((("CN", "VN", "2026-03-02"),
                                                                     ("VN", "AE", "2026-03-09"))):
                page.fill(f"#id_legs-{index}-from_country", origin)
                page.fill(f"#id_legs-{index}-to_country", destination)
                page.select_option(f"#id_legs-{index}-mode", "sea")
                page.fill(f"#id_legs-{index}-departed_on", departed)
            save(page, "/admin/shipments/shipment/")
            listed = page.locator("#result_list").inner_text()
            assert "BL-BROWSER-1" in listed and "Silver Peak Trading Ltd" in listed and "Wang Wei" in listed

            # A prosecution of the person in the case, with two charges.
            page.goto(f"{base}/admin/cases/prosecution/add/")
            pick(page, "id_case", "antimony", case.reference)
            pick(page, "id_defendant", "wang", "Wang Wei")
            page.fill("#id_court", "Shanghai No. 1 Intermediate People's Court")
            for _ in range(2):
                page.click("#charges-group .add-row a")
            page.fill("#id_charges-0-statute", "Export Control Law art. 34")
            page.fill("#id_charges-0-description", "Export of a controlled item without a licence")
            page.fill("#id_charges-1-statute", "Customs Law art. 82")
            page.fill("#id_charges-1-description", "Smuggling by false declaration")
            save(page, "/admin/cases/prosecution/")
            assert "Wang Wei" in page.locator("#result_list").inner_text()
        finally:
            browser.close()

    person = Person.objects.get(name="Wang Wei")
    assert person.agency == world.a and person.names == ["王伟", "WANG Wei"]
    assert person.identifiers == [{"scheme": "passport", "number": "E12345678", "country": "CN"}]
    assert person.addresses == [{"text": "18 Nanjing Road, Shanghai", "country": "CN"}]
    organisation = Organization.objects.get(agency=world.a)
    assert (organisation.name, organisation.phones) == ("Silver Peak Trading Ltd", ["+85223456789"])
    shipment = Shipment.objects.get(reference="BL-BROWSER-1")
    assert (shipment.consignor_id, shipment.consignee_id) == (organisation.pk, person.pk)
    assert [(leg.seq, leg.from_country, leg.to_country) for leg in shipment.legs.all()] == [
        (1, "CN", "VN"), (2, "VN", "AE")]
    assert shipment.transit_countries == ["VN"]
    prosecution = Prosecution.objects.get()
    assert (prosecution.case_id, prosecution.defendant_id) == (case.pk, person.pk)
    assert [(c.seq, c.statute) for c in prosecution.charges.all()] == [
        (1, "Export Control Law art. 34"), (2, "Customs Law art. 82")]
    # The API reads them as entered.
    api = client_for(clerk)
    body = api.get(f"/api/v1/persons/{person.pk}/").json()
    assert body["names"] == ["王伟", "WANG Wei"]
    assert api.get(f"/api/v1/shipments/{shipment.pk}/").json()["consignor"] == {
        "type": "organization", "id": str(organisation.pk), "name": "Silver Peak Trading Ltd"}
