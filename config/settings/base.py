"""Settings shared by every environment; each value that differs comes from the environment."""

from pathlib import Path

import environ

from core.logs import logging_settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "core",
    "accounts",
    "audit",
    "entities",
    "cases",
    "shipments",
    "imports",
    "xref",
    "watchlists",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestContextMiddleware",
    "core.metrics.MetricsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/enforcement"),
}
if env("DATABASE_NAME", default=""):
    # Lets a worker started by the test suite use the suite's test database.
    DATABASES["default"]["NAME"] = env("DATABASE_NAME")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database that does not answer is a 503 after this many seconds (core.api.exceptions), never a hung request.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout",
                                                          env.int("DATABASE_CONNECT_TIMEOUT", default=5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.LockoutBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Sign-in lockout and API tokens (API.md § Authentication).
AUTH_LOCKOUT_THRESHOLD = env.int("AUTH_LOCKOUT_THRESHOLD", default=5)
AUTH_LOCKOUT_MINUTES = env.int("AUTH_LOCKOUT_MINUTES", default=30)
API_TOKEN_DAYS = env.int("API_TOKEN_DAYS", default=30)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))

# A JSON body larger than this is refused with 413 before it is parsed.
API_MAX_JSON_BODY = env.int("API_MAX_JSON_BODY", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_JSON_BODY

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON in: a form-encoded or multipart body is a 415. The two upload endpoints (imports, evidence) take
    # multipart on their create alone (`upload_parsers`); the browsable API's forms post JSON.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "core.api.filters.FilterBackend",  # django-filter's, every filterset made strict
        "core.api.filters.StableOrdering",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",  # every operation's real errors and ETag / If-Match
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttles.UserRateThrottle",  # counted in a window: one round trip per call
        "accounts.throttles.AnonRateThrottle",
    ],
    # A client is its REMOTE_ADDR, or the address the last TRUSTED_PROXY_COUNT proxies (yours, in front of the
    # web server) put in X-Forwarded-For: never an address the client wrote itself.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "DEFAULT_THROTTLE_RATES": {
        "user": env("THROTTLE_USER", default="100000/hour"),
        "anon": env("THROTTLE_ANON", default="1000/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Export-control enforcement case management API",
    "DESCRIPTION": (
        "Cases, parties, the master index and the audit trail of export-control "
        "investigations on strategic minerals. Authenticate with `Authorization: Token <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "`Token <key>`"},
        }
    },
    "SECURITY": [{"tokenAuth": []}],
    # A record answered where `fields`/`brief` may be given is the whole record or only what was asked for.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api.schema.selectable_responses"],
    # Enums that share a field name ("type") with another enum get a name of their own.
    "ENUM_NAME_OVERRIDES": {
        "RecordTypeEnum": "explore.graph.NODE_TYPES",  # search results and graph nodes
        "MatchStatusEnum": "xref.models.MatchStatus",  # a match's status and the decision that sets it
        "XrefRunStatusEnum": "xref.models.RunStatus",
    },
}

# Redis, and while Redis is away a local-memory cache in each process: no request fails because Redis does
# (throttle counts are then per process until it returns). CACHE_RETRY_SECONDS: how long to stay local.
CACHES = {
    "default": {
        "BACKEND": "core.cache.FallbackRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1},
    }
}
CACHE_RETRY_SECONDS = env.float("CACHE_RETRY_SECONDS", default=5)

