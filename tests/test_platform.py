"""Schema, docs, health, readiness and metrics."""

import pytest
import yaml
from django.urls import get_resolver
from rest_framework.test import APIClient


@pytest.fixture
def anon():
    return APIClient()


def _api_routes():
    """Every route under /api/v1/ as the OpenAPI path template drf-spectacular would print."""
    from drf_spectacular.generators import EndpointEnumerator

    # drf-spectacular names a primary-key parameter `id`.
    return {endpoint[0].replace("{pk}", "{id}") for endpoint in EndpointEnumerator().get_api_endpoints()}


def test_schema_lists_every_api_route(api):
    response = api.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    documented = set(schema["paths"])
    routes = {r for r in _api_routes() if r.startswith("/api/v1/") and "schema" not in r and "docs" not in r
              and "redoc" not in r}
    assert routes, "no API routes found"
    missing = routes - documented
    assert not missing, f"routes missing from the schema: {sorted(missing)}"
    for path in ("/api/v1/cases/", "/api/v1/cases/{id}/", "/api/v1/cases/{case_pk}/parties/",
                 "/api/v1/cases/{case_pk}/notes/", "/api/v1/cases/{case_pk}/shares/",
                 "/api/v1/cases/{id}/timeline/", "/api/v1/audit/", "/api/v1/audit/verify/",
                 "/api/v1/auth/tokens/", "/api/v1/auth/tokens/current/", "/api/v1/auth/me/"):
        assert path in documented, path


def test_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    assert out.stat().st_size > 1000


def test_docs_page_is_served(api):
    assert api.get("/api/v1/docs/").status_code == 200


def test_healthz(anon):
    response = anon.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_readyz_checks_postgres_redis_and_the_broker(anon, db):
    response = anon.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["checks"] == {"postgres": "ok", "redis": "ok", "broker": "ok"}
    assert set(body["worker"]) == {"recent", "last_seen"} and set(body["outbox"]) == {"unsent", "oldest_seconds"}


def test_readyz_fails_when_redis_is_away(anon, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


def test_metrics_are_prometheus_text(anon, api):
    api.get("/api/v1/cases/")
    response = anon.get("/metrics")
    assert response.status_code == 200
    assert b"http_request_duration_seconds" in response.content


def test_unauthenticated_api_call_is_401_json(anon, db):
    response = anon.get("/api/v1/cases/")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_unknown_route_is_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_url_conf_loads():
    assert get_resolver().reverse_dict


def test_api_root_lists_the_top_level_resources(api):
    response = api.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    for name in ("cases", "persons", "organizations", "links", "shipments", "licences", "commodities",
                 "prosecutions", "search", "graph", "imports", "audit"):
        assert body[name].startswith("http://testserver/api/v1/"), name
