"""Settings shared by every environment; each external part is one variable with a default."""

import contextlib
import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.telemetry.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-change-me-" + "x" * 32)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Origins a browser may open a cookie-authenticated websocket from; empty means same host only.
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[])
# Load balancers or reverse proxies (addresses or CIDRs) whose X-Forwarded-For and
# X-Forwarded-Proto are believed, by uvicorn (`manage.py serve`) and by the per-address
# throttle. Empty: no forwarded header is believed and the peer is the client.
try:
    TRUSTED_PROXIES = [str(ipaddress.ip_network(proxy.strip(), strict=False))
                       for proxy in env.list("TRUSTED_PROXIES", default=[]) if proxy.strip()]
except ValueError as exc:  # a typo fails at start, not at the first anonymous request
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from exc
# Where clients reach the platform (scheme, host, port): every link the API returns is built on
# it, never on the request's Host header.
PUBLIC_URL = env.str("PUBLIC_URL", default=f"http://localhost:{env.int('PORT', default=8000)}"
                     ).rstrip("/")
# Failed sign-ins per account (normalised email), whatever address they come from: this many
# within SIGNIN_LOCKOUT_S locks the email for the rest of that window (429 with Retry-After).
SIGNIN_FAILURE_LIMIT = env.int("SIGNIN_FAILURE_LIMIT", default=10)
SIGNIN_LOCKOUT_S = env.int("SIGNIN_LOCKOUT_S", default=900)
# Where SECURE_SSL_REDIRECT is on (production), load balancers and the container's health check
# still reach the health route over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "eventlog",
    "accounts",
    "billing",
    "datasets",
    "modelregistry",
    "tasks",
    "evaluation",
    "tasklogs",
    "serving",
    "console",
]

MIDDLEWARE = [
    # /livez, /readyz, /metrics: answered first, so no host check, HTTPS redirect or throttle
    # stands between a probe (kubelet names the pod IP as Host) and its answer.
    "core.telemetry.probes.ProbeMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.telemetry.web.TelemetryMiddleware",  # metrics by route template; ids for the logs
    "core.middleware.RequestSizeLimitMiddleware",
    "core.crashes.ApiCrashMiddleware",  # a crash under /api/: the error shape, even with DEBUG
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # X-Frame-Options: DENY (the console is never framed: clickjacking). Sync and async.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, not second: WhiteNoise is sync-only, and above the others it switched the
    # chain between async and sync once per middleware under ASGI (a thread hop each; about
    # 3-6 ms of CPU a request in bench/serving.py). Static files pass the lazy middlewares.
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]


def database_from_env(url: str) -> dict:
    """Parse a database URL and apply the options each vendor needs for the event log."""
    db = environ.Env.db_url_config(url)
    # Connections outlive a request: opening one costs a round trip (PostgreSQL) or the
    # registration of Django's SQL functions (SQLite, about 1 ms), and threads that live on,
    # like the prediction gateway's, keep theirs.
    db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # BEGIN IMMEDIATE serialises writers, which is what keeps SQLite appends gap-free.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        db["CONN_HEALTH_CHECKS"] = True
        # Django turns psycopg's prepared statements off (threshold None). A huge threshold
        # keeps the ORM unprepared but lets the event-log append prepare its one hot statement
        # (prepare=True). Behind PgBouncer in transaction mode it needs max_prepared_statements.
        threshold = env.str("DATABASE_PREPARE_THRESHOLD", default=str(1 << 30))
        db["OPTIONS"] = {"prepare_threshold": None if threshold == "off" else int(threshold)}
        # One bounded pool per process (psycopg_pool through Django): every thread borrows a
        # connection and returns it when its request or job ends, so a process never holds more
        # than DATABASE_POOL_MAX_SIZE however many threads it runs (under ASGI, one a request).
        # A thread that finds the pool empty waits up to DATABASE_POOL_TIMEOUT_S, then the API
        # answers 503 with Retry-After. Connections idle for DATABASE_POOL_MAX_IDLE_S are closed
        # down to DATABASE_POOL_MIN_SIZE. 0 turns the pool off (then CONN_MAX_AGE applies).
        pool_max = env.int("DATABASE_POOL_MAX_SIZE", default=10)
        if pool_max > 0:
            db["CONN_MAX_AGE"] = 0  # with a pool, "closing" returns the connection to it
            db["OPTIONS"]["pool"] = {
                "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=2), pool_max),
                "max_size": pool_max,
                "timeout": env.float("DATABASE_POOL_TIMEOUT_S", default=10.0),
                "max_idle": env.float("DATABASE_POOL_MAX_IDLE_S", default=60.0),
            }
    return db


