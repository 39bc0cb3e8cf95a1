"""Correlated subqueries compiled once and kept.

A column of a record's own query that is a subquery of other tables (an entity's visible cases, whether it is in
an identity cluster) has SQL that depends on the caller and not on the row: the ORM would build the subquery and
compile it again on every request, which costs more than PostgreSQL takes to run it. `kept_subquery` compiles it
the first time a caller (or anybody, for a subquery that does not depend on the caller) asks, and keeps the SQL;
each later query compiles only the reference to its outer row. That reference stays an expression of the outer
query (`Correlated.outer`), so it follows the outer query's aliases wherever the query is put.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Expression, F, Model

KEPT = 1024  # subqueries of all callers together; the store starts again when full
_KEPT: dict[Hashable, tuple[str, str, tuple[Any, ...], Any]] = {}


class Correlated(Expression):
    """A subquery's SQL compiled once, `before` and `after` the reference to the outer row (`outer`, compiled
    with the outer query as any column of it)."""

    def __init__(self, before: str, after: str, params: tuple[Any, ...], outer: Any, output_field: Any) -> None:
        super().__init__(output_field=output_field)
        self.before, self.after, self.params, self.outer = before, after, params, outer

    def get_source_expressions(self) -> list[Any]:
        return [self.outer]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.outer,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:
        outer_sql, outer_params = compiler.compile(self.outer)
        if outer_params:  # a column reference has none; anything else would put the parameters out of order
            raise ValueError("a correlated subquery's outer reference must be a plain column")
        return f"{self.before}{outer_sql}{self.after}", self.params


def kept_subquery(key: Hashable, model: type[Model], build: Callable[[], Any], outer: str = "pk") -> Correlated:
    """The subquery `build()` makes for a row of `model` (its `OuterRef(outer)` the row's), compiled the first
    time `key` is asked for. `key` names everything the SQL depends on (the subquery, and the caller's
    `core.policy.caller_key` when it applies a scope)."""
    kept = _KEPT.get(key)
    if kept is None:
        expression = build()
        query = model._base_manager.annotate(kept_subquery=expression).query
        compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.compile(query.annotations["kept_subquery"])
        column = (model._meta.pk if outer == "pk" else model._meta.get_field(outer)).column  # type: ignore[union-attr]
        quote = compiler.quote_name_unless_alias
        reference = f"{quote(model._meta.db_table)}.{quote(column)}"
        if sql.count(reference) != 1:
            raise ValueError(f"the subquery refers to its outer row {sql.count(reference)} times, not once: {sql}")
        before, after = sql.split(reference)
        if len(_KEPT) >= KEPT:
            _KEPT.clear()
        kept = _KEPT[key] = (before, after, tuple(params), expression.output_field)
    before, after, params, output_field = kept
    return Correlated(before, after, params, F(outer), output_field)