# --- Celery (README § Workers) ---------------------------------------------------------------------------------
# Four queues, each task routed to one by its name (core.tasks.route): imports.* -> imports, xref.* -> xref,
# audit.* -> audit, everything else -> default. TASK_QUEUE_PREFIX is put before each queue's name, so that a
# worker (e.g. one a test starts) can consume its own copies of all four on a shared broker.
TASK_QUEUE_PREFIX = env("TASK_QUEUE_PREFIX", default="")
TASK_QUEUES = ("default", "imports", "xref", "audit")
TASK_QUEUE_OF = {"imports.": "imports", "xref.": "xref", "audit.": "audit"}  # name prefix -> queue
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2)
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False  # per task: True where a rerun is harmless (core.tasks)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUE_PREFIX + "default"
CELERY_TASK_ROUTES = ["core.tasks.route"]
# Limits every task has unless it sets its own (imports.run does: IMPORT_SOFT_TIME_LIMIT below).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("TASK_TIME_LIMIT", default=360)
# A pool process past this resident size (KiB) is replaced after its task: an import's memory goes back.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("WORKER_MAX_MEMORY_PER_CHILD", default=512 * 1024)
CELERY_BEAT_SCHEDULE = {
    "verify-audit-chains": {"task": "audit.verify_chains", "schedule": env.int("AUDIT_VERIFY_SECONDS", default=3600)},
    "resume-stale-imports": {"task": "imports.resume_stale", "schedule": 60},
    "resume-stale-xref-runs": {"task": "xref.resume_stale", "schedule": 60},
    "dispatch-outbox": {"task": "core.outbox.dispatch", "schedule": env.float("OUTBOX_DISPATCH_SECONDS", default=5)},
    "purge-idempotency-keys": {"task": "core.idempotency.purge",
                               "schedule": env.int("IDEMPOTENCY_PURGE_SECONDS", default=3600)},
}
# A POST's answer kept for a retry with the same Idempotency-Key (core.idempotency), this long.
IDEMPOTENCY_KEEP_HOURS = env.float("IDEMPOTENCY_KEEP_HOURS", default=24)

# The transactional outbox (core.outbox): work a write needs, sent after its commit; what the broker did not take
# then is sent by beat's core.outbox.dispatch, retried after OUTBOX_RETRY_SECONDS doubling up to the maximum.
OUTBOX_RETRY_SECONDS = env.float("OUTBOX_RETRY_SECONDS", default=2)
OUTBOX_RETRY_MAX_SECONDS = env.float("OUTBOX_RETRY_MAX_SECONDS", default=300)
OUTBOX_BATCH = env.int("OUTBOX_BATCH", default=500)
OUTBOX_KEEP_SENT_HOURS = env.float("OUTBOX_KEEP_SENT_HOURS", default=24)
# /readyz says a worker answered recently when one finished a task this many seconds ago or less (beat's outbox
# dispatch runs every few seconds, so a live worker always has).
WORKER_RECENT_SECONDS = env.int("WORKER_RECENT_SECONDS", default=60)

# Cross-referencing (xref; API.md § Cross-referencing). A pair scoring XREF_PROPOSE_THRESHOLD or more becomes a
# pending match; with XREF_AUTO_CONFIRM_THRESHOLD set (0-1), a pair scoring that or more is confirmed by itself
# (never, unless set). A blocking key shared by more than XREF_BLOCK_MAX_SIZE records, or by more than
# XREF_BLOCK_MAX_SHARE of an agency's records, stops being a block (a common surname, a mass-registration address);
# below that, an agency's keys are blocks from the rarest up while their pairs fit in XREF_PAIR_BUDGET (a small
# agency's records are compared more widely than a large one's, whose common keys would cost millions of pairs).
# A full run is split into XREF_RUN_PARTS tasks; writes are coalesced into tasks of XREF_BATCH records at most.
XREF_PROPOSE_THRESHOLD = env.float("XREF_PROPOSE_THRESHOLD", default=0.5)
XREF_AUTO_CONFIRM_THRESHOLD = env.float("XREF_AUTO_CONFIRM_THRESHOLD", default=None)
XREF_BLOCK_MAX_SIZE = env.int("XREF_BLOCK_MAX_SIZE", default=1000)
XREF_BLOCK_MAX_SHARE = env.float("XREF_BLOCK_MAX_SHARE", default=0.3)
XREF_PAIR_BUDGET = env.int("XREF_PAIR_BUDGET", default=1_500_000)
XREF_RUN_PARTS = env.int("XREF_RUN_PARTS", default=16)
XREF_BATCH = env.int("XREF_BATCH", default=2000)
# The limits of a full run's tasks (xref.run indexes the agency's records, each xref.run_part scores a part).
XREF_RUN_SOFT_TIME_LIMIT = env.int("XREF_RUN_SOFT_TIME_LIMIT", default=1800)
XREF_RUN_TIME_LIMIT = env.int("XREF_RUN_TIME_LIMIT", default=1900)
# A queued or running run whose worker was silent this long (no batch done) is sent again (xref.resume_stale):
# longer than any one step (a part's candidate query, the model's training) takes, or a live step is doubled.
XREF_RUN_STALE_SECONDS = env.int("XREF_RUN_STALE_SECONDS", default=900)

