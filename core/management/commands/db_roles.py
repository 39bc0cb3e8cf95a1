"""Create or refresh the database role the application runs as (README § Configuration, "Database roles").

Two roles: the migration role owns the tables (`migrate` runs as it, and so does this command); the runtime role,
which web processes and workers connect as, owns nothing and holds only the privileges granted here. Not owning a
table, it can neither ALTER, DROP nor TRUNCATE one, nor disable a trigger on it; on the audit tables it may not
even UPDATE or DELETE.
"""

from __future__ import annotations

import os
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction

READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
# PostgreSQL 17+: MAINTAIN lets it ANALYZE the tables it fills in bulk (xref.matching.keys.analyze), which a full
# cross-referencing pass is planned on. An older server skips that ANALYZE for a non-owner with a warning and leaves
# the statistics to autovacuum. MAINTAIN gives no TRUNCATE, ALTER or DROP.
MAINTAIN_SINCE = 170000
APPEND_ONLY = ("SELECT", "INSERT")
# The tables the runtime role may not change freely, and what it may do there instead of READ_WRITE. A table that a
# later migration adds gets READ_WRITE by default privileges until this command runs again: run it after `migrate`.
# A table named here that the database does not have (yet) is skipped.
RESTRICTED_TABLES: dict[str, tuple[str, ...]] = {
    "audit_auditevent": APPEND_ONLY,
    "audit_auditcheckpoint": APPEND_ONLY,
    "audit_chainhead": ("SELECT", "INSERT", "UPDATE"),  # the head moves forward with every event
}
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class Command(BaseCommand):
    help = ("Create or refresh the runtime database role: no table of its own; CONNECT, USAGE on the schema, read and "
            "write on every table and sequence, append-only on the audit tables. Idempotent; run it as the role that "
            "owns the tables (the one `migrate` uses), after every `migrate`.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default="enforcement_app", help="the runtime role's name (default %(default)s)")
        parser.add_argument("--password-env", metavar="VARIABLE",
                            help="the environment variable that holds the role's password (it becomes LOGIN with "
                                 "that password); without it a new role is NOLOGIN and an existing one keeps its own")
        parser.add_argument("--schema", default="public", help="the schema of the tables (default %(default)s)")
        parser.add_argument("--database", default="default", help="the database connection to use")

    def handle(self, *args: Any, role: str, password_env: str | None, schema: str, database: str,
               **options: Any) -> None:
        if not ROLE_NAME.fullmatch(role):
            raise CommandError("--role must be a lower-case SQL name: letters, digits and '_', 63 at most")
        password = None
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"the environment variable {password_env} is unset or empty")
        connection = connections[database]
        quote = connection.ops.quote_name
        with transaction.atomic(using=database), connection.cursor() as cursor:
            owner = self._owner(cursor, schema)
            cursor.execute("SELECT current_user, current_database(), current_setting('server_version_num')::int")
            current_user, dbname, version = cursor.fetchone()
            if role in (owner, current_user):
                raise CommandError(f"the runtime role must not be the migration role {owner!r} or {current_user!r}")
            created = self._ensure_role(cursor, role, quote(role), password)
            self._refuse_owning(cursor, role, schema)
            names = {"role": quote(role), "owner": quote(owner), "schema": quote(schema), "db": quote(dbname)}
            read_write = ", ".join((*READ_WRITE, "MAINTAIN") if version >= MAINTAIN_SINCE else READ_WRITE)
            for statement in (
                "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
                "GRANT USAGE ON SCHEMA {schema} TO {role}",
                "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
                f"GRANT {read_write} ON ALL TABLES IN SCHEMA {{schema}} TO {{role}}",
                "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
                # Tables and sequences that later migrations create: granted as they are made.
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA {{schema}} "
                f"GRANT {read_write} ON TABLES TO {{role}}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                "GRANT USAGE, SELECT ON SEQUENCES TO {role}",
            ):
                cursor.execute(statement.format(**names))
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                           [schema, list(RESTRICTED_TABLES)])
            restricted = sorted(row[0] for row in cursor.fetchall())
            for table in restricted:
                target = f"{quote(schema)}.{quote(table)}"
                cursor.execute(f"REVOKE ALL ON {target} FROM {quote(role)}")
                cursor.execute(f"GRANT {', '.join(RESTRICTED_TABLES[table])} ON {target} TO {quote(role)}")
            cursor.execute("SELECT has_database_privilege(%s, current_database(), 'CONNECT')", [role])
            if not cursor.fetchone()[0]:
                raise CommandError(f"{current_user!r} could not grant CONNECT on {dbname!r}: run this as its owner")
        login = "LOGIN with the password from " + password_env if password_env else (
            "NOLOGIN" if created else "login unchanged")
        self.stdout.write(f"{'created' if created else 'refreshed'}: role {role} ({login}); tables of {owner} in "
                          f"{schema}: {read_write}, except "
                          + "; ".join(f"{t}: {', '.join(RESTRICTED_TABLES[t])}" for t in restricted))

    def _owner(self, cursor: Any, schema: str) -> str:
        """The migration role: the owner of django_migrations, which must own (or be) every table's owner here."""
        cursor.execute("SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'django_migrations'",
                       [schema])
        row = cursor.fetchone()
        if row is None:
            raise CommandError(f"no django_migrations table in schema {schema!r}: run `migrate` first")
        cursor.execute("SELECT string_agg(tablename, ', ') FROM pg_tables WHERE schemaname = %s"
                       " AND NOT pg_has_role(current_user, tableowner, 'USAGE')", [schema])
        foreign = cursor.fetchone()[0]
        if foreign:
            raise CommandError(f"run this as the role that owns the tables (the one `migrate` uses); "
                               f"not owned by the current role: {foreign}")
        return row[0]

    def _ensure_role(self, cursor: Any, role: str, name: str, password: str | None) -> bool:
        """Create the role, or check an existing one; set its password when given. Whether it was created."""
        cursor.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"
                       " FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is not None and row[0]:
            raise CommandError(f"role {role!r} has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS: "
                               "the runtime role must have none of them")
        if row is None:
            cursor.execute(f"CREATE ROLE {name} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                           "INHERIT NOLOGIN")
        if password is not None:
            cursor.execute(f"ALTER ROLE {name} LOGIN PASSWORD %s", [password])
        return row is None

    def _refuse_owning(self, cursor: Any, role: str, schema: str) -> None:
        """The runtime role may neither own a table here nor be a member of a role that does."""
        cursor.execute("SELECT string_agg(DISTINCT tableowner, ', ') FROM pg_tables WHERE schemaname = %s"
                       " AND pg_has_role(%s, tableowner, 'MEMBER')", [schema, role])
        owners = cursor.fetchone()[0]
        if owners:
            raise CommandError(f"role {role!r} owns tables in {schema!r}, or is a member of their owner ({owners}): "
                               "it cannot be the runtime role")
