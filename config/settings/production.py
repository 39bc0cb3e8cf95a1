from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")  # required: no default in production
if not SECRET_KEY.strip():
    raise ImproperlyConfigured("SECRET_KEY is empty: give it 50 or more random characters")

# --- Security of a deployment -----------------------------------------------------------------------------------
# Every setting below comes from the environment; the defaults are those of a service behind a TLS-terminating
# proxy, and `manage.py check --deploy` reports nothing with them (README § Security of a deployment).
#
# The host names clients use, plus the loopback names, so that a healthcheck or scraper inside the container can
# call /healthz, /readyz and /metrics on 127.0.0.1 (set LOOPBACK_HOSTS empty to refuse them).
ALLOWED_HOSTS = list(dict.fromkeys([
    *env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"]),
    *env.list("LOOPBACK_HOSTS", default=["localhost", "127.0.0.1", "[::1]"]),
]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Plain HTTP is redirected to HTTPS, except SECURE_REDIRECT_EXEMPT (base.py: the health and metrics paths). Behind a
# proxy that terminates TLS, the request is HTTPS when the proxy says so in X-Forwarded-Proto: turn
# SECURE_PROXY_SSL_HEADER off when nothing in front of the web server sets that header (or strips a client's).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("SECURE_PROXY_SSL_HEADER", default=True) else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SECURE_REFERRER_POLICY = env("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = env("SECURE_CROSS_ORIGIN_OPENER_POLICY", default="same-origin")
X_FRAME_OPTIONS = env("X_FRAME_OPTIONS", default="DENY")

# Cookies of the admin's sessions and CSRF: HTTPS only, not readable by scripts (the session), a working day long.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = env.bool("SESSION_COOKIE_HTTPONLY", default=True)
SESSION_COOKIE_SAMESITE = env("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE = env("CSRF_COOKIE_SAMESITE", default="Lax")
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)
