"""Persons from the client's side: field rules, fuzzy name search, filters, access, ETags, archive, query counts."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from entities.models import Person

from . import factories

URL = "/api/v1/persons/"
VALID_RIC = "11010519491231002X"  # a Chinese resident id with a correct check digit


def detail(pk):
    return f"{URL}{pk}/"


def create(api, **fields):
    return api.post(URL, {"name": "Zhang Wei", **fields}, format="json")


def names_found(api, **params):
    response = api.get(URL, params)
    assert response.status_code == 200, response.json()
    return [p["name"] for p in response.json()["results"]]


# --- fields ---------------------------------------------------------------------------------------


def test_create_returns_every_contract_field(api):
    response = create(api, names=["张伟", "Chang Wei"], gender="male", birth_date="1975-04-02",
                      birth_place="Hechi, Guangxi", nationalities=["CN"],
                      identifiers=[{"scheme": "national_id", "number": VALID_RIC, "country": "CN"}],
                      addresses=[{"text": "12 Jinfeng Rd, Hechi", "country": "CN"}],
                      phones=["+86 138 0013 8000"], emails=["zw@example.cn"], notes="ringleader's brother",
                      source="registry", source_id="P-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "archived", "agency", "name", "names", "gender",
                  "birth_date", "birth_place", "nationalities", "identifiers", "addresses", "phones", "emails",
                  "notes", "source", "source_id", "same_as", "cases"):
        assert field in body, field
    assert body["agency"] == "SSB" and body["version"] == 1 and body["archived"] is False
    assert body["names"] == ["张伟", "Chang Wei"]
    assert body["identifiers"] == [{"scheme": "national_id", "number": VALID_RIC, "country": "CN"}]
    assert body["addresses"] == [{"text": "12 Jinfeng Rd, Hechi", "country": "CN"}]
    assert body["same_as"] == [] and body["cases"] == []
    assert response["ETag"] == '"1"'
    person = Person.objects.get(pk=body["id"])
    assert person.type == "person" and "zhang wei" in person.search_text


def test_native_script_names_are_kept_and_the_primary_name_not_repeated(api):
    body = create(api, name="张伟", names=["Zhang Wei", "张伟", " Zhang  Wei ", ""]).json()
    assert body["name"] == "张伟"
    assert body["names"] == ["Zhang Wei"]


def test_read_only_fields_sent_by_the_client_are_ignored(api):
    body = create(api, agency="ASB", version=9, same_as=["00000000-0000-0000-0000-000000000001"],
                  cases=[{"id": "x"}], archived=True).json()
    assert body["agency"] == "SSB" and body["version"] == 1 and body["same_as"] == [] and body["cases"] == []
    assert body["archived"] is False


def test_an_unknown_field_is_a_400(api):
    response = create(api, nickname="Big Zhang")
    assert response.status_code == 400 and "nickname" in response.json()


@pytest.mark.parametrize("name", ["", "   "])
def test_a_blank_name_is_a_400(api, name):
    assert "name" in create(api, name=name).json()


@pytest.mark.parametrize(
    ("phones", "nationalities", "stored"),
    [
        (["+86 138 0013 8000"], [], ["+8613800138000"]),
        (["+86-138-0013-8000", "+8613800138000"], [], ["+8613800138000"]),
        (["0086 138 0013 8000"], [], ["+8613800138000"]),
        (["138 0013 8000"], ["CN"], ["+8613800138000"]),  # read in the first nationality's plan
        (["024 3825 3456"], ["VN", "CN"], ["+842438253456"]),
    ],
)
def test_phones_are_stored_in_e164(api, phones, nationalities, stored):
    response = create(api, phones=phones, nationalities=nationalities)
    assert response.status_code == 201, response.json()
    assert response.json()["phones"] == stored


@pytest.mark.parametrize(
    ("phones", "nationalities", "bad"),
    [
        (["+86 138 0013 8000", "+86 123"], [], "1"),
        (["not a phone"], ["CN"], "0"),
        (["138 0013 8000"], [], "0"),  # no country code and no nationality to read it by
        (["+1 555"], [], "0"),
    ],
)
def test_an_invalid_phone_is_a_400_naming_the_item(api, phones, nationalities, bad):
    response = create(api, phones=phones, nationalities=nationalities)
    assert response.status_code == 400
    assert list(response.json()["phones"]) == [bad]
    assert not Person.objects.exists()


def test_a_phone_without_plus_uses_the_new_nationality_on_patch(api):
    person = factories.person(factories.agency("SSB"), nationalities=["VN"])
    response = api.patch(detail(person.pk), {"phones": ["138 0013 8000"], "nationalities": ["CN"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["phones"] == ["+8613800138000"]


def test_countries_are_upper_cased_and_checked(api):
    body = create(api, nationalities=["cn", "vn", "CN"], addresses=[{"text": "x", "country": "vn"}]).json()
    assert body["nationalities"] == ["CN", "VN"]
    assert body["addresses"] == [{"text": "x", "country": "VN"}]
    body = create(api, addresses=[{"text": " 1  Main St ", "country": None}, {"text": "2 Main St"}]).json()
    assert body["addresses"] == [{"text": "1 Main St", "country": ""}, {"text": "2 Main St", "country": ""}]
    response = create(api, nationalities=["CN", "XX"], addresses=[{"text": "x", "country": "ZZ"}])
    assert response.status_code == 400
    assert set(response.json()) == {"nationalities", "addresses"}
    assert list(response.json()["nationalities"]) == ["1"]
    assert "country" in response.json()["addresses"]["0"]


@pytest.mark.parametrize(
    ("identifier", "stored"),
    [
        ({"scheme": "national_id", "number": "110105 19491231 002x", "country": "cn"},
         {"scheme": "national_id", "number": VALID_RIC, "country": "CN"}),
        ({"scheme": "tax_id", "number": VALID_RIC, "country": "CN"},
         {"scheme": "tax_id", "number": VALID_RIC, "country": "CN"}),
        ({"scheme": "passport", "number": "e 1234-5678", "country": "CN"},
         {"scheme": "passport", "number": "E12345678", "country": "CN"}),
        # no checksum known for Hong Kong ids: accepted as given, compacted
        ({"scheme": "national_id", "number": "A123456(7)", "country": "HK"},
         {"scheme": "national_id", "number": "A123456(7)", "country": "HK"}),
        ({"scheme": "other", "number": "wanted notice 17/2025"},
         {"scheme": "other", "number": "WANTEDNOTICE172025", "country": ""}),
    ],
)
def test_identifiers_are_compacted(api, identifier, stored):
    response = create(api, identifiers=[identifier])
    assert response.status_code == 201, response.json()
    assert response.json()["identifiers"] == [stored]


@pytest.mark.parametrize(
    ("identifier", "field"),
    [
        ({"scheme": "national_id", "number": "110105194912310021", "country": "CN"}, "number"),  # bad check digit
        ({"scheme": "national_id", "number": "1101051949", "country": "CN"}, "number"),  # too short
        ({"scheme": "tax_id", "number": "123-45-678", "country": "US"}, "number"),
        ({"scheme": "driving_licence", "number": "123", "country": "CN"}, "scheme"),
        ({"scheme": "passport", "number": "E1", "country": "XX"}, "country"),
        ({"scheme": "passport", "number": "", "country": "CN"}, "number"),
        ({"scheme": "passport", "number": " - ", "country": "CN"}, "number"),
    ],
)
def test_a_bad_identifier_is_a_400_on_its_field(api, identifier, field):
    good = {"scheme": "passport", "number": "E1", "country": "CN"}
    response = create(api, identifiers=[good, identifier])
    assert response.status_code == 400
    assert list(response.json()["identifiers"]) == ["1"]
    assert field in response.json()["identifiers"]["1"]


def test_emails_are_checked_and_lower_cased(api):
    body = create(api, emails=["Zhang.Wei@Example.CN", "zhang.wei@example.cn"]).json()
    assert body["emails"] == ["zhang.wei@example.cn"]
    response = create(api, emails=["ok@example.com", "not-an-email"])
    assert response.status_code == 400 and list(response.json()["emails"]) == ["1"]


@pytest.mark.parametrize(("given", "stored"), [("M", "male"), ("Female", "female"), ("other", "other"), ("", "")])
def test_gender_is_normalised(api, given, stored):
    response = create(api, gender=given)
    assert response.status_code == 201, response.json()
    assert response.json()["gender"] == stored


def test_a_bad_gender_or_a_future_birth_date_is_a_400(api):
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    response = create(api, gender="robot", birth_date=tomorrow.isoformat())
    assert response.status_code == 400
    assert set(response.json()) == {"gender", "birth_date"}
    assert create(api, birth_date="1975-02-30").status_code == 400


def test_lists_of_the_wrong_shape_are_400(api):
    response = create(api, names="Zhang", phones="+8613800138000", identifiers=[{"number": "1"}],
                      addresses=["street"])
    assert response.status_code == 400
    assert set(response.json()) == {"names", "phones", "identifiers", "addresses"}


def test_source_id_is_unique_per_agency(api, world, client_for):
    assert create(api, source="watchlist", source_id="W-1").status_code == 201
    duplicate = create(api, name="Someone else", source="watchlist", source_id="W-1")
    assert duplicate.status_code == 400 and "source_id" in duplicate.json()
    # the same pair in another source, or with another agency, is another record
    assert create(api, source="registry", source_id="W-1").status_code == 201
    other = client_for(factories.user(world.b, "investigator", world.b1))
    assert other.post(URL, {"name": "x", "source": "watchlist", "source_id": "W-1"}, format="json").status_code == 201
    # an organisation shares the table, and so the pair
    factories.organization(world.a, source="companies", source_id="C-9")
    assert create(api, source="companies", source_id="C-9").status_code == 400
    # a PATCH onto a taken pair is refused too, and the record is unchanged
    person = factories.person(world.a, source="watchlist", source_id="W-2")
    response = api.patch(detail(person.pk), {"source_id": "W-1"}, format="json")
    assert response.status_code == 400 and "source_id" in response.json()
    person.refresh_from_db()
    assert person.source_id == "W-2"
    # archived records keep their pair
    Person.objects.filter(source_id="W-1", source="watchlist", agency=world.a).update(archived=True)
    assert create(api, source="watchlist", source_id="W-1").status_code == 400


def test_a_race_on_source_id_is_still_a_400(api, world, monkeypatch):
    from entities import rules

    # as if a concurrent write took the pair between the rule's check and the insert
    monkeypatch.setattr(rules, "check_source_id_free", lambda **kwargs: None)
    assert create(api, source="watchlist", source_id="W-1").status_code == 201
    response = create(api, source="watchlist", source_id="W-1")
    assert response.status_code == 400 and "source_id" in response.json()


# --- fuzzy name search ----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Zhang Wei", "zhang  wei", "ZHANG Wei", "Zhang Weii", "Wei Zhang", "Zhāng Wěi",
                                   "张伟", "zhang"])
def test_name_is_fuzzy(api, world, query):
    factories.person(world.a, "Zhang Wei")
    factories.person(world.a, "Li Na")
    assert names_found(api, name=query) == ["Zhang Wei"]


def test_name_finds_a_person_by_a_native_script_variant(api, world):
    factories.person(world.a, "Zhang Wei", names=["张伟"])
    factories.person(world.a, "Chen Jie", names=["陈杰"])
    assert names_found(api, name="张伟") == ["Zhang Wei"]
    assert names_found(api, name="陈杰") == ["Chen Jie"]


def test_name_ranks_by_similarity_unless_ordered(api, world):
    factories.person(world.a, "Zhang Weiming")
    factories.person(world.a, "Zhang Wei")
    factories.person(world.a, "Wang Fang")
    assert names_found(api, name="zhang wei") == ["Zhang Wei", "Zhang Weiming"]
    assert names_found(api, name="zhang wei", ordering="-name") == ["Zhang Weiming", "Zhang Wei"]


def test_name_search_uses_the_trigram_index(world):
    """The filter is written with the operator the GIN index answers (word similarity, `%>`)."""
    from entities.filtersets import PersonFilterSet

    sql = str(PersonFilterSet({"name": "zhang wei"}, queryset=Person.objects.all()).qs.query)
    assert '"search_text" %> ' in sql


def test_punctuation_only_names_find_nothing(api, world):
    factories.person(world.a, "Zhang Wei")
    assert names_found(api, name="!!!") == []


# --- filters --------------------------------------------------------------------------------------


def test_filters(api, world, investigator):
    zhang = factories.person(world.a, "Zhang Wei", nationalities=["CN", "VN"], birth_date=datetime.date(1975, 4, 2),
                             identifiers=[{"scheme": "national_id", "number": VALID_RIC, "country": "CN"}],
                             phones=["+8613800138000"], emails=["zhang.wei@example.cn"], source="registry")
    factories.person(world.a, "Nguyen Van An", nationalities=["VN"], birth_date=datetime.date(1980, 1, 1),
                     phones=["+842438253456"], emails=["an@example.vn"], source="watchlist", notes="courier")
    case = factories.case(world.a, world.a1, lead=investigator)
    factories.party(case, zhang, role="ringleader")

    assert names_found(api, nationality="VN") == ["Nguyen Van An", "Zhang Wei"]
    assert names_found(api, nationality="cn") == ["Zhang Wei"]
    assert names_found(api, birth_date="1975-04-02") == ["Zhang Wei"]
    assert names_found(api, identifier="110105-19491231-002x") == ["Zhang Wei"]
    assert names_found(api, identifier="999") == []
    assert names_found(api, phone="+86 138 0013 8000") == ["Zhang Wei"]
    assert names_found(api, phone="8613800138000") == ["Zhang Wei"]
    assert names_found(api, phone="0084 24 3825 3456") == ["Nguyen Van An"]
    assert names_found(api, email="Zhang.Wei@EXAMPLE.cn") == ["Zhang Wei"]
    assert names_found(api, case=str(case.pk)) == ["Zhang Wei"]
    assert names_found(api, source="watchlist") == ["Nguyen Van An"]
    assert names_found(api, q="courier") == ["Nguyen Van An"]
    assert names_found(api, q="zhang") == ["Zhang Wei"]
    assert names_found(api, q=VALID_RIC) == ["Zhang Wei"]
    assert names_found(api, ordering="-birth_date") == ["Nguyen Van An", "Zhang Wei"]
    assert names_found(api, ordering="birth_date") == ["Zhang Wei", "Nguyen Van An"]


@pytest.mark.parametrize(("param", "value"), [("nationality", "XX"), ("birth_date", "1975-13-01"),
                                              ("phone", "call me"), ("case", "not-a-uuid"),
                                              ("created_after", "yesterday")])
def test_a_bad_filter_value_is_a_400_naming_it(api, world, param, value):
    response = api.get(URL, {param: value})
    assert response.status_code == 400
    assert param in response.json()


def test_case_filter_ignores_cases_the_caller_cannot_see(api, world):
    person = factories.person(world.a, "Zhang Wei")
    hidden = factories.case(world.a, world.a2)  # another unit's case: the investigator of a1 does not see it
    factories.party(hidden, person)
    assert names_found(api, case=str(hidden.pk)) == []


def test_created_and_updated_after(api, world):
    old = factories.person(world.a, "Old")
    Person.objects.filter(pk=old.pk).update(created_at="2020-01-01T00:00:00Z", updated_at="2020-01-01T00:00:00Z")
    factories.person(world.a, "New")
    assert names_found(api, created_after="2025-01-01T00:00:00Z") == ["New"]
    assert names_found(api, updated_after="2025-01-01T00:00:00Z") == ["New"]


# --- cases of a person -----------------------------------------------------------------------------


def test_cases_lists_only_visible_cases_with_roles(api, world, investigator, supervisor, client_for):
    person = factories.person(world.a, "Zhang Wei")
    mine = factories.case(world.a, world.a1, lead=investigator)
    hidden = factories.case(world.a, world.a2)  # another unit's: the investigator of a1 does not see it
    factories.party(mine, person, role="ringleader")
    factories.party(hidden, person, role="financier")
    factories.party(mine, person, role="buyer", archived=True)
    expected = [{"id": str(mine.pk), "reference": mine.reference, "role": "ringleader"}]
    assert api.get(detail(person.pk)).json()["cases"] == expected
    assert api.get(URL).json()["results"][0]["cases"] == expected
    # a supervisor sees every case of the agency
    seen = client_for(supervisor).get(detail(person.pk)).json()["cases"]
    assert sorted(c["role"] for c in seen) == ["financier", "ringleader"]


# --- access, ETags, archive ------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("analyst", 403), ("auditor", 403),
                                              ("investigator", 201), ("supervisor", 201), ("agency_admin", 201)])
def test_who_may_create(client_for, world, role, status):
    user = factories.user(world.a, role, world.a1)
    assert client_for(user).post(URL, {"name": "x"}, format="json").status_code == status


def test_anonymous_is_401(client_for):
    assert client_for(None).get(URL).status_code == 401


def test_an_organisation_is_not_a_person(api, world):
    org = factories.organization(world.a, "Grey Ore Ltd")
    assert api.get(detail(org.pk)).status_code == 404
    assert api.patch(detail(org.pk), {"name": "x"}, format="json").status_code == 404
    assert api.delete(detail(org.pk)).status_code == 404
    assert names_found(api) == []


def test_another_agencys_person_is_404(api, world):
    foreign = factories.person(world.b, "Zhang Wei")
    assert api.get(detail(foreign.pk)).status_code == 404
    assert api.patch(detail(foreign.pk), {"name": "x"}, format="json").status_code == 404
    assert api.delete(detail(foreign.pk)).status_code == 404
    assert names_found(api) == [] and names_found(api, name="zhang wei") == []
    foreign.refresh_from_db()
    assert foreign.name == "Zhang Wei" and not foreign.archived


def test_a_person_of_a_shared_case_is_read_only_to_the_other_agency(client_for, world):
    owner = factories.user(world.b, "investigator", world.b1)
    case = factories.case(world.b, world.b1, lead=owner)
    person = factories.person(world.b, "Zhang Wei")
    factories.party(case, person, role="courier")
    factories.share(case, world.a, access="read")
    reader = client_for(factories.user(world.a, "investigator", world.a1))
    response = reader.get(detail(person.pk))
    assert response.status_code == 200
    assert response.json()["agency"] == "ASB"
    assert response.json()["cases"] == [{"id": str(case.pk), "reference": case.reference, "role": "courier"}]
    assert [p["name"] for p in reader.get(URL).json()["results"]] == ["Zhang Wei"]
    assert reader.patch(detail(person.pk), {"name": "x"}, format="json").status_code == 403
    assert reader.delete(detail(person.pk)).status_code == 403
    person.refresh_from_db()
    assert person.name == "Zhang Wei" and not person.archived


def test_etag_and_if_match(api, world):
    person = factories.person(world.a, "Zhang Wei")
    assert api.get(detail(person.pk))["ETag"] == '"1"'
    ok = api.patch(detail(person.pk), {"birth_place": "Hechi"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"' and ok.json()["version"] == 2
    stale = api.patch(detail(person.pk), {"birth_place": "Nanning"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert api.put(detail(person.pk), {"name": "Zhang Wei"}, format="json", HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(detail(person.pk), HTTP_IF_MATCH='"1"').status_code == 412
    person.refresh_from_db()
    assert person.birth_place == "Hechi" and person.version == 2 and not person.archived


def test_an_unchanged_write_keeps_the_version(api, world):
    person = factories.person(world.a, "Zhang Wei", phones=["+8613800138000"])
    response = api.patch(detail(person.pk), {"phones": ["+86 138 0013 8000"]}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 1


def test_delete_archives(api, world, supervisor, client_for):
    person = factories.person(world.a, "Zhang Wei")
    assert api.delete(detail(person.pk)).status_code == 204
    person.refresh_from_db()
    assert person.archived is True
    assert api.get(detail(person.pk)).json()["archived"] is True
    assert names_found(api) == []
    assert api.get(URL, {"include_archived": "true"}).status_code == 403
    assert [p["name"] for p in client_for(supervisor).get(URL, {"include_archived": "true"}).json()["results"]] \
        == ["Zhang Wei"]
    assert AuditEvent.objects.filter(object_id=str(person.pk), action="archive").count() == 1


def test_writes_and_detail_views_are_audited(api, world):
    pk = create(api).json()["id"]
    api.patch(detail(pk), {"notes": "seen in Hanoi"}, format="json")
    api.get(detail(pk))
    actions = list(AuditEvent.objects.filter(object_id=pk).order_by("seq").values_list("action", flat=True))
    assert actions == ["create", "update", "view"]


def test_list_queries_do_not_grow_with_page_size(api, world, investigator):
    cases = [factories.case(world.a, world.a1, lead=investigator) for _ in range(3)]
    for i in range(20):
        person = factories.person(world.a, f"Person {i:02d}", phones=["+8613800138000"])
        factories.party(cases[i % 3], person)
        factories.party(cases[(i + 1) % 3], person, role="witness")
    assert api.get(URL, {"page_size": 1}).status_code == 200  # warm-up: first use of the token writes

    def measure(**params):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(URL, params)
        assert response.status_code == 200
        assert all(len(p["cases"]) == 2 for p in response.json()["results"])
        return len(queries)

    assert measure(page_size=2) == measure(page_size=20)
    assert measure(page_size=2, name="person") == measure(page_size=20, name="person")


@pytest.mark.parametrize("param", ["name", "q", "email", "phone", "identifier", "source", "nationality", "birth_date"])
def test_a_nul_in_a_filter_is_a_400(api, param):
    response = api.get(URL, {param: "a\x00b"})
    assert response.status_code == 400 and param in response.json()


@pytest.mark.parametrize("url", [URL, "/api/v1/organizations/"])
def test_the_list_reads_the_caller_s_scope_in_its_own_query(world, api, url):
    """The access scope is ANDed into the list's query (the agency's own rows by the table's agency column), not
    wrapped round it as `id IN (<the whole scope>)`, which has PostgreSQL join the table with itself in full to find
    one page. What it shows is the access matrix's (tests/test_access_matrix_index.py)."""
    factories.person(world.a, "Li Mei")
    factories.organization(world.a, "Red River Metals Co., Ltd.")
    assert api.get(url, {"page_size": 1}).status_code == 200  # warm-up: first use of the token writes
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, {"page_size": 10})
    assert response.status_code == 200 and response.json()["count"] == 1
    reads = [query["sql"] for query in queries if query["sql"].startswith(("SELECT COUNT(*)",
                                                                           'SELECT "entities_entity"."id"'))]
    assert len(reads) == 2, reads  # the count and the page
    assert all('"entities_entity"."agency_id" = ' in sql for sql in reads), reads


