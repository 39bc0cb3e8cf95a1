"""The network around a record: `GET /graph/`, `GET /graph/path/` and `GET /cases/{id}/graph/`.

Nodes are persons, organisations, cases and shipments; edges are links (entity—entity), shipment
parties (entity—shipment, kind = the role), case parties (entity—case, kind "party"), a case's
shipments (shipment—case, kind "case_shipment") and confirmed same-as matches (entity—entity, kind
"same_as"; pending matches are proposals, not edges).

The graph grows breadth-first, one level at a time, with one query per relation per level over
the whole frontier (never one per node). Every query is scoped by the access policy and skips
archived rows, so only what the caller may see appears.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.models import CaseParty
from core import policy
from core.api.filters import QueryParametersMixin
from entities.models import Entity, Link
from shipments.models import PARTY_ROLES, Shipment
from xref.models import Match, MatchStatus

NODE_TYPES = ("person", "organization", "case", "shipment")
ENTITY_TYPES = frozenset({"person", "organization"})
MIN_DEPTH, MAX_DEPTH, DEFAULT_DEPTH = 1, 3, 1
MAX_NODES = 500  # beyond this the graph is cut and says `"truncated": true`
PATH_MAX_DEPTH = 3  # levels searched from each end: paths of up to 2 x 3 edges are found
PATH_MAX_NODES = 5000
CASE_SHIPMENT = "case_shipment"
SAME_AS = "same_as"


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type, "label": self.label}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "kind": self.kind, "label": self.label}


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple, Edge] = field(default_factory=dict)  # keyed by the relation row, so none repeats
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": [node.as_dict() for node in self.nodes.values()],
            "edges": [e.as_dict() for e in self.edges.values() if e.source in self.nodes and e.target in self.nodes],
            "truncated": self.truncated,
        }


def _case_label(reference: str, title: str) -> str:
    return f"{reference} {title}".strip()


class Explorer:
    """One caller's view of the network: the visible, live rows of every relation."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.entities = policy.visible(user, Entity).filter(archived=False)
        self.links = policy.visible(user, Link).filter(archived=False)
        self.cases = policy.cases_visible(user).filter(archived=False)
        self.shipments = policy.visible(user, Shipment).filter(archived=False)
        self.parties = policy.visible(user, CaseParty).filter(archived=False, case__archived=False)
        # Every shipment seen so far: its parties by role, so expanding it needs no query of its own.
        self._shipment_parties: dict[str, list[tuple[str, str]]] = {}

    # --- seeds ------------------------------------------------------------------------------

    def seed(self, node_type: str, pk: uuid.UUID) -> Node | None:
        """The record a graph starts from, when the caller sees it (its detail page may be archived)."""
        if node_type in ENTITY_TYPES:
            row = policy.visible(self.user, Entity).filter(pk=pk, type=node_type).values("id", "type", "name").first()
            return Node(str(row["id"]), row["type"], row["name"]) if row else None
        if node_type == "case":
            row = policy.cases_visible(self.user).filter(pk=pk).values("id", "reference", "title").first()
            return Node(str(row["id"]), "case", _case_label(row["reference"], row["title"])) if row else None
        fields = ["id", "reference", *(f"{role}_id" for role in PARTY_ROLES)]
        row = policy.visible(self.user, Shipment).filter(pk=pk).values(*fields).first()
        return self._shipment_node(row) if row else None

    def _shipment_node(self, row: Mapping[str, Any], prefix: str = "") -> Node:
        shipment_id = str(row[f"{prefix}id"])
        self._shipment_parties[shipment_id] = [
            (role, str(row[f"{prefix}{role}_id"])) for role in PARTY_ROLES if row[f"{prefix}{role}_id"]
        ]
        return Node(shipment_id, "shipment", row[f"{prefix}reference"])

    # --- one level --------------------------------------------------------------------------

    def expand(self, frontier: Iterable[Node], known: Mapping[str, Node]) -> tuple[dict[str, Node], dict[tuple, Edge]]:
        """The visible neighbours of the frontier (known nodes included) and the edges reaching them."""
        entity_ids = {n.id for n in frontier if n.type in ENTITY_TYPES}
        case_ids = {n.id for n in frontier if n.type == "case"}
        shipment_ids = {n.id for n in frontier if n.type == "shipment"}
        neighbours: dict[str, Node] = {}
        edges: dict[tuple, Edge] = {}
        reached_entities: set[str] = set()

        if entity_ids:
            for link_id, kind, subtype, source, target in self.links.filter(
                Q(source_id__in=entity_ids) | Q(target_id__in=entity_ids)
            ).order_by("created_at", "id").values_list("id", "kind", "subtype", "source_id", "target_id"):
                edges[("link", link_id)] = Edge(str(source), str(target), kind, subtype or kind)
                reached_entities.update((str(source), str(target)))

            by_party = Q()
            for role in PARTY_ROLES:
                by_party |= Q(**{f"{role}_id__in": entity_ids})
            fields = ["id", "reference", *(f"{role}_id" for role in PARTY_ROLES)]
            for row in self.shipments.filter(by_party).order_by("reference", "id").values(*fields):
                node = self._shipment_node(row)
                neighbours[node.id] = node

            for key, edge in same_as_edges(self.user, entity_ids).items():
                edges[key] = edge
                reached_entities.update((edge.source, edge.target))

        if entity_ids or case_ids:
            for row in self.parties.filter(
                Q(entity_id__in=entity_ids) | Q(case_id__in=case_ids)
            ).order_by("created_at", "id").values("id", "role", "entity_id", "case_id", "case__reference",
                                                  "case__title"):
                entity, case = str(row["entity_id"]), str(row["case_id"])
                edges[("party", row["id"])] = Edge(entity, case, "party", row["role"])
                if entity in entity_ids:
                    neighbours[case] = Node(case, "case", _case_label(row["case__reference"], row["case__title"]))
                if case in case_ids:
                    reached_entities.add(entity)

        if case_ids or shipment_ids:
            fields = ["case_id", "case__reference", "case__title", "shipment__id", "shipment__reference",
                      *(f"shipment__{role}_id" for role in PARTY_ROLES)]
            through = Shipment.cases.through.objects.filter(
                Q(case_id__in=case_ids) | Q(shipment_id__in=shipment_ids),
                case__in=self.cases.values("pk"), shipment__in=self.shipments.values("pk"),
            )
            for row in through.order_by("case__reference", "shipment__reference").values(*fields):
                case, shipment = str(row["case_id"]), str(row["shipment__id"])
                edges[(CASE_SHIPMENT, case, shipment)] = Edge(shipment, case, CASE_SHIPMENT, "shipment")
                if shipment in shipment_ids:
                    neighbours[case] = Node(case, "case", _case_label(row["case__reference"], row["case__title"]))
                if case in case_ids:
                    neighbours[shipment] = self._shipment_node(row, prefix="shipment__")

        # Party edges of every shipment in sight; only the frontier's parties are reached at this level.
        for shipment_id in shipment_ids | (neighbours.keys() & self._shipment_parties.keys()):
            for role, entity in self._shipment_parties[shipment_id]:
                edges[("shipment", shipment_id, role)] = Edge(entity, shipment_id, role, role)
                if shipment_id in shipment_ids:
                    reached_entities.add(entity)

        reached_entities -= entity_ids
        for entity in reached_entities & known.keys():
            neighbours[entity] = known[entity]
        unknown = reached_entities - known.keys()
        if unknown:
            for row in self.entities.filter(pk__in=unknown).order_by("name", "id").values("id", "type", "name"):
                neighbours[str(row["id"])] = Node(str(row["id"]), row["type"], row["name"])
        return neighbours, edges


    def edges_among(self, frontier: Iterable[Node], nodes: Mapping[str, Node]) -> dict[tuple, Edge]:
        """The edges between the (unexpanded) frontier and the other nodes of the graph, reaching no further.

        Shipment-party edges need no query: they came with the shipments.
        """
        by_type: dict[str, set[str]] = {"entity": set(), "case": set(), "shipment": set()}
        for node in nodes.values():
            by_type["entity" if node.type in ENTITY_TYPES else node.type].add(node.id)
        entity_ids = {n.id for n in frontier if n.type in ENTITY_TYPES}
        case_ids = {n.id for n in frontier if n.type == "case"}
        shipment_ids = {n.id for n in frontier if n.type == "shipment"}
        edges: dict[tuple, Edge] = {}
        if entity_ids:
            for link_id, kind, subtype, source, target in self.links.filter(
                Q(source_id__in=entity_ids, target_id__in=by_type["entity"])
                | Q(target_id__in=entity_ids, source_id__in=by_type["entity"])
            ).order_by("created_at", "id").values_list("id", "kind", "subtype", "source_id", "target_id"):
                edges[("link", link_id)] = Edge(str(source), str(target), kind, subtype or kind)
            edges.update(same_as_edges(self.user, entity_ids))
        if (entity_ids and by_type["case"]) or case_ids:
            for party_id, role, entity, case in self.parties.filter(
                Q(entity_id__in=entity_ids, case_id__in=by_type["case"])
                | Q(case_id__in=case_ids, entity_id__in=by_type["entity"])
            ).order_by("created_at", "id").values_list("id", "role", "entity_id", "case_id"):
                edges[("party", party_id)] = Edge(str(entity), str(case), "party", role)
        if (case_ids and by_type["shipment"]) or (shipment_ids and by_type["case"]):
            for case, shipment in Shipment.cases.through.objects.filter(
                Q(case_id__in=case_ids, shipment_id__in=by_type["shipment"])
                | Q(shipment_id__in=shipment_ids, case_id__in=by_type["case"]),
                case__in=self.cases.values("pk"), shipment__in=self.shipments.values("pk"),
            ).order_by("case__reference", "shipment__reference").values_list("case_id", "shipment_id"):
                edges[(CASE_SHIPMENT, str(case), str(shipment))] = Edge(str(shipment), str(case), CASE_SHIPMENT,
                                                                        "shipment")
        return edges


