"""The import's row checker gives exactly what the API's serializer gives: the same validated data for a good
row, the same fields and messages for a bad one (checked on generated rows, against `is_valid()`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from imports import kinds
from imports.rows import RowChecker

VALUES: dict[str, dict[str, list[Any]]] = {
    "persons": {
        "name": ["Zhang Wei", "", " 张伟 ", "x" * 301, "  Padded  ", "   ", "\tTab\n", "x" * 300 + " ", 12, True],
        "birth_date": ["1975-03-02", "not-a-date", "1975-02-30", ""],
        "nationalities": [["CN"], ["XX"], ["cn", "RU"], "CN", [], ["CN", "CN"]],
        "gender": ["M", "f", "robot", ""],
        "emails": [["a@b.co"], ["not-an-email"], []],
        "phones": [["+8613800138000"], ["12"], ["13800138000"]],
        "identifiers": [[{"scheme": "passport", "number": "E12345678", "country": "CN"}], [{"scheme": ""}], "x"],
        "addresses": [[{"text": "1 Road", "country": "HK"}], [{"text": ""}], [{"text": "2 Road", "country": "QQ"}]],
        "source_id": ["p1", "", "y" * 201, "a\x00b", " p2 ", "\ud800"],
        "unknown": ["value"],
    },
    "organizations": {
        "name": ["Antimony Trading Co., Ltd.", "", "ACME"],
        "jurisdiction": ["CN", "cn", "QQ", ""],
        "registration_number": ["91350100M000100Y43", "91350100M000100Y44", "12345", ""],
        "kind": ["company", "shell", "bank", "nonsense", ""],
        "incorporated_on": ["2019-01-01", "2019-13-01"],
        "website": ["https://example.org", "not a url", ""],
    },
    "shipments": {
        "reference": ["BL-1", "", "z" * 101],
        "hs_code": ["8110", "8110.10", "81a0", ""],
        "quantity_kg": ["1200.5", "-1", "1e400", "12.34567", "abc", None, " 7 ", "007.250", "1.", ".5", "-0",
                        "9999999999999.999", "99999999999999", "1e3", 12, 12.5, "NaN", "Infinity"],
        "declared_value": ["900000.00", "1.234", "", "NaN", "0.10", "+3", "1234567890123456.00"],
        "currency": ["USD", "usd", "XYZ", ""],
        "origin_country": ["CN", "QQ", "", "cn"],
        "destination_country": ["DE", "Germany"],
        "transit_countries": [["VN", "TH"], ["VN", "QQ"], [], "VN", ["VN", "VN"]],
        "status": ["declared", "seized", "lost", ""],
        "seized_quantity_kg": ["5000", "1"],
        "purity_pct": ["100", "100.001", "99.5", "-0.1", "100.000", "0"],
        "commodity": ["antimony", "unobtainium", ""],
        "declared_description": ["antimony ingots", ""],
    },
}


def rows_of(kind: str) -> st.SearchStrategy[dict]:
    values = VALUES[kind]
    return st.dictionaries(st.sampled_from(sorted(values)), st.none(), max_size=len(values)).flatmap(
        lambda keys: st.fixed_dictionaries({key: st.sampled_from(values[key]) for key in keys}))


def serializer_of(kind: str) -> type:
    return kinds.KINDS[kind]().serializer


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(VALUES))
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_row_checker_answers_as_the_serializer_does(world, kind, data):
    row = data.draw(rows_of(kind))
    context = {"request": SimpleNamespace(user=SimpleNamespace(agency_id=world.a.pk))}
    serializer_class = serializer_of(kind)
    reference = serializer_class(data=row, context=context)
    valid = reference.is_valid()
    # One checker for all the examples, as for all the rows of a file: its remembered answers are used too.
    checkers = world.__dict__.setdefault("checkers", {})
    checker = checkers.setdefault(kind, RowChecker(serializer_class(context=context)))
    attrs, errors = checker.check(row)
    if valid:
        assert errors == {} and attrs == dict(reference.validated_data)
        # and with the same representation: Decimal("7.000") equals Decimal("7") but is audited differently
        assert repr(sorted(attrs.items())) == repr(sorted(reference.validated_data.items()))
    else:
        assert attrs is None
        assert {name: [str(m) for m in _messages(detail)] for name, detail in errors.items()} == \
            {name: [str(m) for m in _messages(detail)] for name, detail in reference.errors.items()}


def _messages(detail):
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [detail]
