"""Cases from the client's side: fields, reference scheme, status machine, ETags, archive, filters, nesting."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from cases.models import Case

from . import factories

URL = "/api/v1/cases/"


def detail(case_id):
    return f"{URL}{case_id}/"


@pytest.fixture
def case(world, investigator):
    return factories.case(world.a, world.a1, classification="restricted", lead=investigator)


def test_create_returns_every_contract_field(api, investigator):
    response = api.post(URL, {"title": "Grey ore", "summary": "Antimony via VN", "priority": "high",
                              "classification": "confidential", "commodities": ["antimony", "gallium"],
                              "tags": ["family-ring"], "opened_on": "2026-03-01"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "agency", "reference", "title", "summary",
                  "status", "priority", "classification", "unit", "lead", "members", "commodities",
                  "opened_on", "closed_on", "tags"):
        assert field in body
    assert body["agency"] == "SSB"
    assert body["status"] == "open"
    assert body["lead"] == investigator.username
    assert sorted(body["commodities"]) == ["antimony", "gallium"]
    assert body["version"] == 1


def test_references_follow_agency_year_number(api):
    year = datetime.date.today().year
    refs = [api.post(URL, {"title": f"c{i}"}, format="json").json()["reference"] for i in range(3)]
    assert refs == [f"SSB-{year}-{n:04d}" for n in (1, 2, 3)]


def test_read_only_fields_sent_by_client_are_ignored(api, world):
    response = api.post(URL, {"title": "x", "agency": "ASB", "reference": "FAKE-1", "version": 99,
                              "id": "00000000-0000-0000-0000-000000000000"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["agency"] == "SSB" and body["reference"] != "FAKE-1" and body["version"] == 1
    assert body["id"] != "00000000-0000-0000-0000-000000000000"


def test_a_new_case_starts_open(api):
    response = api.post(URL, {"title": "x", "status": "closed"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()


def test_classification_above_own_clearance_is_refused(client_for, world):
    low = factories.user(world.a, "investigator", world.a1, clearance="restricted")
    response = client_for(low).post(URL, {"title": "x", "classification": "secret"}, format="json")
    assert response.status_code == 400
    assert "classification" in response.json()


@pytest.mark.parametrize(
    ("start", "target", "role", "expected"),
    [
        ("open", "investigating", "investigator", 200),
        ("investigating", "referred", "investigator", 200),
        ("open", "referred", "investigator", 409),
        ("open", "referred", "supervisor", 409),
        ("referred", "investigating", "supervisor", 409),
        ("investigating", "open", "supervisor", 409),
        ("referred", "closed", "investigator", 403),
        ("open", "closed", "supervisor", 200),
        ("referred", "closed", "supervisor", 200),
        ("closed", "investigating", "supervisor", 200),
        ("closed", "investigating", "investigator", 403),
        ("closed", "open", "supervisor", 409),
        ("closed", "referred", "supervisor", 409),
    ],
)
def test_status_machine(client_for, world, start, target, role, expected):
    user = factories.user(world.a, role, world.a1)
    case = factories.case(world.a, world.a1, status=start)
    response = client_for(user).patch(detail(case.pk), {"status": target}, format="json")
    assert response.status_code == expected, response.json()
    case.refresh_from_db()
    assert case.status == (target if expected == 200 else start)
    if expected == 200:
        assert (case.closed_on is not None) == (target == "closed")


def test_etag_and_if_match(api, case):
    first = api.get(detail(case.pk))
    assert first["ETag"] == '"1"'
    ok = api.patch(detail(case.pk), {"title": "renamed"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"' and ok.json()["version"] == 2
    stale = api.patch(detail(case.pk), {"title": "lost update"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert "detail" in stale.json()
    case.refresh_from_db()
    assert case.title == "renamed" and case.version == 2
    stale_put = api.put(detail(case.pk), {"title": "again"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale_put.status_code == 412


def test_a_patch_reads_the_case_once_scoped_and_locked(api, case):
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(detail(case.pk), {"title": "renamed"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200, response.json()
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "cases_case"."id"')]
    assert len(reads) == 1
    assert reads[0].endswith('FOR UPDATE OF "cases_case"') and " IN (SELECT " in reads[0]


def test_delete_archives_and_lists_hide_archived(client_for, world, case):
    supervisor = client_for(factories.user(world.a, "supervisor", world.a1))
    assert supervisor.delete(detail(case.pk), HTTP_IF_MATCH='"7"').status_code == 412
    assert supervisor.delete(detail(case.pk)).status_code == 204
    case.refresh_from_db()
    assert case.archived is True
    assert Case.objects.filter(pk=case.pk).exists()
    ids = [c["id"] for c in supervisor.get(URL).json()["results"]]
    assert str(case.pk) not in ids
    ids = [c["id"] for c in supervisor.get(URL, {"include_archived": "true"}).json()["results"]]
    assert str(case.pk) in ids
    assert supervisor.get(detail(case.pk)).json()["archived"] is True


def test_include_archived_is_for_supervisors(api, case):
    assert api.get(URL, {"include_archived": "true"}).status_code == 403


def test_investigator_cannot_archive(api, case):
    assert api.delete(detail(case.pk)).status_code == 403
    case.refresh_from_db()
    assert case.archived is False


def test_filters(api, world, investigator):
    person = factories.person(world.a, "Zhang Wei")
    org = factories.organization(world.a, "Grey Ore Trading Ltd")
    antimony = factories.case(world.a, world.a1, title="antimony", priority="high", opened_on=datetime.date(2026, 1, 5),
                              lead=investigator)
    antimony.commodities.set(["antimony"])  # type: ignore[list-item]  # stubs: pks are ints; ours are codes
    factories.party(antimony, person)
    gallium = factories.case(world.a, world.a1, title="gallium", priority="low", status="investigating",
                             classification="secret", opened_on=datetime.date(2026, 6, 5))
    gallium.commodities.set(["gallium"])  # type: ignore[list-item]  # stubs: pks are ints; ours are codes
    factories.party(gallium, org)

    def titles(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.json()
        return sorted(c["title"] for c in response.json()["results"])

    assert titles(status="investigating") == ["gallium"]
    assert titles(priority="high") == ["antimony"]
    assert titles(classification="secret") == ["gallium"]
    assert titles(unit="econ") == ["antimony", "gallium"]
    assert titles(unit="cyber") == []
    assert titles(lead=investigator.username) == ["antimony"]
    assert titles(commodity="antimony") == ["antimony"]
    assert titles(opened_after="2026-03-01") == ["gallium"]
    assert titles(opened_before="2026-03-01") == ["antimony"]
    assert titles(person=str(person.pk)) == ["antimony"]
    assert titles(organization=str(org.pk)) == ["gallium"]
    assert titles(q="GALL") == ["gallium"]
    assert [c["title"] for c in api.get(URL, {"ordering": "opened_on"}).json()["results"]] == ["antimony", "gallium"]
    assert [c["title"] for c in api.get(URL, {"ordering": "-opened_on"}).json()["results"]] == ["gallium", "antimony"]
    assert api.get(URL, {"status": "bogus"}).status_code == 400
    assert api.get(URL, {"opened_after": "not-a-date"}).status_code == 400


def test_pagination_caps_page_size(api, world):
    for i in range(3):
        factories.case(world.a, world.a1, title=f"c{i}")
    body = api.get(URL, {"page_size": 100000}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    page = api.get(URL, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(api.get(page["next"]).json()["results"]) == 1


def test_updated_after_supports_incremental_sync(api, world):
    old = factories.case(world.a, world.a1, title="old")
    Case.objects.filter(pk=old.pk).update(updated_at="2020-01-01T00:00:00Z")
    factories.case(world.a, world.a1, title="new")
    titles = [c["title"] for c in api.get(URL, {"updated_after": "2025-01-01T00:00:00Z"}).json()["results"]]
    assert titles == ["new"]


class TestParties:
    def test_add_list_update_archive(self, api, world, case):
        person = factories.person(world.a, "Li Na")
        url = f"{detail(case.pk)}parties/"
        created = api.post(url, {"entity": {"type": "person", "id": str(person.pk)}, "role": "courier",
                                 "custody_status": "arrested"}, format="json")
        assert created.status_code == 201, created.json()
        party = created.json()
        assert party["entity"] == {"type": "person", "id": str(person.pk), "name": "Li Na"}
        listed = api.get(url).json()["results"]
        assert [p["id"] for p in listed] == [party["id"]]
        patched = api.patch(f"{url}{party['id']}/", {"custody_status": "charged"}, format="json")
        assert patched.status_code == 200 and patched.json()["custody_status"] == "charged"
        assert api.delete(f"{url}{party['id']}/").status_code == 204
        assert api.get(url).json()["results"] == []

    def test_organization_party_and_bad_refs(self, api, world, case):
        url = f"{detail(case.pk)}parties/"
        org = factories.organization(world.a, "Shell Co")
        assert api.post(url, {"entity": {"type": "organization", "id": str(org.pk)}, "role": "buyer"},
                        format="json").status_code == 201
        for bad in ({"type": "ship", "id": str(org.pk)}, {"type": "person", "id": "nope"}, "x",
                    {"type": "person", "id": str(org.pk)}):
            response = api.post(url, {"entity": bad, "role": "buyer"}, format="json")
            assert response.status_code == 400 and "entity" in response.json()
        assert api.post(url, {"entity": {"type": "organization", "id": str(org.pk)}, "role": "boss"},
                        format="json").status_code == 400

    def test_party_of_invisible_case_is_404(self, api, world):
        other = factories.case(world.b, world.b1)
        assert api.get(f"{detail(other.pk)}parties/").status_code == 404


class TestNotes:
    def test_author_is_the_caller(self, api, case, investigator):
        url = f"{detail(case.pk)}notes/"
        created = api.post(url, {"body": "Courier seen at the border", "author": "someone-else"}, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["author"] == investigator.username
        assert api.get(url).json()["results"][0]["body"] == "Courier seen at the border"
        assert api.post(url, {"body": ""}, format="json").status_code == 400


class TestShares:
    def test_supervisor_shares_with_another_agency(self, client_for, world, case):
        supervisor = client_for(factories.user(world.a, "supervisor", world.a1))
        url = f"{detail(case.pk)}shares/"
        created = supervisor.post(url, {"agency": "ASB", "unit": "ports", "access": "read"}, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["unit"] == "ports" and created.json()["agency"] == "ASB"
        assert supervisor.post(url, {"agency": "SSB", "access": "read"}, format="json").status_code == 400
        assert supervisor.post(url, {"agency": "ASB", "unit": "econ", "access": "read"},
                               format="json").status_code == 400
        assert supervisor.post(url, {"agency": "NOPE", "access": "read"}, format="json").status_code == 400
        ports_user = client_for(factories.user(world.b, "investigator", world.b1))
        intel_user = client_for(factories.user(world.b, "investigator", world.b2))
        assert ports_user.get(detail(case.pk)).status_code == 200
        assert intel_user.get(detail(case.pk)).status_code == 404
        # Revoking (archiving) the share takes the case away again.
        assert supervisor.delete(f"{url}{created.json()['id']}/").status_code == 204
        assert ports_user.get(detail(case.pk)).status_code == 404


def test_timeline_lists_events_and_notes_newest_first(api, case, investigator):
    api.patch(detail(case.pk), {"title": "renamed"}, format="json")
    api.post(f"{detail(case.pk)}notes/", {"body": "first note"}, format="json")
    response = api.get(f"{detail(case.pk)}timeline/")
    assert response.status_code == 200
    entries = response.json()["results"]
    kinds = [(e["type"], e["action"]) for e in entries]
    assert ("note", "note") in kinds and ("event", "update") in kinds and ("event", "create") in kinds
    stamps = [e["at"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)


def test_superuser_without_agency_cannot_own_a_case(client_for, world):
    root = factories.user(None, "viewer", username="root", is_superuser=True, is_staff=True)
    response = client_for(root).post(URL, {"title": "x"}, format="json")
    assert response.status_code == 400
    assert "agency" in response.json()
    assert not Case.objects.filter(title="x").exists()


def test_patch_that_changes_nothing_keeps_the_version(api, case):
    response = api.patch(detail(case.pk), {"title": case.title}, format="json")
    assert response.status_code == 200 and response["ETag"] == '"1"'
    case.refresh_from_db()
    assert case.version == 1


def test_an_update_reads_the_case_s_unit_and_users_with_its_locked_row(api, world, investigator):
    """The row locked for the write comes with what the viewset joins (agency, unit, lead, author): the audit event
    and the response read them from it, not one query each after the write."""
    case = factories.case(world.a, world.a1, lead=investigator)
    Case.objects.filter(pk=case.pk).update(created_by=investigator)
    case.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(f"{URL}{case.pk}/", {"title": "Gallium, second route"}, format="json",
                             HTTP_IF_MATCH=f'"{case.version}"')
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["title"], body["unit"], body["lead"], body["created_by"], body["agency"]) == (
        "Gallium, second route", "econ", investigator.username, investigator.username, "SSB")
    separate = [query["sql"] for query in queries
                if query["sql"].startswith(('SELECT "accounts_unit"', 'SELECT "accounts_agency"'))]
    assert not separate, separate


def test_a_title_change_reads_the_case_once_with_its_members_for_the_answer(api, world, investigator):
    """A PATCH finds the case and reads its row once, locked, its members' usernames and commodities' codes
    columns of that read for the answer; a change that leaves them alone does not read them again for its audit
    event, nor for the answer."""
    member = factories.user(world.a, "analyst", world.a1)
    case = factories.case(world.a, world.a1, lead=investigator, members=(member,))
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(f"{URL}{case.pk}/", {"title": "Gallium, third route"}, format="json",
                             HTTP_IF_MATCH=f'"{case.version}"')
    assert response.status_code == 200, response.json()
    assert response.json()["members"] == [member.username]
    sql = [query["sql"] for query in queries]
    full_reads = [s for s in sql if s.startswith('SELECT "cases_case"."id", "cases_case"."created_at"')]
    assert len(full_reads) == 1 and full_reads[0].endswith('FOR UPDATE OF "cases_case"'), full_reads
    assert '"cases_case_members"' in full_reads[0] and '"cases_case_commodities"' in full_reads[0]
    member_reads = [s for s in sql if 'FROM "accounts_user" INNER JOIN "cases_case_members"' in s]
    assert member_reads == []
    event = AuditEvent.objects.filter(object_id=str(case.pk), action="update").get()
    assert set(event.changes) == {"title"}


def test_a_members_change_answers_the_members_after_it(api, world, investigator):
    """The members column read with the locked row is the one before the change: a change of members (or of
    commodities) answers them as written, read again."""
    before, after = factories.user(world.a, "analyst", world.a1), factories.user(world.a, "analyst", world.a1)
    case = factories.case(world.a, world.a1, lead=investigator, members=(before,), commodities=("antimony",))
    response = api.patch(f"{URL}{case.pk}/", {"members": [after.username, investigator.username],
                                               "commodities": ["gallium", "germanium"]},
                         format="json", HTTP_IF_MATCH=f'"{case.version}"')
    assert response.status_code == 200, response.json()
    assert response.json()["members"] == sorted([after.username, investigator.username])
    assert response.json()["commodities"] == ["gallium", "germanium"]
    assert api.get(f"{URL}{case.pk}/").json()["members"] == response.json()["members"]
