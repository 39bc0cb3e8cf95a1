"""`Authorization: Token <key>`: every API call's first step, so it is one precompiled statement.

The token, its user and the user's agency and unit are read in one query whose text is put together once per
process from the models' columns (an ORM query with three joins costs about a millisecond of Python to compile,
on every call); the rows become model instances as the ORM's `select_related` would make them. A token is live
as `ApiToken.objects.live()` says: not revoked, not expired (tests/test_auth.py holds the two to the same answer).
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core import context

from .models import Agency, ApiToken, Unit, User, hash_key
from .services import token_used

# The models read, each under its alias, in the order their columns come in the row.
_READ: tuple[tuple[type[Model], str], ...] = ((ApiToken, "t"), (User, "u"), (Agency, "a"), (Unit, "n"))


@functools.cache
def _token_sql() -> str:
    columns = ", ".join(f'{alias}."{field.column}"' for model, alias in _READ for field in model._meta.concrete_fields)
    # The text holds only the models' own column names; the key and the time are parameters.
    return (f"SELECT {columns} FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id "  # noqa: S608
            "LEFT JOIN accounts_agency a ON a.id = u.agency_id LEFT JOIN accounts_unit n ON n.id = u.unit_id "
            "WHERE t.key_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s")


def live_token(key: str) -> ApiToken | None:
    """The live token of `key`, with its user, the user's agency and unit attached (no further query reads them)."""
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [hash_key(key), timezone.now()])
        row = cursor.fetchone()
    if row is None:
        return None
    made: list[Any] = []
    start = 0
    for model, _ in _READ:
        fields = model._meta.concrete_fields
        values = row[start:start + len(fields)]
        start += len(fields)
        # A user of no agency, or of no unit: the left join's columns are all NULL, the primary key first.
        made.append(None if values[0] is None else model.from_db(connection.alias, [f.attname for f in fields],
                                                                  values))
    token, user, agency, unit = made
    user.agency, user.unit = agency, unit
    token.user = user
    return token


class HashedTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`; the key is looked up by its SHA-256, and must be live."""

    keyword = "Token"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            context.current().user = result[0]
        return result

    def authenticate_credentials(self, key):
        token = live_token(key)
        # A lock stops password guessing; it does not cut off the user's existing tokens.
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        token_used(token=token)
        return token.user, token


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <key>`"}
