"""Correlated subqueries compiled once per caller (core.compiled): the SQL is kept, the reference to the outer
row is compiled with each query, so it follows the outer query's aliases wherever the query is put."""

from __future__ import annotations

from typing import Any, cast

from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import compiled
from entities.api.serializers import case_refs
from entities.models import Entity, Person

from . import factories


def test_an_entity_s_cases_are_the_callers_visible_ones_in_reference_and_role_order(world):
    seen = factories.case(world.a, world.a1, title="seen")
    unseen = factories.case(world.a, world.a2, title="other unit")
    person = factories.person(world.a, "Li Ming")
    for case, role in ((seen, "witness"), (seen, "suspect"), (unseen, "suspect")):
        factories.party(case, person, role=role)
    viewer = factories.user(world.a, "investigator", world.a1, username="unit-a1")
    everyone = factories.user(world.a, "supervisor", world.a1, username="agency-wide")

    def refs(user):
        return Person.objects.annotate(refs=case_refs(user)).values_list("refs", flat=True).get(pk=person.pk)

    assert refs(viewer) == [{"id": str(seen.pk), "reference": seen.reference, "role": role}
                            for role in ("suspect", "witness")]
    assert sorted((ref["reference"], ref["role"]) for ref in refs(everyone)) == sorted(
        [(seen.reference, "suspect"), (seen.reference, "witness"), (unseen.reference, "suspect")])
    # Each caller's subquery is compiled once: the second read compiles only the outer query.
    assert ("entity case refs", compiled_key(viewer)) in compiled._KEPT


def compiled_key(user):
    from core import policy

    return policy.caller_key(user)


def test_a_kept_subquery_follows_its_outer_row_inside_another_query(world):
    """Used in a query that is itself a subquery of one on the same table, the kept SQL is correlated to the inner
    query's row (its alias there), not to the outermost query's row of the same table."""
    case = factories.case(world.a, world.a1)
    in_one = factories.person(world.a, "In One")
    factories.person(world.a, "In None")
    factories.party(case, in_one)
    viewer = factories.user(world.a, "investigator", world.a1, username="unit-a1")
    inner = Person.objects.annotate(refs=case_refs(viewer)).filter(refs__len=1).values("pk")
    outer = Entity.objects.filter(pk__in=inner)
    with CaptureQueriesContext(connection) as captured:
        assert list(outer.values_list("name", flat=True)) == ["In One"]
    assert len(captured.captured_queries) == 1
    sql = str(outer.query)
    kept = sql[sql.index("ARRAY("):]
    inner_alias = cast(Any, outer.query.where.children[0]).rhs.get_initial_alias()  # the IN lookup's subquery
    assert f'= ({inner_alias}."id")' in kept and '"entities_entity"."id"' not in kept, sql
