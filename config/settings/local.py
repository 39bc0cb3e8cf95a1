from .base import *  # noqa: F403
from .base import LOG_LEVEL, env, logging_settings

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-development-only-not-a-secret")
# Readable lines at a terminal (make run); LOG_FORMAT=json shows what production writes.
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING = logging_settings(LOG_FORMAT, LOG_LEVEL)