def same_as_edges(user: Any, entity_ids: set[str]) -> dict[tuple, Edge]:
    """Confirmed same-as matches of these entities, as `{(SAME_AS, match id): Edge(left, right, SAME_AS, …)}`: one
    query over the matches the caller sees (both records visible), live, with either side in `entity_ids`.

    Only confirmed ones: a pending match is a proposal nobody has checked yet, and an edge would let a path
    (`/graph/path/`) or a neighbourhood run through a guess; a rejected one is known not to hold. Pending matches
    are listed at `/xref/matches/?entity=<id>&status=pending`.
    """
    rows = (policy.visible(user, Match)
            .filter(Q(left_id__in=entity_ids) | Q(right_id__in=entity_ids), status=MatchStatus.CONFIRMED,
                    archived=False, left__archived=False, right__archived=False)
            .order_by("-score", "id").values_list("id", "left_id", "right_id", "score"))
    return {(SAME_AS, match_id): Edge(str(left), str(right), SAME_AS, f"same as ({score:.2f})")
            for match_id, left, right, score in rows}


# --- the three reads --------------------------------------------------------------------------


def neighbourhood(explorer: Explorer, seeds: list[Node], depth: int, max_nodes: int | None = None) -> Graph:
    """Everything within `depth` steps of the seeds (cut at `max_nodes`, then `truncated`)."""
    max_nodes = MAX_NODES if max_nodes is None else max_nodes
    graph = Graph()
    for seed in seeds:
        graph.nodes[seed.id] = seed
    frontier = list(seeds)
    for _ in range(depth):
        if not frontier:
            break
        reached, edges = explorer.expand(frontier, graph.nodes)
        graph.edges.update(edges)
        new = [node for node in reached.values() if node.id not in graph.nodes]
        room = max_nodes - len(graph.nodes)
        if len(new) > room:
            new, graph.truncated = new[:room], True
        for node in new:
            graph.nodes[node.id] = node
        frontier = new
        if graph.truncated:
            break
    if frontier:
        # The last level reached its nodes without looking around them: show the edges between them too.
        graph.edges.update(explorer.edges_among(frontier, graph.nodes))
    return graph


