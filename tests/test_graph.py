"""`GET /api/v1/graph/`, `/graph/path/` and `/cases/{id}/graph/` from the client's side (API.md § Graph)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from explore import graph as graph_module

from . import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/graph/"
PATH_URL = "/api/v1/graph/path/"


def ref(obj) -> str:
    node_type = getattr(obj, "type", None) or {"Case": "case", "Shipment": "shipment"}[type(obj).__name__]
    return f"{node_type}:{obj.pk}"


def get_graph(client, obj, depth=None, url=URL):
    params = {"entity": ref(obj)}
    if depth is not None:
        params["depth"] = depth
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def node_ids(body) -> set[str]:
    return {node["id"] for node in body["nodes"]}


def edge_set(body) -> set[tuple[str, str, str, str]]:
    return {(e["source"], e["target"], e["kind"], e["label"]) for e in body["edges"]}


@pytest.fixture
def ring(world):
    """The antimony ring of agency SSB (unit econ): a family, its companies, a shipment and a case."""
    a = world.a
    n = SimpleNamespace()
    n.boss = factories.person(a, "Zhang Wei")
    n.sister = factories.person(a, "Zhang Li")
    n.cousin = factories.person(a, "Wang Min")
    n.shell = factories.organization(a, "Antimony Trading Co., Ltd.", kind="shell_company")
    n.producer = factories.organization(a, "Guangxi Tiye", kind="producer")
    n.loner = factories.person(a, "Nobody Related")
    n.sibling = factories.link(a, n.boss, n.sister, kind="family", subtype="sibling")
    n.cousin_link = factories.link(a, n.sister, n.cousin, kind="family", subtype="cousin")
    n.owns = factories.link(a, n.boss, n.shell, kind="ownership", subtype="shareholder")
    n.case = factories.case(a, world.a1, title="Antimony ring")
    n.boss_party = factories.party(n.case, n.boss, role="ringleader")
    factories.party(n.case, n.shell, role="shell_company")
    n.shipment = factories.shipment(a, reference="BL-RING-1", consignor=n.producer, consignee=n.shell,
                                    cases=(n.case,))
    return n


# --- shape and relations ------------------------------------------------------------------------


def test_depth_one_around_a_person(api, ring):
    body = get_graph(api, ring.boss)
    assert set(body) == {"nodes", "edges", "truncated"}
    assert body["truncated"] is False
    nodes = {node["id"]: node for node in body["nodes"]}
    assert body["nodes"][0] == {"id": str(ring.boss.pk), "type": "person", "label": "Zhang Wei"}
    assert set(nodes) == {str(ring.boss.pk), str(ring.sister.pk), str(ring.shell.pk), str(ring.case.pk)}
    assert nodes[str(ring.shell.pk)] == {"id": str(ring.shell.pk), "type": "organization",
                                         "label": "Antimony Trading Co., Ltd."}
    assert nodes[str(ring.case.pk)] == {"id": str(ring.case.pk), "type": "case",
                                        "label": f"{ring.case.reference} Antimony ring"}
    edges = edge_set(body)
    assert (str(ring.boss.pk), str(ring.sister.pk), "family", "sibling") in edges
    assert (str(ring.boss.pk), str(ring.shell.pk), "ownership", "shareholder") in edges
    assert (str(ring.boss.pk), str(ring.case.pk), "party", "ringleader") in edges
    # the shell is a party of the same case: the edge between two nodes of the graph is shown
    assert (str(ring.shell.pk), str(ring.case.pk), "party", "shell_company") in edges
    assert all(e["source"] in nodes and e["target"] in nodes for e in body["edges"])
    assert len(body["edges"]) == len(edges)  # no edge twice


def test_shipment_parties_are_edges_with_their_role(api, ring):
    body = get_graph(api, ring.shell)
    nodes = {node["id"]: node for node in body["nodes"]}
    assert nodes[str(ring.shipment.pk)] == {"id": str(ring.shipment.pk), "type": "shipment", "label": "BL-RING-1"}
    assert (str(ring.shell.pk), str(ring.shipment.pk), "consignee", "consignee") in edge_set(body)
    assert str(ring.producer.pk) not in nodes  # two steps away
    body = get_graph(api, ring.shell, depth=2)
    assert (str(ring.producer.pk), str(ring.shipment.pk), "consignor", "consignor") in edge_set(body)


def test_a_link_without_subtype_is_labelled_with_its_kind(api, world, ring):
    friend = factories.person(world.a, "Friend")
    factories.link(world.a, ring.boss, friend, kind="associate")
    assert (str(ring.boss.pk), str(friend.pk), "associate", "associate") in edge_set(get_graph(api, ring.boss))


@pytest.mark.parametrize("start", ["case", "shipment", "shell"])
def test_every_record_type_can_start_a_graph(api, ring, start):
    obj = getattr(ring, start)
    body = get_graph(api, obj)
    assert body["nodes"][0]["id"] == str(obj.pk)
    assert len(body["nodes"]) > 1


def test_a_case_graph_from_graph_reaches_its_parties_and_shipments(api, ring):
    body = get_graph(api, ring.case)
    assert node_ids(body) == {str(ring.case.pk), str(ring.boss.pk), str(ring.shell.pk), str(ring.shipment.pk)}
    assert (str(ring.shipment.pk), str(ring.case.pk), "case_shipment", "shipment") in edge_set(body)


# --- depth ---------------------------------------------------------------------------------------


@pytest.fixture
def chain(world):
    """p0 - p1 - p2 - ... - p7, one associate link between neighbours."""
    people = [factories.person(world.a, f"Chain {i}") for i in range(8)]
    for left, right in itertools.pairwise(people):
        factories.link(world.a, left, right, kind="associate")
    return people


@pytest.mark.parametrize(("depth", "reach"), [(None, 2), ("1", 2), ("2", 3), ("3", 4)])
def test_depth_limits_the_reach(api, chain, depth, reach):
    body = get_graph(api, chain[0], depth=depth)
    assert node_ids(body) == {str(p.pk) for p in chain[:reach]}
    assert len(body["edges"]) == reach - 1


@pytest.mark.parametrize("depth", ["0", "4", "-1", "abc", "1.5", "99999999999999999999"])
def test_depth_out_of_range_is_a_400_on_depth(api, chain, depth):
    response = api.get(URL, {"entity": ref(chain[0]), "depth": depth})
    assert response.status_code == 400
    assert "depth" in response.json()


@pytest.mark.parametrize("entity", [None, "", "person", "person:", "person:not-a-uuid", "planet:{id}",
                                    "{id}", "person:{id}:x", "Person:{id}", "person:\x00"])
def test_malformed_entity_is_a_400_on_entity(api, chain, entity):
    params = {} if entity is None else {"entity": entity.format(id=chain[0].pk)}
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    assert "entity" in response.json()


def test_unknown_or_mistyped_entity_is_a_404(api, chain):
    assert api.get(URL, {"entity": "person:00000000-0000-0000-0000-000000000000"}).status_code == 404
    assert api.get(URL, {"entity": f"organization:{chain[0].pk}"}).status_code == 404
    assert api.get(URL, {"entity": f"case:{chain[0].pk}"}).status_code == 404


def test_anonymous_is_401(client_for, chain):
    assert client_for(None).get(URL, {"entity": ref(chain[0])}).status_code == 401
    assert client_for(None).get(PATH_URL, {"from": ref(chain[0]), "to": ref(chain[1])}).status_code == 401


def test_a_large_graph_is_cut_and_says_so(api, world, monkeypatch):
    hub = factories.person(world.a, "Hub")
    spokes = [factories.person(world.a, f"Spoke {i}") for i in range(12)]
    for spoke in spokes:
        factories.link(world.a, hub, spoke)
    monkeypatch.setattr(graph_module, "MAX_NODES", 5)
    body = get_graph(api, hub)
    assert body["truncated"] is True
    assert len(body["nodes"]) == 5
    ids = node_ids(body)
    assert all(e["source"] in ids and e["target"] in ids for e in body["edges"])
    assert len(body["edges"]) == 4


# --- scoping -------------------------------------------------------------------------------------


def test_another_agencys_records_are_404_and_never_appear(api, world, ring):
    foreign = factories.person(world.b, "Foreign Person")
    foreign_case = factories.case(world.b, world.b1)
    foreign_shipment = factories.shipment(world.b)
    for obj in (foreign, foreign_case, foreign_shipment):
        assert api.get(URL, {"entity": ref(obj)}).status_code == 404
    # cross-agency rows written behind the API's back still do not leak into a graph
    factories.party(foreign_case, ring.boss, role="suspect")
    factories.link(world.b, ring.boss, foreign, kind="associate")
    factories.shipment(world.b, consignee=ring.shell)
    body = get_graph(api, ring.boss, depth=3)
    hidden = {str(foreign.pk), str(foreign_case.pk), str(foreign_shipment.pk)}
    types = {node["type"] for node in body["nodes"]}
    assert not hidden & node_ids(body)
    assert types <= {"person", "organization", "case", "shipment"}
    assert {n["label"] for n in body["nodes"] if n["type"] == "shipment"} == {"BL-RING-1"}


def test_records_reached_through_a_case_shared_with_us(api, world):
    b = world.b
    suspect = factories.person(b, "Shared Suspect")
    partner = factories.person(b, "Unshared Partner")  # not a party of the shared case
    witness = factories.person(b, "Shared Witness")
    case = factories.case(b, world.b1, title="Joint operation")
    factories.party(case, suspect, role="suspect")
    factories.party(case, witness, role="witness")
    factories.link(b, suspect, witness, kind="associate", case=case)
    factories.link(b, suspect, partner, kind="associate", case=case)  # visible link, invisible end
    factories.link(b, witness, partner, kind="family", subtype="spouse")  # neither visible
    shipment = factories.shipment(b, reference="JOINT-1", consignee=suspect, cases=(case,))
    hidden_shipment = factories.shipment(b, reference="B-ONLY", consignee=suspect)

    assert api.get(URL, {"entity": ref(case)}).status_code == 404
    factories.share(case, world.a)
    body = get_graph(api, case, depth=3)
    assert node_ids(body) == {str(case.pk), str(suspect.pk), str(witness.pk), str(shipment.pk)}
    assert (str(suspect.pk), str(witness.pk), "associate", "associate") in edge_set(body)
    assert str(partner.pk) not in node_ids(body) and str(hidden_shipment.pk) not in node_ids(body)
    assert get_graph(api, suspect)["nodes"][0]["label"] == "Shared Suspect"


def test_a_case_the_caller_does_not_see_is_left_out(api, client_for, supervisor, world, ring):
    other_unit_case = factories.case(world.a, world.a2, title="Cyber unit matter")
    factories.party(other_unit_case, ring.boss, role="financier")
    assert str(other_unit_case.pk) not in node_ids(get_graph(api, ring.boss))
    assert api.get(URL, {"entity": ref(other_unit_case)}).status_code == 404
    assert str(other_unit_case.pk) in node_ids(get_graph(client_for(supervisor), ring.boss))


def test_archived_records_are_left_out(api, world, ring):
    for obj in (ring.sibling, ring.shipment, ring.case):
        obj.archived = True
        obj.save()
    ring.shell.archived = True
    ring.shell.save()
    body = get_graph(api, ring.boss, depth=3)
    assert node_ids(body) == {str(ring.boss.pk)}
    assert body["edges"] == []


# --- cost ----------------------------------------------------------------------------------------


def _star(world, size: int):
    """A person with `size` associates, each owning a company that ships to a consignee and confirmed as the same
    as an alias: 1 + 4 x size nodes."""
    a = world.a
    centre = factories.person(a, f"Centre {size}")
    case = factories.case(a, world.a1, title=f"Star {size}")
    factories.party(case, centre)
    for i in range(size):
        friend = factories.person(a, f"Friend {size}-{i}")
        company = factories.organization(a, f"Company {size}-{i}")
        factories.link(a, centre, friend)
        factories.link(a, friend, company, kind="ownership")
        factories.shipment(a, consignor=company, cases=(case,) if i % 2 else ())
        factories.party(case, friend)
        factories.confirmed(friend, factories.person(a, f"Alias {size}-{i}"))
    return centre


def _count_queries(client, url, params, status=200):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == status, response.content
    return len(ctx.captured_queries), response.json()


def test_query_count_does_not_grow_with_the_graph(api, world):
    small, large = _star(world, 3), _star(world, 20)
    api.get(URL, {"entity": ref(small)})  # warm-up
    small_count, small_body = _count_queries(api, URL, {"entity": ref(small), "depth": 2})
    large_count, large_body = _count_queries(api, URL, {"entity": ref(large), "depth": 2})
    assert len(large_body["nodes"]) >= 50
    assert len(large_body["nodes"]) > len(small_body["nodes"])
    assert large_count == small_count, (small_count, large_count)
    # the token, the seed, at most six relations per level (links, shipments, confirmed matches, case
    # parties, case shipments, entities), and four for the edges among the last level's nodes
    assert large_count <= 2 + 1 + 6 * 2 + 4, large_count


def test_path_query_count_does_not_grow_with_the_graph(api, world):
    small, large = _star(world, 3), _star(world, 20)
    far = factories.person(world.a, "Far away")
    api.get(URL, {"entity": ref(small)})  # warm-up
    # no path: both ends are searched as far as they go, three levels from the star
    small_count, _ = _count_queries(api, PATH_URL, {"from": ref(small), "to": ref(far)}, status=404)
    large_count, _ = _count_queries(api, PATH_URL, {"from": ref(large), "to": ref(far)}, status=404)
    assert small_count == large_count, (small_count, large_count)
    assert large_count <= 2 + 2 + 5 * 4, large_count


# --- path ----------------------------------------------------------------------------------------


def get_path(client, start, end):
    response = client.get(PATH_URL, {"from": ref(start), "to": ref(end)})
    assert response.status_code == 200, response.content
    return response.json()


def test_shortest_path_across_links_shipments_and_cases(api, ring):
    body = get_path(api, ring.cousin, ring.producer)
    # cousin - sister - boss - (shell | case) - shipment - producer
    ids = [node["id"] for node in body["nodes"]]
    assert ids[0] == str(ring.cousin.pk) and ids[-1] == str(ring.producer.pk)
    assert ids[1:3] == [str(ring.sister.pk), str(ring.boss.pk)]
    assert ids[-2] == str(ring.shipment.pk)
    assert len(ids) == 6 and len(body["edges"]) == 5
    for edge, (a, b) in zip(body["edges"], itertools.pairwise(ids), strict=True):
        assert {edge["source"], edge["target"]} == {a, b}
    assert body["edges"][-1]["kind"] == "consignor"


def test_path_of_one_step_and_of_none(api, ring):
    body = get_path(api, ring.boss, ring.sister)
    assert [n["id"] for n in body["nodes"]] == [str(ring.boss.pk), str(ring.sister.pk)]
    assert body["edges"] == [{"source": str(ring.boss.pk), "target": str(ring.sister.pk), "kind": "family",
                              "label": "sibling"}]
    same = get_path(api, ring.boss, ring.boss)
    assert [n["id"] for n in same["nodes"]] == [str(ring.boss.pk)] and same["edges"] == []


def test_no_path_is_a_404(api, ring):
    response = api.get(PATH_URL, {"from": ref(ring.boss), "to": ref(ring.loner)})
    assert response.status_code == 404
    assert "detail" in response.json()


def test_paths_up_to_six_steps_are_found(api, chain):
    body = get_path(api, chain[0], chain[6])
    assert [n["id"] for n in body["nodes"]] == [str(p.pk) for p in chain[:7]]
    assert api.get(PATH_URL, {"from": ref(chain[0]), "to": ref(chain[7])}).status_code == 404


def test_a_path_never_runs_through_what_the_caller_cannot_see(api, client_for, supervisor, world):
    left, right = factories.person(world.a, "Left"), factories.person(world.a, "Right")
    hidden_case = factories.case(world.a, world.a2, title="Other unit")
    factories.party(hidden_case, left)
    factories.party(hidden_case, right)
    assert api.get(PATH_URL, {"from": ref(left), "to": ref(right)}).status_code == 404
    body = get_path(client_for(supervisor), left, right)
    assert [n["id"] for n in body["nodes"]] == [str(left.pk), str(hidden_case.pk), str(right.pk)]


def test_a_path_to_another_agencys_record_is_a_404(api, world, ring):
    foreign = factories.person(world.b, "Foreign")
    factories.link(world.b, ring.boss, foreign)
    assert api.get(PATH_URL, {"from": ref(ring.boss), "to": ref(foreign)}).status_code == 404
    assert api.get(PATH_URL, {"from": ref(foreign), "to": ref(ring.boss)}).status_code == 404


@pytest.mark.parametrize(("params", "bad"), [
    ({}, {"from", "to"}),
    ({"from": "person:x", "to": "person:x"}, {"from", "to"}),
    ({"from": "{a}"}, {"to"}),
    ({"to": "{a}"}, {"from"}),
    ({"from": "{a}", "to": "nope"}, {"to"}),
])
def test_malformed_path_ends_are_a_400_naming_each(api, ring, params, bad):
    a = ref(ring.boss)
    response = api.get(PATH_URL, {k: v.format(a=a) for k, v in params.items()})
    assert response.status_code == 400
    assert set(response.json()) == bad


# --- a case's graph ------------------------------------------------------------------------------


def case_graph_url(case) -> str:
    return f"/api/v1/cases/{case.pk}/graph/"


def test_case_graph_is_seeded_with_its_parties_and_shipments(api, ring):
    response = api.get(case_graph_url(ring.case))
    assert response.status_code == 200
    body = response.json()
    ids = node_ids(body)
    # the case, its parties and shipment, and one step beyond them
    assert {str(ring.case.pk), str(ring.boss.pk), str(ring.shell.pk), str(ring.shipment.pk)} <= ids
    assert {str(ring.sister.pk), str(ring.producer.pk)} <= ids
    assert str(ring.cousin.pk) not in ids
    assert str(ring.cousin.pk) in node_ids(api.get(case_graph_url(ring.case), {"depth": 2}).json())
    assert (str(ring.shipment.pk), str(ring.case.pk), "case_shipment", "shipment") in edge_set(body)


def test_case_graph_of_a_case_not_visible_is_a_404(api, world, ring):
    assert api.get(case_graph_url(factories.case(world.a, world.a2))).status_code == 404
    assert api.get(case_graph_url(factories.case(world.b, world.b1))).status_code == 404
    assert api.get("/api/v1/cases/00000000-0000-0000-0000-000000000000/graph/").status_code == 404
    assert api.get("/api/v1/cases/not-a-uuid/graph/").status_code == 404


@pytest.mark.parametrize("depth", ["0", "4", "x"])
def test_case_graph_depth_is_checked(api, ring, depth):
    response = api.get(case_graph_url(ring.case), {"depth": depth})
    assert response.status_code == 400 and "depth" in response.json()


def test_case_graph_through_a_share(client_for, world, ring):
    other = factories.user(world.b, "investigator", world.b1)
    assert client_for(other).get(case_graph_url(ring.case)).status_code == 404
    factories.share(ring.case, world.b)
    body = client_for(other).get(case_graph_url(ring.case)).json()
    ids = node_ids(body)
    assert {str(ring.case.pk), str(ring.boss.pk), str(ring.shell.pk), str(ring.shipment.pk)} <= ids
    # the sister is not a party of the shared case: agency ASB does not see her
    assert str(ring.sister.pk) not in ids
    # the producer is not a party either, though it ships in the shared case
    assert str(ring.producer.pk) not in ids


def test_a_case_above_the_callers_clearance_is_left_out(client_for, world, ring):
    cleared_low = factories.user(world.a, "investigator", world.a1, clearance="restricted")
    secret = factories.case(world.a, world.a1, classification="secret", title="Secret matter")
    factories.party(secret, ring.boss, role="financier")
    client = client_for(cleared_low)
    assert client.get(case_graph_url(secret)).status_code == 404
    assert client.get(URL, {"entity": ref(secret)}).status_code == 404
    assert str(secret.pk) not in node_ids(get_graph(client, ring.boss))
    assert str(ring.case.pk) in node_ids(get_graph(client, ring.boss))
