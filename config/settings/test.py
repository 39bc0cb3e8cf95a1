from .base import *  # noqa: F403
from .base import BASE_DIR, LOG_FORMAT, env, logging_settings

SECRET_KEY = env("SECRET_KEY", default="test-only-not-a-secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = str(BASE_DIR / "var" / "test-media")
# The throttles stay on (every request touches the cache, as in production); their counters live in the shared
# Redis cache and outlast a run, so the rates are out of reach and a test that needs a limit sets its own.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "1000000/minute", "anon": "1000000/minute"},
}
# Out of reach too, as the throttles' (many tests sign in from 127.0.0.1); the tests of the limit set their own and
# sign in from addresses of their own.
AUTH_RATE = "1000000/minute"
# JSON lines as in production, warnings and worse unless LOG_LEVEL says otherwise (a test's worker may).
LOG_LEVEL = env("LOG_LEVEL", default="WARNING")
LOGGING = logging_settings(LOG_FORMAT, LOG_LEVEL)

# What the suite sends through the outbox goes to queues of its own, never to those a development worker on the
# same Redis consumes (it would run the tests' tasks against its own database). tests/conftest.py empties them
# after a run; a test that starts a worker gives it, and itself, a prefix of their own.
TASK_QUEUE_PREFIX = env("TASK_QUEUE_PREFIX", default="test-")
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUE_PREFIX + "default"