@dataclass
class _Search:
    """One end's breadth-first search: every node reached, the next level to expand, levels done."""

    seen: set[str]
    frontier: list[Node]
    depth: int = 0


def shortest_path(explorer: Explorer, start: Node, end: Node, max_depth: int | None = None,
                  max_nodes: int | None = None) -> Graph | None:
    """A shortest path between two nodes, by breadth-first search from both ends (the smaller frontier
    first); None when the ends do not meet within `max_depth` levels of each."""
    max_depth = PATH_MAX_DEPTH if max_depth is None else max_depth
    max_nodes = PATH_MAX_NODES if max_nodes is None else max_nodes
    if start.id == end.id:
        return Graph(nodes={start.id: start})
    nodes = {start.id: start, end.id: end}
    edges: dict[tuple, Edge] = {}
    sides = [_Search(seen={start.id}, frontier=[start]), _Search(seen={end.id}, frontier=[end])]
    while True:
        open_sides = [s for s in sides if s.frontier and s.depth < max_depth]
        if not open_sides or len(nodes) > max_nodes:
            return None
        side = min(open_sides, key=lambda s: len(s.frontier))
        reached, found_edges = explorer.expand(side.frontier, nodes)
        edges.update(found_edges)
        nodes.update({node_id: node for node_id, node in reached.items() if node_id not in nodes})
        side.frontier = [node for node_id, node in reached.items() if node_id not in side.seen]
        side.seen.update(reached)
        side.depth += 1
        if sides[0].seen & sides[1].seen:
            break
    network = nx.Graph()
    for edge in edges.values():
        if edge.source in nodes and edge.target in nodes and not network.has_edge(edge.source, edge.target):
            network.add_edge(edge.source, edge.target, edge=edge)
    path = nx.shortest_path(network, start.id, end.id)
    return Graph(nodes={node_id: nodes[node_id] for node_id in path},
                 edges={(i,): network.edges[a, b]["edge"] for i, (a, b) in enumerate(itertools.pairwise(path))})


