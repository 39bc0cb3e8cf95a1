"""The load bench's URLs (bench/load.py): the project's, and under /raw/ the raw baselines of the endpoints it drives.

A baseline is a plain Django view (no DRF, no authentication, no access policy, no audit) that runs the hand-written
SQL giving the same rows as its endpoint, through the same database connection, and answers JSON (orjson). The
bench's gunicorn serves both, in the same run; the product's URLs (config.urls) never include these.
"""

from __future__ import annotations

import decimal
import functools
import uuid
from typing import Any

import orjson
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401  (the project's JSON errors)
from config.urls import urlpatterns as project_urlpatterns

AGENCY = "BENCH"


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError


def _json(body: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body, default=_default), content_type="application/json", status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@functools.cache
def agency_id() -> uuid.UUID:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM accounts_agency WHERE code = %s", [AGENCY])
        return cursor.fetchone()[0]


def _rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _page(request: HttpRequest) -> int:
    return min(int(request.GET.get("page_size", 50)), 500)


PERSON_SELECT = """SELECT e.id, e.created_at, e.updated_at, e.version, e.archived, a.code AS agency, e.name, e.names,
    e.gender, e.birth_date, e.birth_place, e.nationalities, e.identifiers, e.addresses, e.phones, e.emails, e.notes,
    e.source, e.source_id, e.topics, e.lists FROM entities_entity e JOIN accounts_agency a ON a.id = e.agency_id"""


def persons(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return person_create(request)
    size = _page(request)
    count = _rows("SELECT count(*) AS n FROM entities_entity WHERE agency_id = %s AND type = 'person' "
                  "AND NOT archived", [agency_id()])[0]["n"]
    rows = _rows(PERSON_SELECT + " WHERE e.agency_id = %s AND e.type = 'person' AND NOT e.archived "
                 "ORDER BY e.name, e.id LIMIT %s",
                 [agency_id(), size])
    return _json({"count": count, "next": "/raw/persons/?page=2" if count > size else None, "previous": None,
                  "results": rows})


def person(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    rows = _rows(PERSON_SELECT + " WHERE e.id = %s AND e.agency_id = %s AND e.type = 'person'", [pk, agency_id()])
    if not rows:
        return _json({"detail": "Not found."}, status=404)
    return _json(rows[0], ETag=f'"{rows[0]["version"]}"')


def person_create(request: HttpRequest) -> HttpResponse:
    data = orjson.loads(request.body)
    name = str(data["name"])
    with transaction.atomic():
        rows = _rows(
            """INSERT INTO entities_entity (id, created_at, updated_at, version, archived, type, name, names,
                   gender, birth_date, birth_place, nationalities, kind, jurisdiction, registration_number, website,
                   identifiers, addresses, phones, emails, notes, source, source_id, search_text, identifier_numbers,
                   agency_id, name_keys, lists, topics)
               VALUES (%s, now(), now(), 1, false, 'person', %s, %s, '', NULL, '', %s, '', '', '', '', '[]', '[]',
                   '{}', '{}', '', '', '', lower(%s), '{}', %s, '{}', '{}', '{}')
               RETURNING id, version, name, nationalities""",
            [uuid.uuid4(), name, [name], list(data.get("nationalities", [])), name, agency_id()])
    return _json(rows[0], status=201, ETag=f'"{rows[0]["version"]}"')


SHIPMENTS_SQL = """
WITH page AS (
    SELECT * FROM shipments_shipment s WHERE s.agency_id = %s AND NOT s.archived
    ORDER BY s.departed_on DESC NULLS LAST, s.created_at DESC LIMIT %s
)
SELECT s.id, s.created_at, s.updated_at, s.version, s.archived, a.code AS agency, s.reference,
       s.commodity_id AS commodity, s.hs_code, s.declared_hs_code, s.declared_description, s.quantity_kg,
       s.purity_pct, s.declared_value, s.currency, s.origin_country, s.destination_country,
       COALESCE(l.legs, '[]'::json) AS legs, s.transit_countries,
       CASE WHEN p1.id IS NULL THEN NULL ELSE json_build_object('type', p1.type, 'id', p1.id, 'name', p1.name) END
           AS consignor,
       CASE WHEN p2.id IS NULL THEN NULL ELSE json_build_object('type', p2.type, 'id', p2.id, 'name', p2.name) END
           AS consignee,
       s.licence_id AS licence, s.status, s.seized_on, s.seized_quantity_kg, s.seizure_location,
       COALESCE(sc.ids, '[]'::json) AS cases, s.source, s.source_id
FROM page s
JOIN accounts_agency a ON a.id = s.agency_id
LEFT JOIN entities_entity p1 ON p1.id = s.consignor_id
LEFT JOIN entities_entity p2 ON p2.id = s.consignee_id
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('from_country', g.from_country, 'to_country', g.to_country, 'mode', g.mode)
                    ORDER BY g.seq) AS legs
    FROM shipments_shipmentleg g WHERE g.shipment_id = s.id
) l ON true
LEFT JOIN LATERAL (
    SELECT json_agg(x.case_id ORDER BY x.case_id) AS ids FROM shipments_shipment_cases x WHERE x.shipment_id = s.id
) sc ON true
ORDER BY s.departed_on DESC NULLS LAST, s.created_at DESC
"""


def shipments(request: HttpRequest) -> HttpResponse:
    size = _page(request)
    count = _rows("SELECT count(*) AS n FROM shipments_shipment WHERE agency_id = %s AND NOT archived",
                  [agency_id()])[0]["n"]
    rows = _rows(SHIPMENTS_SQL, [agency_id(), size])
    return _json({"count": count, "next": "/raw/shipments/?page=2" if count > size else None, "previous": None,
                  "results": rows})


def search(request: HttpRequest) -> HttpResponse:
    """pg_trgm word similarity over the entities' search text (its GIN index), and the case titles and shipment
    references that contain the query: the candidates the search endpoint ranks, best 50."""
    q = " ".join(request.GET.get("q", "").lower().split())
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', '0.4', true)")
        rows = _rows(
            """(SELECT e.type, e.id, e.name AS label, word_similarity(%s, e.search_text) AS score
                  FROM entities_entity e
                 WHERE e.agency_id = %s AND NOT e.archived AND %s <%% e.search_text
                 ORDER BY score DESC, e.id LIMIT 50)
               UNION ALL
               (SELECT 'case', c.id, c.title, 0.5 FROM cases_case c
                 WHERE c.agency_id = %s AND NOT c.archived AND c.title ILIKE %s LIMIT 50)
               UNION ALL
               (SELECT 'shipment', s.id, s.reference, 0.8 FROM shipments_shipment s
                 WHERE s.agency_id = %s AND NOT s.archived AND s.reference ILIKE %s LIMIT 50)
               ORDER BY score DESC LIMIT 50""",
            [q, agency_id(), q, agency_id(), f"%{q}%", agency_id(), f"%{q}%"])
    return _json({"count": len(rows), "next": None, "previous": None, "results": rows})


def case(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """PATCH of a case's title with If-Match: one conditional UPDATE; 412 when the version is not current."""
    data = orjson.loads(request.body)
    version = request.headers.get("If-Match", "").strip('"')
    rows = _rows("UPDATE cases_case SET title = %s, version = version + 1, updated_at = now() "
                 "WHERE id = %s AND agency_id = %s AND version = %s RETURNING id, reference, title, version",
                 [str(data["title"]), pk, agency_id(), int(version or 0)])
    if not rows:
        return _json({"detail": "Precondition failed."}, status=412)
    return _json(rows[0], ETag=f'"{rows[0]["version"]}"')


urlpatterns = [
    *project_urlpatterns,
    path("raw/persons/", csrf_exempt(persons)),
    path("raw/persons/<uuid:pk>/", person),
    path("raw/shipments/", shipments),
    path("raw/search/", search),
    path("raw/cases/<uuid:pk>/", csrf_exempt(case)),
]