DATABASES = {
    "default": database_from_env(
        env.str("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# Collected files (console, API docs) belong to the install, not to DATA_DIR: the image collects
# them at build time, and scratch space mounted over DATA_DIR must not hide them.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))).resolve()
with contextlib.suppress(OSError):  # a read-only install keeps what the build collected
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
# WhiteNoise serves static files (the API docs' assets) from the app itself; without a
# collectstatic run (make run, tests) it finds them in the installed apps.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# Channel layer: Redis in production, in-memory (single process) by default.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# dramatiq: RabbitMQ or Redis URL in production; empty runs an in-process worker.
DRAMATIQ_BROKER_URL = env.str("DRAMATIQ_BROKER_URL", default="")
INPROCESS_WORKER = env.bool("INPROCESS_WORKER", default=not DRAMATIQ_BROKER_URL)
# Each running service instance holds a thread: 4 leaves room for training beside one service.
WORKER_THREADS = env.int("WORKER_THREADS", default=4)

# Object storage: S3 when a bucket is named, local disk under DATA_DIR otherwise.
S3_BUCKET = env.str("S3_BUCKET", default="")
if S3_BUCKET:
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": env.str("S3_ENDPOINT_URL", default="") or None,
                "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
                "querystring_expire": env.int("S3_SIGNED_URL_TTL_S", default=300),
                "file_overwrite": False,
                "signature_version": "s3v4",  # AWS retired SigV2 signed URLs
                # "path" for servers reached by a plain hostname (compose's seaweedfs:8333),
                # where bucket.host would not resolve; empty lets boto3 choose.
                "addressing_style": env.str("S3_ADDRESSING_STYLE", default="") or None,
            },
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(DATA_DIR / "media")},
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# Where Checkout sends the payer back (the web console's wallet page).
# Empty (as platform/env.template ships them) means the default, built on PUBLIC_URL.
STRIPE_SUCCESS_URL = (env.str("STRIPE_SUCCESS_URL", default="")
                      or f"{PUBLIC_URL}/console/billing/?topup=success")
STRIPE_CANCEL_URL = (env.str("STRIPE_CANCEL_URL", default="")
                     or f"{PUBLIC_URL}/console/billing/?topup=cancelled")

# Billing: the wallets' currency, how often running usage is settled, and how long a running
# resource may go without a heartbeat before the scheduler settles it as vanished.
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="USD")
BILLING_SETTLE_INTERVAL_S = env.int("BILLING_SETTLE_INTERVAL_S", default=300)
BILLING_LEASE_TIMEOUT_S = env.int("BILLING_LEASE_TIMEOUT_S", default=900)
BILLING_MIN_TOPUP = env.int("BILLING_MIN_TOPUP", default=500)
BILLING_MAX_TOPUP = env.int("BILLING_MAX_TOPUP", default=10_000_000)

# Dataset uploads: limits that refuse zip bombs before anything is stored.
DATASET_MAX_UNCOMPRESSED_BYTES = env.int("DATASET_MAX_UNCOMPRESSED_BYTES", default=4 * 1024**3)
DATASET_MAX_RATIO = env.float("DATASET_MAX_RATIO", default=200.0)
DATASET_MAX_FILES = env.int("DATASET_MAX_FILES", default=200_000)