# --- API --------------------------------------------------------------------------------------


def parse_node_ref(value: str | None, param: str) -> tuple[str, uuid.UUID]:
    """`person:<uuid>` → ("person", UUID); anything else is a 400 on `param`."""
    node_type, _, raw_id = (value or "").strip().partition(":")
    if node_type not in NODE_TYPES:
        raise ValidationError({param: [f"Expected <type>:<id> with type one of {', '.join(NODE_TYPES)}."]})
    try:
        return node_type, uuid.UUID(raw_id)
    except ValueError:
        raise ValidationError({param: ["The id after the type is not a valid UUID."]}) from None


def parse_depth(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_DEPTH
    try:
        depth = int(value)
    except ValueError:
        depth = 0
    if not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ValidationError({"depth": [f"Must be an integer from {MIN_DEPTH} to {MAX_DEPTH}."]})
    return depth


def _seed_or_404(explorer: Explorer, value: str | None, param: str) -> Node:
    node = explorer.seed(*parse_node_ref(value, param))
    if node is None:
        raise NotFound()
    return node


class NodeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=NODE_TYPES)
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label


class EdgeSerializer(serializers.Serializer):
    source = serializers.UUIDField(help_text="A node's id")  # type: ignore[assignment]  # as Field.source
    target = serializers.UUIDField(help_text="A node's id")
    kind = serializers.CharField(help_text="A link's kind (family, ownership, …), a shipment party's role "
                                           "(consignor, consignee, notify_party, ordering_party), "
                                           "party (entity in a case), case_shipment or same_as")
    label = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.label
        help_text="A link's subtype (or kind), a case party's role, a confirmed match's score "
                  "(\"same as (0.97)\"), …")


