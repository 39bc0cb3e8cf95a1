"""The load bench's URLs (bench/load.py): the project's, and under /raw/ the raw baselines of the endpoints it drives.

A baseline is the floor of work any implementation of the endpoint's contract (API.md, DESIGN.md) does, written
as a plain Django view (no DRF, no ORM, no serializer, no middleware of its own) running hand-written SQL through
the same database connection and answering JSON (orjson). The bench's gunicorn serves both, in the same run; the
product's URLs (config.urls) never include these.

Every baseline:
- authenticates `Authorization: Token <key>` as the product does: one query finds the live token by the key's
  SHA-256 with its active user and agency (401 otherwise);
- applies the caller's access scope (API.md § Access) as SQL conditions that give the rows core.policy gives a
  user of an agency (`scope_sql` below: own agency, or linked to a case shared with it that the caller's
  clearance, unit and role let them see);
- answers the columns the API answers, with their nested parts (a person's `cases` and `same_as`, a shipment's
  legs, parties and cases, a case's members and commodities).

Each, and what it deliberately leaves out:
- `GET /raw/persons/` (list persons): the token; the count and the first page (`page_size`) of the caller's
  visible live persons ordered by (name, id), each with its visible cases and `same_as`. Leaves out the filters,
  `ordering` and `q` parameters (the bench sends none) and the `next` link's other query parameters.
- `GET /raw/shipments/` (list shipments): the token; the count and first page of visible live shipments ordered
  by (departed_on DESC, created_at DESC), each with its legs, consignor/consignee refs and case ids. Leaves out
  the same as the persons' list.
- `GET /raw/persons/{id}/` (detail person): the token; the visible person with its cases and `same_as`; and, as
  DESIGN.md § Reliability records views of person details, a `view` audit event in the same transaction: the
  chain's head row locked (SELECT … FOR UPDATE), the event inserted with its seq, prev_hash and hash made in
  Python by the chain's own canonical text (audit.services.event_text, so verify_audit passes over these events
  too), the head updated. 404 when not visible.
- `GET /raw/search/` (search, `search_rows`, which bench/search.py times too): the token; in one transaction, the
  visible live persons/organisations whose search text is word-similar (pg_trgm `<%`, its GIN index, the
  product's threshold) to the query, best 50; the visible live cases whose reference, title or summary contain
  it, 50; and the visible live shipments whose reference or unaccented description contain it or are
  word-similar to it (the trigram indexes on upper(reference) and upper(unaccented description)), or whose party
  is one of the persons/organisations found, best 50; merged by score. Leaves out the product's scoring in
  Python (its name forms, transliterations and identifier hits) and its trigram similarity on case titles.
- `POST /raw/persons/` (create person): the token and the role (investigators up may write persons); the name
  checked (a non-blank string) and the nationalities (a list of strings); in one transaction the person inserted
  into the caller's agency, its `create` audit event appended as above (its changes the written fields) and the
  outbox row of its cross-referencing task (`xref.records_changed`) inserted. Leaves out the product's
  normalisation (names, their keys and search text beyond lower(name), phones, e-mails, countries), the duplicate
  rules, and the send of the outbox row to the broker right after the commit (the outbox's dispatcher would send
  it; the product sends it in the request).
- `PATCH /raw/cases/{id}/` (patch case with If-Match): the token and the role; in one transaction one UPDATE of
  the title, conditional on the version in If-Match and on the case being visible and writable by the caller
  (own agency or a read-write share), the row locked and its old title read in the same statement; its `update`
  audit event ({"title": [old, new]}) appended as above; the case answered with its members and commodities.
  412 when no row changed (the product tells 404 from 412; the bench never sends either). Leaves out the checks
  of fields the bench does not send (status moves, owner-only fields, classification).
Superusers (every row) are not handled: the bench's caller is an investigator.
"""

# ruff: noqa: S608  (the SQL text is put together from this module's constant fragments; every value is a parameter)
from __future__ import annotations

