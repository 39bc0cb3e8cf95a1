"""`manage.py db_roles`: the runtime database role, seen from a connection made as that role.

Roles belong to the whole PostgreSQL cluster, not to the test database: each test makes a role with a name of its
own (never shared by two runs or two test processes) and drops it, with whatever was granted to it, at the end.
The command must commit for another connection to see the role: these tests run outside a test transaction."""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEvent
from core.management.commands import db_roles
from core.models import OutboxMessage
from entities.models import Entity

from . import factories
from .worker import process_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
AUDIT = "audit_auditevent"


@pytest.fixture
def role(monkeypatch) -> Iterator[SimpleNamespace]:
    runtime = SimpleNamespace(name=f"enf_app_{uuid.uuid4().hex[:12]}", password=secrets.token_urlsafe(24))
    monkeypatch.setenv("TEST_APP_DB_PASSWORD", runtime.password)
    yield runtime
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [runtime.name])
        if cursor.fetchone()[0]:  # cleanup only: a test may have refused to create it
            cursor.execute(f'DROP OWNED BY "{runtime.name}"')  # its grants and default privileges
            cursor.execute(f'DROP ROLE "{runtime.name}"')


def grant(runtime: SimpleNamespace, *, password: bool = True) -> str:
    out = io.StringIO()
    call_command("db_roles", "--role", runtime.name, *(["--password-env", "TEST_APP_DB_PASSWORD"] if password else []),
                 stdout=out)
    return out.getvalue()


def connect_as(runtime: SimpleNamespace) -> psycopg.Connection:
    """A connection as the runtime role to the suite's test database, on the server the suite uses (a host and
    port, or the unix socket of the embedded PostgreSQL)."""
    params = connection.get_connection_params()
    where = {key: params[key] for key in ("dbname", "host", "port") if params.get(key)}
    return psycopg.connect(**where, user=runtime.name, password=runtime.password, autocommit=True)


def refused(conn: psycopg.Connection, statement: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    return str(caught.value)


def privileges(name: str) -> dict[str, list[str]]:
    """Table -> what the role was granted on it, from the tables' access lists."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, array_agg(acl.privilege_type::text ORDER BY acl.privilege_type)"
                       " FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) acl"
                       " WHERE c.relkind = 'r' AND acl.grantee = %s::regrole GROUP BY c.relname", [name])
        return dict(cursor.fetchall())


def read_write() -> list[str]:
    """Every privilege but TRUNCATE, REFERENCES and TRIGGER; and MAINTAIN (ANALYZE), where the server has it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int >= 170000")
        maintain = ["MAINTAIN"] if cursor.fetchone()[0] else []
    return sorted(["SELECT", "INSERT", "UPDATE", "DELETE", *maintain])


def test_the_runtime_role_reads_and_writes_records_and_only_appends_to_the_audit(world, role):
    case = factories.case(world.a, world.a1, title="Before")
    member = factories.user(world.a, "investigator", world.a1)
    AuditEvent.objects.create(chain="roles", seq=1, at="2026-01-01T00:00:00Z", action="create", hash="0" * 64)
    assert grant(role).startswith(f"created: role {role.name} (LOGIN")

    with connect_as(role) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role.name,)
        assert conn.execute("SELECT title FROM cases_case WHERE id = %s", [case.pk]).fetchone() == ("Before",)
        conn.execute("UPDATE cases_case SET title = 'After' WHERE id = %s", [case.pk])
        conn.execute("INSERT INTO cases_case_members (case_id, user_id) VALUES (%s, %s)", [case.pk, member.pk])
        conn.execute("DELETE FROM cases_case_members WHERE case_id = %s", [case.pk])
        conn.execute(
            f"INSERT INTO {AUDIT} (id, chain, seq, at, agency_code, actor, action, object_type, object_id, changes,"
            " request_id, prev_hash, hash) VALUES (gen_random_uuid(), 'roles', 2, now(), '', '', 'create', '', '',"
            " '{}', '', '', %s)", ["1" * 64])
        assert conn.execute(f"SELECT count(*) FROM {AUDIT} WHERE chain = 'roles'").fetchone() == (2,)

        # Refused by privileges (not by the append-only trigger, whose message is another), whoever's row it is.
        for statement in (f"UPDATE {AUDIT} SET hash = '' WHERE chain = 'roles'",
                          f"DELETE FROM {AUDIT} WHERE chain = 'roles'",
                          f"TRUNCATE {AUDIT}",
                          "DELETE FROM audit_chainhead",
                          "TRUNCATE audit_chainhead"):
            assert "permission denied for table" in refused(conn, statement), statement
        # Not its table: it may not change its shape, drop it, or switch its triggers off.
        for statement in (f"ALTER TABLE {AUDIT} ADD COLUMN forged text",
                          f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL",
                          f"ALTER TABLE {AUDIT} DISABLE TRIGGER audit_event_no_update_delete",
                          f"DROP TABLE {AUDIT}",
                          "DROP TABLE cases_case",
                          "TRUNCATE cases_case CASCADE"):
            message = refused(conn, statement)
            assert "must be owner of table" in message or "permission denied for table" in message, statement
        assert "permission denied" in refused(conn, "SET session_replication_role = replica")
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tableowner = current_user").fetchone() == (0,)

    assert AuditEvent.objects.filter(chain="roles").count() == 2
    case.refresh_from_db()
    assert case.title == "After"