# Red-flag rules (alerts.redflags; API.md § Alerts). An export is a shipment whose origin is one of
# ALERT_EXPORT_COUNTRIES (empty: any origin). A transit through one of ALERT_TRANSIT_HUBS is high severity. A
# declared unit value below ALERT_VALUE_RATIO times the commodity's reference value per kg is a value anomaly; one
# outside [reference / ALERT_DECLARED_VALUE_FACTOR, reference * ALERT_DECLARED_VALUE_FACTOR] of the commodity
# the declared HS code names is implausible for that code. A company incorporated less than ALERT_NEW_COMPANY_DAYS
# before its first shipment is new. Case parties of ALERT_SUSPECT_ROLES are the suspects the shared_* rules look
# for. Evaluation goes ALERT_BATCH subjects a transaction; a full pass is split into ALERT_RUN_PARTS tasks.
ALERT_EXPORT_COUNTRIES = env.list("ALERT_EXPORT_COUNTRIES", default=["CN"])
ALERT_TRANSIT_HUBS = env.list("ALERT_TRANSIT_HUBS", default=["VN", "TH", "MY", "SG", "AE", "HK"])
ALERT_VALUE_RATIO = env.float("ALERT_VALUE_RATIO", default=0.3)
ALERT_DECLARED_VALUE_FACTOR = env.float("ALERT_DECLARED_VALUE_FACTOR", default=5.0)
ALERT_NEW_COMPANY_DAYS = env.int("ALERT_NEW_COMPANY_DAYS", default=180)
ALERT_SUSPECT_ROLES = env.list("ALERT_SUSPECT_ROLES", default=[
    "ringleader", "suspect", "financier", "organiser", "courier", "facilitator"])
ALERT_BATCH = env.int("ALERT_BATCH", default=2000)
ALERT_RUN_PARTS = env.int("ALERT_RUN_PARTS", default=16)

# Evidence files (API.md § Cases, nested `evidence`): an upload over this many bytes is a 413 and nothing of it is
# kept. Uploads stream to a temporary file (FILE_UPLOAD_TEMP_DIR, the system's by default) while they are hashed.
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", default=50 * 1024 * 1024)
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
# An XLSX (a zip) whose members inflate past this many bytes fails before it is parsed, and so does one whose parts
# other than its worksheets (the shared strings above all: the reader holds them whole, at about 8 times their
# size) inflate past the second limit; a file (any format) with more data rows than IMPORT_MAX_ROWS fails before
# anything of it is written.
IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = env.int("IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES", default=128 * 1024 * 1024)
IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES = env.int("IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES", default=16 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=2_000_000)
# An import job whose heartbeat (written every batch) is older than this has lost its worker: a new delivery of
# imports.run takes it over, and beat's imports.resume_stale re-enqueues it (and a job queued this long).
IMPORT_HEARTBEAT_STALE_SECONDS = env.int("IMPORT_HEARTBEAT_STALE_SECONDS", default=300)
# imports.run's own limits (a job may take long; a resumed one carries on after its last committed batch).
IMPORT_SOFT_TIME_LIMIT = env.int("IMPORT_SOFT_TIME_LIMIT", default=3 * 3600)
IMPORT_TIME_LIMIT = env.int("IMPORT_TIME_LIMIT", default=3 * 3600 + 300)

# --- Object storage for uploads (README § Deploying with Docker) ---------------------------------------------------
# Import files and evidence are kept by the `default` storage. STORAGE_BACKEND=local (the default: `make run`, the
# tests) keeps them under MEDIA_ROOT, which only the host that wrote them can read. STORAGE_BACKEND=s3 keeps them in
# an S3-compatible bucket (AWS S3, MinIO, SeaweedFS) through django-storages, so that a worker on any host reads
# the import a web host received: the AWS_* variables below are the bucket's, under django-storages' names. A name
# already taken gets a random suffix (never overwritten: two uploads named alike stay two files). A file read from
# the bucket is copied, streaming, to a temporary file (in memory up to AWS_S3_MAX_MEMORY_SIZE bytes, on disk past
# it) so that the readers can seek in it; an evidence download streams the object's body to the client as it comes.
STORAGE_BACKEND = env("STORAGE_BACKEND", default="local")
if STORAGE_BACKEND not in ("local", "s3"):
    raise environ.ImproperlyConfigured(f"STORAGE_BACKEND is 'local' or 's3', not {STORAGE_BACKEND!r}.")
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"} if STORAGE_BACKEND == "local" else {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),  # unset: AWS itself
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            # Unset: boto3's own chain (an instance or task role, a profile).
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default="path"),  # what MinIO and SeaweedFS take
            "signature_version": "s3v4",
            "location": env("AWS_LOCATION", default=""),  # a key prefix inside the bucket
            "file_overwrite": False,
            "default_acl": None,  # the bucket's policy decides; no object is made public
            "max_memory_size": env.int("AWS_S3_MAX_MEMORY_SIZE", default=8 * 1024 * 1024),
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}