@pytest.mark.django_db
def test_a_page_of_persons_is_read_in_order_off_an_index(world, client_for):
    """The list's default order (name, id) has its index: a page is read off it, not sorted out of every row."""
    from core import policy

    inv = factories.user(world.a, "investigator", world.a1)
    for n in range(30):
        factories.person(world.a, f"Person {n:02d}")
    assert client_for(inv).get("/api/v1/persons/?page_size=5").status_code == 200
    page = (Person.objects.all() & policy.visible(inv, Person)).filter(archived=False).order_by("name", "id")[:5]
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        # A table this small would be scanned and sorted whatever its indexes: what is asked is whether an index
        # gives the order at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "entity_name_id" in plan, plan
    assert "Sort" not in plan.split("SubPlan")[0], plan


@pytest.mark.django_db
def test_same_as_within_the_callers_agency_needs_no_scope(world, client_for):
    """A person of the caller's own agency: its live cluster members of that agency are seen without the policy's
    scope being put into the lookup (every user of an agency sees its records); archived ones still are not."""
    import uuid

    from xref.models import IdentityMember

    inv = factories.user(world.a, "investigator", world.a1)
    person, twin, gone = (factories.person(world.a, name) for name in ("Wei Zhang", "Zhang Wei", "W. Zhang"))
    gone.archived = True
    gone.save()
    cluster = uuid.uuid4()
    IdentityMember.objects.bulk_create([IdentityMember(entity=e, cluster=cluster) for e in (person, twin, gone)])
    with CaptureQueriesContext(connection) as queries:
        response = client_for(inv).get(f"/api/v1/persons/{person.pk}/")
    assert response.status_code == 200, response.json()
    assert response.json()["same_as"] == [{"type": "person", "id": str(twin.pk), "name": "Zhang Wei"}]
    lookup = [q["sql"] for q in queries if q["sql"].startswith('SELECT "xref_identitymember"')]
    assert len(lookup) == 1 and "cases_caseparty" not in lookup[0], lookup


@pytest.mark.django_db(transaction=True)
def test_each_transactions_writes_start_their_own_outbox_row(world):
    """Writes of one transaction share a cross-referencing outbox row; the next transaction's start their own at
    once, without first trying to add to the previous transaction's (sent) row."""
    from django.db import transaction

    from core.models import OutboxMessage
    from entities.services import person_create

    inv = factories.user(world.a, "investigator", world.a1)
    with transaction.atomic():
        person_create(agency=world.a, actor=inv, data={"name": "First Person"})
        person_create(agency=world.a, actor=inv, data={"name": "Second Person"})
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        person_create(agency=world.a, actor=inv, data={"name": "Third Person"})
    appends = [q["sql"] for q in queries if q["sql"].lstrip().startswith("UPDATE core_outboxmessage")]
    assert appends == [], appends
    rows = list(OutboxMessage.objects.filter(task="xref.records_changed").order_by("id"))
    assert [len(row.kwargs["ids"]) for row in rows] == [2, 1]
