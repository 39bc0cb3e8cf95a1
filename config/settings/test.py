from .base import *  # noqa: F403
from .base import BASE_DIR, env

SECRET_KEY = env("SECRET_KEY", default="test-only-not-a-secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = str(BASE_DIR / "var" / "test-media")
# Throttle counters live in the shared Redis cache and outlast a run: tests set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": {"user": "1000000/minute", "anon": "1000000/minute"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