# Training tasks: device of the workers (training, gpu-spec evaluations, service instances:
# "cuda", "cpu"; "auto" picks CUDA when present; training_runtime.device.pick_device),
# worker heartbeats, how long without one means the worker died, retries of a lost attempt,
# and how often progress events may be written per task.
TASK_DEVICE = env.str("TASK_DEVICE", default="auto")
TASK_HEARTBEAT_S = env.float("TASK_HEARTBEAT_S", default=10.0)
TASK_STOP_POLL_S = env.float("TASK_STOP_POLL_S", default=0.5)
TASK_LEASE_TIMEOUT_S = env.int("TASK_LEASE_TIMEOUT_S", default=120)
TASK_LEASE_CHECK_INTERVAL_S = env.float("TASK_LEASE_CHECK_INTERVAL_S", default=30.0)
TASK_MAX_ATTEMPTS = env.int("TASK_MAX_ATTEMPTS", default=3)
TASK_PROGRESS_INTERVAL_S = env.float("TASK_PROGRESS_INTERVAL_S", default=1.0)
# Recovery after a crash (core.recovery): how often the scheduler looks for queued or running
# work that no live worker holds, and how long queued work waits after it was sent before it is
# sent again (duplicates are harmless: a job claims its work first). Validations and evaluations
# renew a lease every WORK_HEARTBEAT_S; one silent for WORK_LEASE_TIMEOUT_S is sent again.
RECOVERY_INTERVAL_S = env.float("RECOVERY_INTERVAL_S", default=30.0)
RECOVERY_REQUEUE_AFTER_S = env.float("RECOVERY_REQUEUE_AFTER_S", default=300.0)
WORK_HEARTBEAT_S = env.float("WORK_HEARTBEAT_S", default=10.0)
WORK_LEASE_TIMEOUT_S = env.float("WORK_LEASE_TIMEOUT_S", default=60.0)

# Training logs: lines older than this many days are purged hourly; TASK_LOGS_PERSIST also
# writes a task's log to object storage (logs/<tenant>/<task>.log.gz) when the task ends.
TASK_LOG_RETENTION_DAYS = env.int("TASK_LOG_RETENTION_DAYS", default=7)
TASK_LOGS_PERSIST = env.bool("TASK_LOGS_PERSIST", default=False)
# Every task that produces a model evaluates it on its test set (or hold-out split) afterwards.
TASK_AUTO_EVALUATE = env.bool("TASK_AUTO_EVALUATE", default=True)
# Prediction services: batching, queue limits, and how long a prediction may wait.
SERVING_TRANSPORT = env.str("SERVING_TRANSPORT", default="redis" if REDIS_URL else "memory")
SERVING_MAX_BATCH = env.int("SERVING_MAX_BATCH", default=16)
SERVING_BATCH_WINDOW_MS = env.float("SERVING_BATCH_WINDOW_MS", default=5.0)
SERVING_MAX_QUEUE = env.int("SERVING_MAX_QUEUE", default=64)  # waiting requests per instance
SERVING_REQUEST_TIMEOUT_S = env.float("SERVING_REQUEST_TIMEOUT_S", default=30.0)
SERVING_MAX_IMAGE_BYTES = env.int("SERVING_MAX_IMAGE_BYTES", default=10 * 1024 * 1024)
# Decoded size of a prediction image, read from its header: 50 MP takes a 48/50 MP camera's
# full-size photo (uploads for training allow Pillow's 89 MP; a prediction is resized anyway).
SERVING_MAX_IMAGE_PIXELS = env.int("SERVING_MAX_IMAGE_PIXELS", default=50_000_000)
SERVING_MAX_INSTANCES = env.int("SERVING_MAX_INSTANCES", default=4)
SERVING_ACCEPT_THREADS = env.int("SERVING_ACCEPT_THREADS", default=4)  # per web process
SERVING_MONITOR_FLUSH_S = env.float("SERVING_MONITOR_FLUSH_S", default=5.0)
SERVING_WATCHDOG_INTERVAL_S = env.float("SERVING_WATCHDOG_INTERVAL_S", default=30.0)
# Service instances renew a heartbeat every SERVING_INSTANCE_HEARTBEAT_S; one silent for
# SERVING_INSTANCE_TIMEOUT_S is lost: the watchdog (every SERVING_INSTANCE_CHECK_INTERVAL_S)
# starts it again, up to SERVING_INSTANCE_MAX_RESTARTS times a service, then fails the service.
SERVING_INSTANCE_HEARTBEAT_S = env.float("SERVING_INSTANCE_HEARTBEAT_S", default=5.0)
SERVING_INSTANCE_TIMEOUT_S = env.float("SERVING_INSTANCE_TIMEOUT_S", default=20.0)
SERVING_INSTANCE_CHECK_INTERVAL_S = env.float("SERVING_INSTANCE_CHECK_INTERVAL_S", default=5.0)
SERVING_INSTANCE_MAX_RESTARTS = env.int("SERVING_INSTANCE_MAX_RESTARTS", default=3)
# Evaluation image previews: signed links valid this long.
EVALUATION_PREVIEW_TTL_S = env.int("EVALUATION_PREVIEW_TTL_S", default=300)

