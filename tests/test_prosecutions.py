"""Prosecutions from the client's side: fields, charges, sentence, stage machine, access, filters, ETags, archive."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from cases.models import Charge, Prosecution

from . import factories

URL = "/api/v1/prosecutions/"
STAGES = ("investigation", "indicted", "trial", "verdict", "appeal", "final")
# API.md § Prosecutions: forward only, one step at a time; a verdict may go to appeal or straight to final.
FORWARD = {("investigation", "indicted"), ("indicted", "trial"), ("trial", "verdict"), ("verdict", "appeal"),
           ("verdict", "final"), ("appeal", "final")}


def detail(pk):
    return f"{URL}{pk}/"


def ref(entity):
    return {"type": entity.type, "id": str(entity.pk)}


@pytest.fixture
def case(world, investigator):
    return factories.case(world.a, world.a1, lead=investigator)


@pytest.fixture
def defendant(world):
    return factories.person(world.a, "Zhang Wei")


@pytest.fixture
def payload(case, defendant):
    return {"case": str(case.pk), "defendant": ref(defendant)}


def create(api, payload, **fields):
    response = api.post(URL, {**payload, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- fields --------------------------------------------------------------------------------


def test_create_returns_every_contract_field(api, payload, case, defendant):
    body = create(api, payload, court="Intermediate People's Court", prosecutor_office="City Procuratorate",
                  filed_on="2026-02-01",
                  charges=[{"statute": "Export Control Law art. 34", "description": "Export without licence"},
                           {"statute": "Criminal Law art. 151", "description": "Smuggling of controlled goods"}])
    for name in ("id", "created_at", "updated_at", "version", "archived", "case", "defendant", "charges", "court",
                 "prosecutor_office", "stage", "filed_on", "verdict", "verdict_on", "sentence"):
        assert name in body, name
    assert body["case"] == str(case.pk)
    assert body["defendant"] == {"type": "person", "id": str(defendant.pk), "name": "Zhang Wei"}
    assert [c["statute"] for c in body["charges"]] == ["Export Control Law art. 34", "Criminal Law art. 151"]
    assert body["charges"][0] == {"statute": "Export Control Law art. 34", "description": "Export without licence"}
    assert body["stage"] == "investigation" and body["verdict"] == "pending"
    assert body["sentence"] == {"custody_months": None, "fine_amount": None, "fine_currency": "", "confiscation": ""}
    assert body["version"] == 1 and body["archived"] is False
    assert api.get(detail(body["id"])).json() == body
    assert list(Charge.objects.filter(prosecution_id=body["id"]).values_list("seq", flat=True)) == [1, 2]


def test_create_is_audited_with_its_charges(api, payload, case):
    body = create(api, payload, charges=[{"statute": "ECL 34"}])
    event = AuditEvent.objects.get(object_id=body["id"], action="create")
    assert event.case_id == case.pk and event.object_type == "prosecution"
    assert event.changes["charges"][1] == [{"seq": 1, "statute": "ECL 34", "description": ""}]


def test_an_organisation_may_be_the_defendant(api, payload, world):
    company = factories.organization(world.a, "Grey Ore Trading Ltd")
    body = create(api, payload, defendant=ref(company))
    assert body["defendant"]["type"] == "organization" and body["defendant"]["name"] == "Grey Ore Trading Ltd"


def test_read_only_fields_are_ignored_and_unknown_fields_refused(api, payload):
    body = create(api, payload, id="00000000-0000-0000-0000-000000000000", version=9, archived=True)
    assert body["id"] != "00000000-0000-0000-0000-000000000000" and body["version"] == 1 and not body["archived"]
    response = api.post(URL, {**payload, "judge": "x"}, format="json")
    assert response.status_code == 400 and "judge" in response.json()


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"stage": "sentenced"}, "stage"),
        ({"verdict": "guilty"}, "verdict"),
        ({"filed_on": "yesterday"}, "filed_on"),
        ({"court": "x" * 201}, "court"),
        ({"charges": "ECL 34"}, "charges"),
        ({"charges": [{"description": "no statute"}]}, "charges"),
        ({"charges": [{"statute": ""}]}, "charges"),
        ({"charges": [{"statute": "ECL 34", "article": 3}]}, "charges"),
        ({"charges": ["ECL 34"]}, "charges"),
        ({"charges": [{"statute": "ECL 34"}] * 201}, "charges"),
        ({"sentence": "two years"}, "sentence"),
        ({"verdict": "convicted", "sentence": {"custody_months": -1}}, "sentence"),
        ({"verdict": "convicted", "sentence": {"custody_months": "long"}}, "sentence"),
        ({"verdict": "convicted", "sentence": {"fine_amount": "-5", "fine_currency": "CNY"}}, "sentence"),
        ({"verdict": "convicted", "sentence": {"fine_amount": "500000"}}, "sentence"),
        ({"verdict": "convicted", "sentence": {"fine_amount": "5", "fine_currency": "XXQ"}}, "sentence"),
        ({"verdict": "convicted", "sentence": {"probation": 3}}, "sentence"),
        ({"verdict": "acquitted", "sentence": {"custody_months": 12}}, "sentence"),
        ({"sentence": {"confiscation": "the ore"}}, "sentence"),
        ({"verdict_on": "2026-05-01"}, "verdict_on"),
        ({"verdict": "convicted", "filed_on": "2026-05-02", "verdict_on": "2026-05-01"}, "verdict_on"),
    ],
)
def test_bad_fields_are_400_on_that_field(api, payload, fields, bad):
    response = api.post(URL, {**payload, **fields}, format="json")
    assert response.status_code == 400, response.json()
    assert bad in response.json()
    assert not Prosecution.objects.exists()


def test_every_bad_field_is_named_at_once(api, payload):
    response = api.post(URL, {**payload, "stage": "x", "verdict": "y", "charges": [{}]}, format="json")
    assert response.status_code == 400
    assert {"stage", "verdict", "charges"} <= set(response.json())


def test_case_and_defendant_are_required(api):
    response = api.post(URL, {}, format="json")
    assert response.status_code == 400 and {"case", "defendant"} <= set(response.json())


# --- charges and sentence ------------------------------------------------------------------


def test_a_write_replaces_the_charges_in_the_order_given(api, payload):
    body = create(api, payload, charges=[{"statute": "A"}, {"statute": "B"}])
    untouched = api.patch(detail(body["id"]), {"court": "Court 2"}, format="json").json()
    assert [c["statute"] for c in untouched["charges"]] == ["A", "B"]
    replaced = api.patch(detail(body["id"]), {"charges": [{"statute": "C", "description": "new"}, {"statute": "A"}]},
                         format="json")
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["charges"] == [{"statute": "C", "description": "new"}, {"statute": "A", "description": ""}]
    assert replaced.json()["version"] == untouched["version"] + 1
    assert api.get(detail(body["id"])).json()["charges"] == replaced.json()["charges"]
    assert Charge.objects.filter(prosecution_id=body["id"]).count() == 2
    event = AuditEvent.objects.filter(object_id=body["id"], action="update").latest("seq")
    assert [c["statute"] for c in event.changes["charges"][0]] == ["A", "B"]
    assert [c["statute"] for c in event.changes["charges"][1]] == ["C", "A"]
    cleared = api.patch(detail(body["id"]), {"charges": []}, format="json")
    assert cleared.json()["charges"] == []


def test_the_same_charges_again_change_nothing(api, payload):
    body = create(api, payload, charges=[{"statute": "A"}])
    again = api.patch(detail(body["id"]), {"charges": [{"statute": "A"}]}, format="json")
    assert again.status_code == 200 and again.json()["version"] == 1


def test_sentence_round_trip_and_wholesale_replacement(api, payload):
    body = create(api, payload, stage="verdict", verdict="convicted", filed_on="2026-01-10", verdict_on="2026-06-01",
                  sentence={"custody_months": 36, "fine_amount": "250000", "fine_currency": "cny",
                            "confiscation": "42 t of antimony ore"})
    assert body["sentence"] == {"custody_months": 36, "fine_amount": "250000.00", "fine_currency": "CNY",
                                "confiscation": "42 t of antimony ore"}
    prosecution = Prosecution.objects.get(pk=body["id"])
    assert (prosecution.custody_months, prosecution.fine_currency) == (36, "CNY")
    replaced = api.patch(detail(body["id"]), {"sentence": {"custody_months": 24}}, format="json").json()
    assert replaced["sentence"] == {"custody_months": 24, "fine_amount": None, "fine_currency": "",
                                    "confiscation": ""}
    cleared = api.patch(detail(body["id"]), {"sentence": None, "verdict": "acquitted"}, format="json")
    assert cleared.status_code == 200, cleared.json()
    assert cleared.json()["sentence"]["custody_months"] is None and cleared.json()["verdict"] == "acquitted"


def test_an_acquittal_must_clear_the_sentence(api, payload):
    body = create(api, payload, stage="verdict", verdict="convicted", sentence={"custody_months": 12})
    response = api.patch(detail(body["id"]), {"verdict": "acquitted"}, format="json")
    assert response.status_code == 400 and "sentence" in response.json()


# --- the stage machine ---------------------------------------------------------------------


@pytest.mark.parametrize(("start", "target"), list(itertools.product(STAGES, STAGES)))
def test_stage_machine(api, case, defendant, start, target):
    prosecution = factories.prosecution(case, defendant, stage=start)
    response = api.patch(detail(prosecution.pk), {"stage": target}, format="json")
    allowed = start == target or (start, target) in FORWARD
    assert response.status_code == (200 if allowed else 409), response.json()
    prosecution.refresh_from_db()
    assert prosecution.stage == (target if allowed else start)
    transitions = AuditEvent.objects.filter(object_id=str(prosecution.pk), action="transition")
    assert transitions.count() == (1 if allowed and start != target else 0)
    if not allowed:
        assert "detail" in response.json()


def test_a_new_prosecution_may_start_at_any_stage(api, payload):
    # Prosecutions are often recorded after the fact: the machine governs moves, not where a record starts.
    assert create(api, payload, stage="trial")["stage"] == "trial"


def test_a_refused_move_changes_nothing_else(api, case, defendant):
    prosecution = factories.prosecution(case, defendant, stage="trial", court="Old court")
    response = api.patch(detail(prosecution.pk), {"stage": "indicted", "court": "New court"}, format="json")
    assert response.status_code == 409
    prosecution.refresh_from_db()
    assert (prosecution.stage, prosecution.court, prosecution.version) == ("trial", "Old court", 1)


# --- case and defendant rules --------------------------------------------------------------


def test_a_case_the_caller_may_not_write_is_400_on_case(api, payload, world):
    other_agency = factories.case(world.b, world.b1)
    other_unit = factories.case(world.a, world.a2)  # the investigator of a1 does not see it
    shared_read = factories.case(world.b, world.b1)
    factories.share(shared_read, world.a, "read")
    for case_id in (other_agency.pk, other_unit.pk, shared_read.pk, "00000000-0000-0000-0000-000000000000",
                    "not-a-uuid", 12):
        response = api.post(URL, {**payload, "case": str(case_id)}, format="json")
        assert response.status_code == 400, (case_id, response.json())
        assert "case" in response.json()


def test_the_defendant_must_be_of_the_cases_agency(api, payload, world):
    foreign = factories.person(world.b, "Foreign Person")
    response = api.post(URL, {**payload, "defendant": ref(foreign)}, format="json")
    assert response.status_code == 400 and "defendant" in response.json()
    for bad in ({"type": "person"}, {"type": "vessel", "id": str(foreign.pk)}, "Zhang Wei",
                {"type": "organization", "id": payload["defendant"]["id"]}):
        response = api.post(URL, {**payload, "defendant": bad}, format="json")
        assert response.status_code == 400 and "defendant" in response.json(), bad


def test_on_a_case_shared_read_write_the_defendant_is_of_the_owning_agency(api, world, defendant):
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "write")
    theirs = factories.person(world.b, "Their suspect")
    factories.party(shared, theirs)
    response = api.post(URL, {"case": str(shared.pk), "defendant": ref(theirs)}, format="json")
    assert response.status_code == 201, response.json()
    response = api.post(URL, {"case": str(shared.pk), "defendant": ref(defendant)}, format="json")
    assert response.status_code == 400 and "defendant" in response.json()


def test_a_prosecution_stays_in_its_case(api, payload, world, investigator):
    body = create(api, payload)
    other = factories.case(world.a, world.a1, lead=investigator)
    response = api.patch(detail(body["id"]), {"case": str(other.pk)}, format="json")
    assert response.status_code == 400 and "case" in response.json()
    assert api.patch(detail(body["id"]), {"case": payload["case"]}, format="json").status_code == 200


def test_put_replaces_the_record(api, payload):
    body = create(api, payload, court="A court", charges=[{"statute": "X"}])
    response = api.put(detail(body["id"]), {**payload, "court": "B court", "stage": "indicted"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["court"] == "B court" and response.json()["stage"] == "indicted"
    assert api.put(detail(body["id"]), {"court": "C court"}, format="json").status_code == 400


# --- access --------------------------------------------------------------------------------


def test_another_agencys_prosecution_is_404(api, world):
    theirs = factories.prosecution(factories.case(world.b, world.b1), factories.person(world.b))
    assert api.get(detail(theirs.pk)).status_code == 404
    assert api.patch(detail(theirs.pk), {"court": "x"}, format="json").status_code == 404
    assert api.delete(detail(theirs.pk)).status_code == 404
    assert api.get(URL).json()["count"] == 0
    assert api.get(detail("not-a-uuid")).status_code == 404


def test_a_prosecution_of_an_invisible_case_of_ones_agency_is_404(api, world):
    hidden = factories.prosecution(factories.case(world.a, world.a2), factories.person(world.a))
    assert api.get(detail(hidden.pk)).status_code == 404
    assert api.get(URL).json()["count"] == 0


def test_on_a_case_shared_read_only_prosecutions_are_read_not_written(api, world):
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "read")
    theirs = factories.prosecution(shared, factories.person(world.b))
    assert api.get(detail(theirs.pk)).status_code == 200
    assert [p["id"] for p in api.get(URL).json()["results"]] == [str(theirs.pk)]
    assert api.patch(detail(theirs.pk), {"court": "x"}, format="json").status_code == 403
    assert api.delete(detail(theirs.pk)).status_code == 403


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("analyst", 403), ("auditor", 403),
                                                ("investigator", 201), ("supervisor", 201)])
def test_who_may_create(client_for, world, case, payload, role, expected):
    caller = factories.user(world.a, role, world.a1)
    response = client_for(caller).post(URL, payload, format="json")
    assert response.status_code == expected, response.json()


def test_anonymous_is_401(client_for, db):
    assert client_for(None).get(URL).status_code == 401


# --- ETag, If-Match, archive ---------------------------------------------------------------


def test_etag_and_if_match(api, payload):
    body = create(api, payload)
    first = api.get(detail(body["id"]))
    assert first["ETag"] == '"1"'
    ok = api.patch(detail(body["id"]), {"court": "x"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    stale = api.patch(detail(body["id"]), {"court": "lost"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and "detail" in stale.json()
    assert api.put(detail(body["id"]), payload, format="json", HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(detail(body["id"]), HTTP_IF_MATCH='"1"').status_code == 412
    assert Prosecution.objects.get(pk=body["id"]).court == "x"


def test_delete_archives(api, client_for, world, payload):
    body = create(api, payload)
    # Prosecutions are case records: whoever may write them may archive them (investigators included).
    assert api.delete(detail(body["id"])).status_code == 204
    prosecution = Prosecution.objects.get(pk=body["id"])
    assert prosecution.archived is True
    assert api.get(URL).json()["count"] == 0
    assert api.get(detail(body["id"])).json()["archived"] is True
    assert api.get(URL, {"include_archived": "true"}).status_code == 403
    supervisor = client_for(factories.user(world.a, "supervisor", world.a1))
    assert [p["id"] for p in supervisor.get(URL, {"include_archived": "true"}).json()["results"]] == [body["id"]]
    assert AuditEvent.objects.filter(object_id=body["id"], action="archive").exists()


# --- filters, ordering and query counts ----------------------------------------------------


def test_filters(api, world, case, investigator, defendant):
    other_case = factories.case(world.a, world.a1, lead=investigator)
    company = factories.organization(world.a, "Grey Ore Trading Ltd")
    first = factories.prosecution(case, defendant, court="Haikou Intermediate Court", stage="trial",
                                  filed_on="2026-01-01")
    second = factories.prosecution(other_case, company, court="Hanoi People's Court", stage="verdict",
                                   verdict="convicted", prosecutor_office="Hanoi Procuracy", filed_on="2026-03-01")

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.json()
        return sorted(p["id"] for p in response.json()["results"])

    assert ids(case=str(case.pk)) == [str(first.pk)]
    assert ids(stage="verdict") == [str(second.pk)]
    assert ids(stage=["trial", "verdict"]) == sorted([str(first.pk), str(second.pk)])
    assert ids(verdict="convicted") == [str(second.pk)]
    assert ids(verdict="pending") == [str(first.pk)]
    assert ids(defendant=str(company.pk)) == [str(second.pk)]
    assert ids(court="haikou") == [str(first.pk)]
    assert ids(q="procuracy") == [str(second.pk)]
    assert ids(q="zhang") == [str(first.pk)]
    assert ids(q=case.reference) == [str(first.pk)]
    assert ids(created_after="2000-01-01T00:00:00Z") == sorted([str(first.pk), str(second.pk)])
    assert ids(updated_after="2100-01-01T00:00:00Z") == []
    ordered = [p["id"] for p in api.get(URL, {"ordering": "-filed_on"}).json()["results"]]
    assert ordered == [str(second.pk), str(first.pk)]
    for bad in ({"stage": "bogus"}, {"verdict": "bogus"}, {"case": "nope"}, {"defendant": "nope"},
                {"created_after": "soon"}):
        assert api.get(URL, bad).status_code == 400, bad


def test_list_query_count_is_constant_in_page_size(api, world, investigator):
    for i in range(12):
        case = factories.case(world.a, world.a1, lead=investigator)
        defendant = factories.person(world.a) if i % 2 else factories.organization(world.a)
        factories.prosecution(case, defendant, charges=(("ECL 34", "a"), ("CL 151", "b")))

    def queries(page_size):
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(URL, {"page_size": page_size})
        assert response.status_code == 200 and len(response.json()["results"]) == min(page_size, 12)
        assert all(len(p["charges"]) == 2 for p in response.json()["results"])
        return len(ctx.captured_queries)

    queries(2)  # warm-up
    assert queries(2) == queries(12)