def test_it_is_idempotent_and_restricts_the_audit_tables_again(world, role):
    grant(role)
    first = privileges(role.name)
    assert first[AUDIT] == ["INSERT", "SELECT"]
    assert first["audit_chainhead"] == ["INSERT", "SELECT", "UPDATE"]
    assert first["cases_case"] == read_write()
    assert set(first) == set(connection.introspection.table_names())

    with connection.cursor() as cursor:  # as if a grant had widened it since
        cursor.execute(f'GRANT UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {AUDIT} TO "{role.name}"')
    assert grant(role).startswith(f"refreshed: role {role.name}")
    assert privileges(role.name) == first


def test_tables_of_later_migrations_are_granted_and_the_list_of_append_only_tables_restricts_them(
        world, role, monkeypatch):
    grant(role)
    table = f"later_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)")
    try:
        assert privileges(role.name)[table] == read_write()  # by default privileges
        with connect_as(role) as conn:
            conn.execute(f"INSERT INTO {table} (note) VALUES ('x')")  # its identity sequence too

        monkeypatch.setitem(db_roles.RESTRICTED_TABLES, table, db_roles.APPEND_ONLY)
        grant(role)
        assert privileges(role.name)[table] == ["INSERT", "SELECT"]
        with connect_as(role) as conn:
            conn.execute(f"INSERT INTO {table} (note) VALUES ('y')")
            assert "permission denied" in refused(conn, f"DELETE FROM {table}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


def test_without_a_password_a_new_role_cannot_log_in_and_an_existing_one_keeps_its_own(world, role):
    def can_login() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [role.name])
            return cursor.fetchone()[0]

    assert "NOLOGIN" in grant(role, password=False)
    assert can_login() is False
    grant(role)
    assert can_login() is True
    grant(role, password=False)
    assert can_login() is True
    with connect_as(role) as conn:
        assert conn.execute("SELECT count(*) FROM cases_case").fetchone() == (0,)


def test_it_refuses_what_would_make_a_weak_runtime_role(world, role, monkeypatch):
    with pytest.raises(CommandError, match="lower-case SQL name"):
        call_command("db_roles", "--role", 'x"; DROP TABLE cases_case; --')
    monkeypatch.delenv("TEST_APP_DB_PASSWORD")
    with pytest.raises(CommandError, match="TEST_APP_DB_PASSWORD is unset or empty"):
        grant(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="must not be the migration role"):
        call_command("db_roles", "--role", owner)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role.name}" CREATEROLE NOLOGIN')
    with pytest.raises(CommandError, match="CREATEROLE"):
        grant(role, password=False)
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER ROLE "{role.name}" NOCREATEROLE')
        cursor.execute(f'GRANT "{owner}" TO "{role.name}"')  # a member of the owner acts as the owner
    with pytest.raises(CommandError, match="is a member of their owner"):
        grant(role, password=False)
    with connection.cursor() as cursor:
        cursor.execute(f'REVOKE "{owner}" FROM "{role.name}"')
    assert privileges(role.name) == {}  # the refused runs granted nothing


WRITE = """
import json, os, django
django.setup()
from django.db import connection
from rest_framework.test import APIClient
client = APIClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Token " + os.environ["TOKEN"])
response = client.post("/api/v1/persons/", {"name": "Runtime Role Person", "nationalities": ["CN"]}, format="json")
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    user = cursor.fetchone()[0]
    try:
        cursor.execute("TRUNCATE audit_auditevent")
        truncate = "done"
    except Exception as exc:
        truncate = str(exc)
print(json.dumps({"status": response.status_code, "body": response.json(), "user": user, "truncate": truncate}))
"""


def test_the_api_writes_through_its_services_as_the_runtime_role(world, role):
    """The whole write path (the record, its audit event, the chain head, the outbox row) as the runtime role, in
    a process whose DATABASE_URL names that role, as web processes and workers are configured."""
    investigator = factories.user(world.a, "investigator", world.a1)
    token = factories.token(investigator)
    grant(role)
    db = settings.DATABASES["default"]
    host = quote(str(db["HOST"]), safe="") + (f":{db['PORT']}" if db["PORT"] else "")
    query = f"?{urlencode(db['OPTIONS'])}" if db["OPTIONS"] else ""
    url = f"postgres://{role.name}:{quote(role.password, safe='')}@{host}/{connection.settings_dict['NAME']}{query}"
    result = subprocess.run([sys.executable, "-c", WRITE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False, env=process_env(settings.TASK_QUEUE_PREFIX, DATABASE_URL=url, TOKEN=token))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert (answer["status"], answer["user"]) == (201, role.name), answer
    assert "permission denied for table audit_auditevent" in answer["truncate"]

    person = Entity.objects.get(pk=answer["body"]["id"])
    assert person.name == "Runtime Role Person"
    assert AuditEvent.objects.filter(object_id=str(person.pk), action="create").count() == 1
    assert OutboxMessage.objects.filter(task="xref.records_changed").count() == 1