import decimal
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.choices import levels_up_to
from audit.services import _Shared, event_text
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401  (the project's JSON errors)
from config.urls import urlpatterns as project_urlpatterns
from core.outbox import RECORDS_CHANGED
from core.policy import AGENCY_WIDE_READERS, INVESTIGATORS_UP


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError


def _json(body: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body, default=_default), content_type="application/json", status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _rows(sql: str, params: Any) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _page(request: HttpRequest) -> int:
    return min(int(request.GET.get("page_size", 50)), 500)


# --- the caller --------------------------------------------------------------------------------------------------


@dataclass
class Caller:
    id: uuid.UUID
    username: str
    agency_id: uuid.UUID
    agency_code: str
    unit_id: uuid.UUID | None
    role: str
    clearance: str

    def params(self) -> dict[str, Any]:
        """The values the scope's SQL names."""
        return {"agency": self.agency_id, "unit": self.unit_id, "user": self.id,
                "levels": levels_up_to(self.clearance)}


AUTH_SQL = """SELECT u.id, u.username, u.agency_id, a.code AS agency_code, u.unit_id, u.role, u.clearance
    FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id JOIN accounts_agency a ON a.id = u.agency_id
    WHERE t.key_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now() AND u.is_active"""


def authenticate(request: HttpRequest) -> Caller | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Token" or not key:
        return None
    rows = _rows(AUTH_SQL, [hashlib.sha256(key.strip().encode()).hexdigest()])
    return Caller(**rows[0]) if rows else None


def _unauthorized() -> HttpResponse:
    return _json({"detail": "Invalid, expired or revoked token."}, status=401)


# --- the scope ---------------------------------------------------------------------------------------------------


def case_visible_sql(caller: Caller, c: str) -> str:
    """Case `c` is visible to the caller: cleared for its classification, and of their agency (agency-wide role,
    or their unit's, or they lead it or are a member) or shared with their agency (or unit)."""
    own = "true" if caller.role in AGENCY_WIDE_READERS else (
        f"({c}.unit_id = %(unit)s OR {c}.lead_id = %(user)s OR EXISTS (SELECT 1 FROM cases_case_members {c}_m "
        f"WHERE {c}_m.case_id = {c}.id AND {c}_m.user_id = %(user)s))")
    return (f"{c}.classification = ANY(%(levels)s) AND (({c}.agency_id = %(agency)s AND {own}) OR {c}.id IN ("
            f"SELECT {c}_s.case_id FROM cases_caseshare {c}_s WHERE {c}_s.agency_id = %(agency)s "
            f"AND NOT {c}_s.archived AND {c}_s.access IN ('read', 'write') "
            f"AND ({c}_s.unit_id IS NULL OR {c}_s.unit_id = %(unit)s)))")


def scope_sql(caller: Caller, alias: str, link: str) -> str:
    """An agency record `alias` is visible: of the caller's agency, or linked (`link`: SQL giving the record's
    ids from a case `{c}`'s) to a visible case of another agency."""
    c = f"{alias}_c"
    return (f"({alias}.agency_id = %(agency)s OR {alias}.id IN ({link.format(c=c)} JOIN cases_case {c} ON "
            f"{c}.id = {c}_l.case_id WHERE {c}.agency_id <> %(agency)s AND {case_visible_sql(caller, c)}))")


ENTITY_LINK = "SELECT {c}_l.entity_id FROM cases_caseparty {c}_l"
SHIPMENT_LINK = "SELECT {c}_l.shipment_id FROM shipments_shipment_cases {c}_l"


def person_columns(caller: Caller) -> str:
    """A person's columns as the API answers them, from `e` joined to its agency `a`."""
    return f"""e.id, e.created_at, e.updated_at, e.version, e.archived, a.code AS agency, e.name, e.names,
    e.gender, e.birth_date, e.birth_place, e.nationalities, e.identifiers, e.addresses, e.phones, e.emails, e.notes,
    e.source, e.source_id,
    (SELECT COALESCE(json_agg(json_build_object('type', o.type, 'id', o.id, 'name', o.name) ORDER BY o.name, o.id),
                     '[]'::json)
       FROM xref_identitymember im JOIN xref_identitymember om ON om.cluster = im.cluster
       JOIN entities_entity o ON o.id = om.entity_id
      WHERE im.entity_id = e.id AND o.id <> e.id AND NOT o.archived AND o.agency_id = e.agency_id
        AND {scope_sql(caller, "o", ENTITY_LINK)}) AS same_as,
    e.topics, e.lists,
    (SELECT COALESCE(json_agg(json_build_object('id', pc.id, 'reference', pc.reference, 'role', p.role)
                              ORDER BY pc.reference, p.role), '[]'::json)
       FROM cases_caseparty p JOIN cases_case pc ON pc.id = p.case_id
      WHERE p.entity_id = e.id AND NOT p.archived AND NOT pc.archived AND {case_visible_sql(caller, "pc")}) AS cases"""


# --- the audit chain ---------------------------------------------------------------------------------------------


def append_event(request: HttpRequest, caller: Caller, *, action: str, object_type: str, object_id: Any,
                 changes: dict[str, Any], case_id: Any = None) -> None:
    """One event at the head of the caller's agency's chain (inside the caller's transaction)."""
    chain = str(caller.agency_id)
    changes_text = json.dumps(changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    ip = request.META.get("REMOTE_ADDR") or None
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_seq, last_hash FROM audit_chainhead WHERE chain = %s FOR UPDATE", [chain])
        head = cursor.fetchone()
        if head is None:
            cursor.execute("INSERT INTO audit_chainhead (chain, last_seq, last_hash) VALUES (%s, 0, '') "
                           "ON CONFLICT DO NOTHING", [chain])
            cursor.execute("SELECT last_seq, last_hash FROM audit_chainhead WHERE chain = %s FOR UPDATE", [chain])
            head = cursor.fetchone()
        seq, prev_hash = head[0] + 1, head[1]
        at = timezone.now()
        shared = _Shared.of(chain=chain, agency_code=caller.agency_code, actor_id=caller.id, actor=caller.username,
                            at=at, request_id=request_id, ip=ip)
        text = event_text(shared, action=action, object_type=object_type, object_id=str(object_id),
                          case_id=case_id, changes=changes_text, seq=seq)
        digest = hashlib.sha256(f"{prev_hash}{text}".encode()).hexdigest()
        cursor.execute(
            "INSERT INTO audit_auditevent (id, chain, seq, at, agency_code, actor_id, actor, action, object_type,"
            " object_id, case_id, changes, request_id, ip, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
            [uuid.uuid4(), chain, seq, at, caller.agency_code, caller.id, caller.username, action, object_type,
             str(object_id), case_id, changes_text, request_id, ip, prev_hash, digest])
        cursor.execute("UPDATE audit_chainhead SET last_seq = %s, last_hash = %s WHERE chain = %s",
                       [seq, digest, chain])


# --- the endpoints -----------------------------------------------------------------------------------------------


def persons(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return person_create(request)
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    size = _page(request)
    scope = scope_sql(caller, "e", ENTITY_LINK)
    params = {**caller.params(), "size": size}
    count = _rows(f"SELECT count(*) AS n FROM entities_entity e WHERE e.type = 'person' AND NOT e.archived "
                  f"AND {scope}", params)[0]["n"]
    rows = _rows(f"SELECT {person_columns(caller)} FROM entities_entity e JOIN accounts_agency a ON a.id = e.agency_id"
                 f" WHERE e.type = 'person' AND NOT e.archived AND {scope} ORDER BY e.name, e.id LIMIT %(size)s",
                 params)
    return _json({"count": count, "next": "/raw/persons/?page=2" if count > size else None, "previous": None,
                  "results": rows})


def person(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    with transaction.atomic():
        rows = _rows(f"SELECT {person_columns(caller)} FROM entities_entity e JOIN accounts_agency a "
                     f"ON a.id = e.agency_id WHERE e.id = %(pk)s AND e.type = 'person' "
                     f"AND {scope_sql(caller, 'e', ENTITY_LINK)}", {**caller.params(), "pk": pk})
        if not rows:
            return _json({"detail": "Not found."}, status=404)
        append_event(request, caller, action="view", object_type="person", object_id=pk, changes={})
    return _json(rows[0], ETag=f'"{rows[0]["version"]}"')


def person_create(request: HttpRequest) -> HttpResponse:
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    if caller.role not in INVESTIGATORS_UP:
        return _json({"detail": "You do not have permission to perform this action."}, status=403)
    try:
        data = orjson.loads(request.body)
        name = " ".join(str(data["name"]).split())
        nationalities = [str(country) for country in data.get("nationalities", [])]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _json({"detail": "A person needs a name."}, status=400)
    if not name:
        return _json({"name": ["A name cannot be blank."]}, status=400)
    pk = uuid.uuid4()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO entities_entity (id, created_at, updated_at, version, archived, type, name, names,
                       gender, birth_date, birth_place, nationalities, kind, jurisdiction, registration_number,
                       website, identifiers, addresses, phones, emails, notes, source, source_id, search_text,
                       identifier_numbers, agency_id, name_keys, lists, topics)
                   VALUES (%s, now(), now(), 1, false, 'person', %s, %s, '', NULL, '', %s, '', '', '', '', '[]',
                       '[]', '{}', '{}', '', '', '', lower(%s), '{}', %s, '{}', '{}', '{}')""",
                [pk, name, [name], nationalities, name, caller.agency_id])
        append_event(request, caller, action="create", object_type="person", object_id=pk,
                     changes={"name": [None, name], "names": [None, [name]], "nationalities": [None, nationalities]})
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO core_outboxmessage (task, kwargs, key, queue, revision, created_at, attempts,"
                " next_attempt_at, last_error) VALUES (%s, %s::jsonb, %s, '', 1, now(), 0, now(), '')",
                [RECORDS_CHANGED, json.dumps({"model": "entities.person", "ids": [str(pk)]}),
                 f"entities.person:{pk}"])
        rows = _rows(f"SELECT {person_columns(caller)} FROM entities_entity e JOIN accounts_agency a "
                     f"ON a.id = e.agency_id WHERE e.id = %(pk)s", {**caller.params(), "pk": pk})
    return _json(rows[0], status=201, ETag=f'"{rows[0]["version"]}"')


SHIPMENTS_SQL = """
WITH page AS (
    SELECT * FROM shipments_shipment s WHERE NOT s.archived AND {scope}
    ORDER BY s.departed_on DESC NULLS LAST, s.created_at DESC LIMIT %(size)s
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
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    size = _page(request)
    scope = scope_sql(caller, "s", SHIPMENT_LINK)
    params = {**caller.params(), "size": size}
    count = _rows(f"SELECT count(*) AS n FROM shipments_shipment s WHERE NOT s.archived AND {scope}",
                  params)[0]["n"]
    rows = _rows(SHIPMENTS_SQL.format(scope=scope), params)
    return _json({"count": count, "next": "/raw/shipments/?page=2" if count > size else None, "previous": None,
                  "results": rows})


SEARCH_SQL = """
WITH ent AS (
    SELECT e.type, e.id, e.name AS label, word_similarity(%(q)s, e.search_text) AS score
      FROM entities_entity e
     WHERE NOT e.archived AND %(q)s <%% e.search_text AND {entity_scope}
     ORDER BY score DESC, e.name, e.id LIMIT 50
)
SELECT type, id, label, score FROM ent
UNION ALL
(SELECT 'case', c.id, c.reference || ' ' || c.title, 0.5 FROM cases_case c
  WHERE NOT c.archived AND {case_scope}
    AND (c.reference ILIKE %(like)s OR c.title ILIKE %(like)s OR c.summary ILIKE %(like)s)
  ORDER BY c.opened_on DESC, c.reference LIMIT 50)
UNION ALL
(SELECT 'shipment', s.id, s.reference,
        word_similarity(%(q)s, upper(shipments_unaccent(s.declared_description))) AS score
   FROM shipments_shipment s
  WHERE NOT s.archived AND {shipment_scope}
    AND (upper(s.reference) LIKE upper(%(like)s)
         OR upper(shipments_unaccent(s.declared_description)) LIKE upper(shipments_unaccent(%(like)s))
         OR %(q)s <%% upper(shipments_unaccent(s.declared_description))
         OR s.consignor_id = ANY(ARRAY(SELECT id FROM ent)) OR s.consignee_id = ANY(ARRAY(SELECT id FROM ent))
         OR s.notify_party_id = ANY(ARRAY(SELECT id FROM ent))
         OR s.ordering_party_id = ANY(ARRAY(SELECT id FROM ent)))
  ORDER BY score DESC, s.reference, s.id LIMIT 50)
ORDER BY score DESC
"""



def search_rows(caller: Caller, q: str) -> list[tuple[Any, ...]]:
    """The raw trigram search (SEARCH_SQL): one transaction, the product's threshold, the caller's scope; rows of
    (type, id, label, score). bench/search.py times it too."""
    from explore.search import WORD_SIMILARITY_THRESHOLD

    text = " ".join(q.split())
    sql = SEARCH_SQL.format(entity_scope=scope_sql(caller, "e", ENTITY_LINK),
                            case_scope=case_visible_sql(caller, "c"),
                            shipment_scope=scope_sql(caller, "s", SHIPMENT_LINK))
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
                       [str(WORD_SIMILARITY_THRESHOLD)])
        cursor.execute("SELECT lower(shipments_unaccent(%s))", [text])
        folded = cursor.fetchone()[0]
        cursor.execute(sql, {**caller.params(), "q": folded, "like": like})
        return cursor.fetchall()


def search(request: HttpRequest) -> HttpResponse:
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    q = " ".join(request.GET.get("q", "").split())
    if len(q) < 2:
        return _json({"q": ["Ensure this field has at least 2 characters."]}, status=400)
    rows = [{"type": kind, "id": pk, "label": label, "score": score}
            for kind, pk, label, score in search_rows(caller, q)]
    return _json({"count": len(rows), "next": None, "previous": None, "results": rows})


CASE_COLUMNS = """c.id, c.created_at, c.updated_at, c.version, c.archived, a.code AS agency, c.reference, c.title,
    c.summary, c.status, c.priority, c.classification, u.code AS unit, l.username AS lead,
    ARRAY(SELECT mu.username FROM cases_case_members m JOIN accounts_user mu ON mu.id = m.user_id
          WHERE m.case_id = c.id ORDER BY mu.username) AS members,
    ARRAY(SELECT cc.commodity_id FROM cases_case_commodities cc WHERE cc.case_id = c.id ORDER BY cc.commodity_id)
        AS commodities,
    c.opened_on, c.closed_on, c.tags, cb.username AS created_by"""


def case(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    caller = authenticate(request)
    if caller is None:
        return _unauthorized()
    if caller.role not in INVESTIGATORS_UP:
        return _json({"detail": "You do not have permission to perform this action."}, status=403)
    try:
        title = " ".join(str(orjson.loads(request.body)["title"]).split())
        version = int(request.headers.get("If-Match", "").strip('"'))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _json({"detail": "A title and If-Match are required."}, status=400)
    writable = (f"{case_visible_sql(caller, 'w')} AND (w.agency_id = %(agency)s OR w.id IN (SELECT ws.case_id "
                f"FROM cases_caseshare ws WHERE ws.agency_id = %(agency)s AND NOT ws.archived AND ws.access = 'write'"
                f" AND (ws.unit_id IS NULL OR ws.unit_id = %(unit)s)))")
    with transaction.atomic():
        changed = _rows(
            f"""UPDATE cases_case c SET title = %(title)s, version = c.version + 1, updated_at = now()
                  FROM (SELECT w.id, w.title FROM cases_case w WHERE w.id = %(pk)s AND w.version = %(version)s
                        AND {writable} FOR UPDATE) old
                 WHERE c.id = old.id RETURNING old.title""",
            {**caller.params(), "pk": pk, "version": version, "title": title})
        if not changed:
            return _json({"detail": "Precondition failed."}, status=412)
        append_event(request, caller, action="update", object_type="case", object_id=pk, case_id=pk,
                     changes={"title": [changed[0]["title"], title]})
        row = _rows(f"SELECT {CASE_COLUMNS} FROM cases_case c JOIN accounts_agency a ON a.id = c.agency_id "
                    f"LEFT JOIN accounts_unit u ON u.id = c.unit_id LEFT JOIN accounts_user l ON l.id = c.lead_id "
                    f"LEFT JOIN accounts_user cb ON cb.id = c.created_by_id WHERE c.id = %s", [pk])[0]
    return _json(row, ETag=f'"{row["version"]}"')


urlpatterns = [
    *project_urlpatterns,
    path("raw/persons/", csrf_exempt(persons)),
    path("raw/persons/<uuid:pk>/", person),
    path("raw/shipments/", shipments),
    path("raw/search/", search),
    path("raw/cases/<uuid:pk>/", csrf_exempt(case)),
]