class GraphSerializer(serializers.Serializer):
    nodes = NodeSerializer(many=True)
    edges = EdgeSerializer(many=True)
    truncated = serializers.BooleanField(help_text=f"True when the graph was cut at {MAX_NODES} nodes")


DEPTH = OpenApiParameter("depth", {"type": "integer", "minimum": MIN_DEPTH, "maximum": MAX_DEPTH},
                         description=f"Steps from the start, {MIN_DEPTH} to {MAX_DEPTH} "
                                     f"(default {DEFAULT_DEPTH}); else 400.")
NODE_REF = "`<type>:<id>`, type one of " + ", ".join(NODE_TYPES)
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
NODE_REF_SCHEMA = {"type": "string", "pattern": f"^({'|'.join(NODE_TYPES)}):{UUID_PATTERN}$"}
NOT_FOUND = OpenApiResponse(description="The start (or an end) does not exist or is not visible to the caller")
BAD_INPUT = OpenApiResponse(description="A malformed reference or depth")


class GraphView(QueryParametersMixin, APIView):
    query_parameters = [OpenApiParameter("entity", NODE_REF_SCHEMA, required=True,
                                         description="Where to start: " + NODE_REF), DEPTH]

    @extend_schema(
        operation_id="graph",
        responses={200: GraphSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        """The visible network within `depth` steps of a person, organisation, case or shipment."""
        depth = parse_depth(request.query_params.get("depth"))
        explorer = Explorer(request.user)
        seed = _seed_or_404(explorer, request.query_params.get("entity"), "entity")
        return Response(neighbourhood(explorer, [seed], depth).as_dict())


class GraphPathView(QueryParametersMixin, APIView):
    query_parameters = [
        OpenApiParameter("from", NODE_REF_SCHEMA, required=True, description="One end: " + NODE_REF),
        OpenApiParameter("to", NODE_REF_SCHEMA, required=True, description="The other end: " + NODE_REF),
    ]

    @extend_schema(
        operation_id="graph_path",
        responses={200: GraphSerializer, 400: BAD_INPUT,
                   404: OpenApiResponse(description=f"No path of up to {2 * PATH_MAX_DEPTH} steps through visible "
                                                    "records, or an end is not visible")},
    )
    def get(self, request: Request) -> Response:
        """A shortest path between two records, as a graph: nodes in order from `from` to `to`."""
        refs: dict[str, tuple[str, uuid.UUID]] = {}
        errors: dict[str, Any] = {}
        for param in ("from", "to"):
            try:
                refs[param] = parse_node_ref(request.query_params.get(param), param)
            except ValidationError as exc:
                errors.update(exc.detail)  # type: ignore[arg-type]  # parse_node_ref raises a dict
        if errors:
            raise ValidationError(errors)
        start_ref, end_ref = refs["from"], refs["to"]
        explorer = Explorer(request.user)
        start, end = explorer.seed(*start_ref), explorer.seed(*end_ref)
        if start is None or end is None:
            raise NotFound()
        path = shortest_path(explorer, start, end)
        if path is None:
            raise NotFound("No path between these records.")
        return Response(path.as_dict())


class CaseGraphView(QueryParametersMixin, APIView):
    query_parameters = [DEPTH]

    @extend_schema(
        operation_id="cases_graph",
        parameters=[OpenApiParameter("case_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Case id")],
        responses={200: GraphSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def get(self, request: Request, case_id: uuid.UUID) -> Response:
        """As `/graph/`, seeded with the case's parties and shipments (and the case itself)."""
        depth = parse_depth(request.query_params.get("depth"))
        explorer = Explorer(request.user)
        case = explorer.seed("case", case_id)
        if case is None:
            raise NotFound()
        # The case's neighbours are exactly its parties and shipments: one more level reaches them.
        return Response(neighbourhood(explorer, [case], depth + 1).as_dict())
