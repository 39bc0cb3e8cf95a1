"""The API's routes as the URL resolver has them, for the access matrices (tests/test_access_matrix*.py).

A route is `(name, METHOD)`: the URL pattern's name and one HTTP method its view answers (a viewset's actions on that
pattern, or an APIView's handlers), so a matrix names what it exercises the way the resolver does, and a route the
resolver has that no matrix names is found (tests/test_access_matrix_routes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "api/v1/"
Route = tuple[str, str]  # (URL pattern name, HTTP method)

# The methods a matrix answers for. HEAD is GET without a body (Django and DRF answer it with the GET handler), and
# OPTIONS describes the endpoint: neither reads nor writes an agency's object of its own.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Routes under api/v1/ no matrix covers, each with the reason. Everything else must be in a matrix's ROUTES.
EXCLUDED: dict[Route, str] = {
    ("api-root", "GET"): "the list of top-level resources' links: names no agency's object",
    ("schema", "GET"): "the OpenAPI schema: the same document for everyone, no agency's data",
    ("docs", "GET"): "Swagger UI page over the schema: no agency's data",
    ("redoc", "GET"): "Redoc page over the schema: no agency's data",
    ("auth-tokens", "POST"): "sign-in: it takes a username and password, not a token of a role "
                             "(tests/test_auth.py)",
    ("auth-token-current", "DELETE"): "revokes the caller's own token, no agency's object (tests/test_auth.py)",
    ("auth-me", "GET"): "the caller's own account, no agency's object (test_access_matrix.py's test_me asks it "
                        "for every caller)",
}


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def view_methods(pattern: URLPattern) -> set[str]:
    """The methods of METHODS the pattern's view answers; {"*"} for a plain function view (it may answer any)."""
    callback = pattern.callback
    view_class = getattr(callback, "cls", None)
    if view_class is None:
        return {"*"}
    allowed = {name.upper() for name in view_class.http_method_names}
    actions = getattr(callback, "actions", None)  # a viewset: {method: action} for this pattern
    answered = {method.upper() for method in actions} if actions else {
        method.upper() for method in view_class.http_method_names if hasattr(view_class, method)}
    return answered & allowed & set(METHODS)


def api_routes(urlconf: str | None = None) -> dict[Route, str]:
    """Every route under api/v1/ of `urlconf` (settings.ROOT_URLCONF when None): (name, method) → its URL pattern.

    DRF's routers give each pattern a twin with a format suffix (`\\.json`) under the same name: one route. A pattern
    without a name is named by its path."""
    routes: dict[Route, str] = {}
    for path, pattern in _walk(get_resolver(urlconf).url_patterns, ""):
        if not path.lstrip("^").startswith(API_PREFIX):
            continue
        for method in sorted(view_methods(pattern)):
            routes.setdefault((pattern.name or path, method), path)
    return routes