# --- Security of a deployment (README § Security of a deployment) --------------------------------------------------
# Sign-in attempts per client address (AUTH_RATE: "10/minute", "100/hour"), whichever door they come through:
# POST /api/v1/auth/tokens/, the admin's and the browsable API's login forms share one count, kept in the shared
# cache so every web process and host counts together. Past it the answer is 429 and no password is checked, so a
# spray from one address meets 429 long before it can lock other people's accounts (AUTH_LOCKOUT_THRESHOLD). The
# address is the throttles' (REMOTE_ADDR, or X-Forwarded-For as TRUSTED_PROXY_COUNT says), never one a client wrote.
AUTH_RATE = env("AUTH_RATE", default="10/minute")
MIDDLEWARE = [*MIDDLEWARE, "accounts.middleware.SignInRateLimitMiddleware"]
# Paths (regular expressions, without the leading slash) answered over plain HTTP even with SECURE_SSL_REDIRECT on:
# container healthchecks and metrics scrapers call them on the container's own loopback (production.py).
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^healthz$", r"^readyz$", r"^metrics$"])



# --- Audit checkpoints (README § Audit trail) ----------------------------------------------------------------------
# Beat writes a checkpoint of every chain whose head moved (audit.checkpoint, every AUDIT_CHECKPOINT_SECONDS), signed
# with an Ed25519 private key the database never holds: a PEM or raw key in AUDIT_CHECKPOINT_KEY_FILE, or its 32 bytes
# base64 in AUDIT_CHECKPOINT_KEY (`manage.py audit_keygen PATH` makes one). Without a key nothing is signed and
# verification says so. Signatures are verified with AUDIT_CHECKPOINT_PUBLIC_KEYS (base64, comma-separated: keep
# retired keys listed after a rotation) and the private key's own public key. Each checkpoint is also appended as
# a JSON line to AUDIT_CHECKPOINT_EXPORT_FILE (when set) and logged (logger "audit.checkpoint"). /audit/verify/
# rehashes at most AUDIT_VERIFY_MAX_EVENTS events after the latest signed checkpoint (README § Audit trail).
AUDIT_CHECKPOINT_KEY_FILE = env("AUDIT_CHECKPOINT_KEY_FILE", default="")
AUDIT_CHECKPOINT_KEY = env("AUDIT_CHECKPOINT_KEY", default="")
AUDIT_CHECKPOINT_PUBLIC_KEYS = env.list("AUDIT_CHECKPOINT_PUBLIC_KEYS", default=[])
AUDIT_CHECKPOINT_EXPORT_FILE = env("AUDIT_CHECKPOINT_EXPORT_FILE", default="")
AUDIT_CHECKPOINT_SECONDS = env.int("AUDIT_CHECKPOINT_SECONDS", default=300)
AUDIT_VERIFY_MAX_EVENTS = env.int("AUDIT_VERIFY_MAX_EVENTS", default=20_000)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {"task": "audit.checkpoint", "schedule": AUDIT_CHECKPOINT_SECONDS}



# --- Logs and metrics (README § Logs and metrics) ------------------------------------------------------------------
# Every log line of the web processes, workers and beat is one JSON object with its request id, user and agency
# (and a worker's task and job), through one formatter (core.logs); LOG_FORMAT=console prints readable lines
# instead (make run's default). Celery leaves logging to this configuration (config/celery.py).
# Metrics: /metrics (core.metrics); under gunicorn PROMETHEUS_MULTIPROC_DIR adds up its workers (config/gunicorn.py).
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING_CONFIG = "core.logs.configure"
LOGGING = logging_settings(LOG_FORMAT, LOG_LEVEL)
# Swagger UI and Redoc from this server's static files (drf-spectacular-sidecar), never a CDN: the docs work on a
# network without the Internet. Swagger UI's validator badge would call out, so it is off.
INSTALLED_APPS += ["drf_spectacular_sidecar"]
SPECTACULAR_SETTINGS.update({
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
})
