"""Production settings, as a deployment starts them: in a process of their own, from the environment alone."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_ISSUES = "System check identified no issues (0 silenced)."
# What config/settings/production.py reads for the security of a deployment: the test's process may carry any of
# them; each run below starts from the defaults and sets only what it names.
SECURITY_ENV = (
    "DEBUG", "ALLOWED_HOSTS", "LOOPBACK_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY", "SECURE_CROSS_ORIGIN_OPENER_POLICY", "X_FRAME_OPTIONS", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SECURE_REDIRECT_EXEMPT",
)


def production(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {name: value for name, value in os.environ.items() if name not in SECURITY_ENV}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings.production",
             "SECRET_KEY": secrets.token_urlsafe(50), **env},
    )


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return production("manage.py", "check", "--deploy", "--fail-level", "WARNING", **env)


def test_check_deploy_finds_nothing_with_the_defaults():
    result = check_deploy()
    assert (result.returncode, result.stdout.strip()) == (0, NO_ISSUES), result.stderr


@pytest.mark.parametrize(("variable", "value", "warning"), [
    ("SECURE_HSTS_SECONDS", "0", "security.W004"),
    ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "false", "security.W005"),
    ("SECURE_SSL_REDIRECT", "false", "security.W008"),
    ("SESSION_COOKIE_SECURE", "false", "security.W012"),
    ("X_FRAME_OPTIONS", "SAMEORIGIN", "security.W019"),
])
def test_each_setting_comes_from_the_environment(variable, value, warning):
    result = check_deploy(**{variable: value})
    assert result.returncode != 0
    assert warning in result.stderr, result.stderr


def test_production_needs_a_secret_key():
    result = production("manage.py", "check", "--deploy", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
def answer(path, **headers):
    response = client.get(path, HTTP_HOST="127.0.0.1", **headers)
    return {"status": response.status_code, "location": response.get("Location"),
            "hsts": response.get("Strict-Transport-Security")}
print(json.dumps({
    "healthz": answer("/healthz"),
    "metrics": answer("/metrics"),
    "api": answer("/api/v1/"),
    "healthz_https": answer("/healthz", HTTP_X_FORWARDED_PROTO="https"),
}))
"""


def probe(**env: str) -> dict:
    result = production("-c", PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_health_and_metrics_answer_plain_http_on_the_loopback_the_rest_goes_to_https():
    answers = probe()
    assert answers["healthz"] == {"status": 200, "location": None, "hsts": None}
    assert answers["metrics"]["status"] == 200
    assert answers["api"]["status"] == 301
    assert answers["api"]["location"] == "https://127.0.0.1/api/v1/"
    # Behind the TLS proxy (X-Forwarded-Proto), HSTS is sent for a year, subdomains and preload included.
    assert answers["healthz_https"] == {"status": 200, "location": None,
                                        "hsts": "max-age=31536000; includeSubDomains; preload"}


def test_without_the_proxy_header_a_forwarded_proto_is_not_believed():
    answers = probe(SECURE_PROXY_SSL_HEADER="false", SECURE_HSTS_SECONDS="600", SECURE_HSTS_PRELOAD="false")
    assert answers["healthz_https"] == {"status": 200, "location": None, "hsts": None}  # plain HTTP: no HSTS
    assert answers["api"]["status"] == 301


def test_the_loopback_names_can_be_refused():
    answers = probe(ALLOWED_HOSTS="cases.example.org", LOOPBACK_HOSTS="")
    assert answers["healthz"]["status"] == 400