# Request limits: JSON bodies are small; uploads have their own, larger ceiling.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=2 * 1024**3)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Live stream: a client further behind than this is told to resync over REST.
EVENTS_RESYNC_AFTER = env.int("EVENTS_RESYNC_AFTER", default=1000)
EVENTS_POLL_INTERVAL_S = env.float("EVENTS_POLL_INTERVAL_S", default=1.0)
# Whether the scheduler follows the policies (reactions such as the automatic evaluation) every
# EVENTS_POLL_INTERVAL_S; false holds the reactions in the log until a follower runs them.
EVENTLOG_POLICIES = env.bool("EVENTLOG_POLICIES", default=True)
# Failures in a row on one event before a policy records it as a dead letter and goes on.
EVENTLOG_POLICY_MAX_ATTEMPTS = env.int("EVENTLOG_POLICY_MAX_ATTEMPTS", default=5)
WS_TICKET_TTL_S = env.int("WS_TICKET_TTL_S", default=30)
# An open websocket checks its credential this often (and at once when a token is revoked or a
# member removed or given another role, in any web process).
WS_AUTH_RECHECK_S = env.float("WS_AUTH_RECHECK_S", default=5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.TokenRateThrottle",
        "core.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_RATE", default="1200/min"),
        "anon": env.str("ANON_THROTTLE_RATE", default="60/min"),
    },
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    # drf-spectacular's AutoSchema, plus each operation's refusals from core.errors
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ErrorCodeSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",  # DRF's, with the nesting of a body bounded
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AutoML platform API",
    "DESCRIPTION": "Tenants, projects, the event log and its live stream, billing, training.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: a self-hosted install must not need a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A spec's kind and an evaluation's device are the same choice: one schema name for both.
    "ENUM_NAME_OVERRIDES": {"ComputeKindEnum": ["cpu", "gpu"]},
    # The error codes (core.errors) as components: ErrorCode lists them all, Error the shape.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "core.openapi.add_error_components"],
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    # Throttle counters must be shared by every web process.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json" in production: one JSON object a line, with the request, tenant and job ids
# (core.telemetry.logcontext); "text" for `make run`.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)

# Readiness (/readyz, /api/v1/health/): each check's time limit, and how long verdicts are kept.
READINESS_CHECK_TIMEOUT_S = env.float("READINESS_CHECK_TIMEOUT_S", default=2.0)
READINESS_CACHE_S = env.float("READINESS_CACHE_S", default=1.0)
# /metrics: served to these addresses (the client's, X-Forwarded-For only from TRUSTED_PROXIES)
# or to a caller sending METRICS_BEARER_TOKEN as a Bearer token.
_metrics_cidrs = env.list("METRICS_ALLOWED_CIDRS", default=[])  # empty: the defaults below
try:
    METRICS_ALLOWED_CIDRS = [str(ipaddress.ip_network(cidr.strip(), strict=False))
                             for cidr in _metrics_cidrs if cidr.strip()] or [
        "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_CIDRS: {exc}") from exc
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# Traces (OTLP over HTTP) when an endpoint is set; errors to Sentry when a DSN is set.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="automl-platform")
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
