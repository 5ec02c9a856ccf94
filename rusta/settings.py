"""Rusta's one settings file: every knob is read from the environment through rusta.env helpers."""
from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from rusta.env import EnvError, envbool, envchoice, envfloat, envint, envlist, envstr
from rusta.instance import instance_dir

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded default keeps its database and generated secret key, and each gateway instance its own state
# (INSTANCE_DIR below); never committed.
# Empty counts as unset: `RUSTA_VAR_DIR=` (a compose file's `${RUSTA_VAR_DIR:-}`) must not mean the current folder.
VAR_DIR = Path(envstr("RUSTA_VAR_DIR") or BASE_DIR / "var")


def _secret_key() -> str:
    configured = envstr("RUSTA_SECRET_KEY")
    if configured:
        return configured
    # The embedded default makes one key and keeps it, so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("RUSTA_DEBUG", False)
ALLOWED_HOSTS = envlist("RUSTA_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = envlist("RUSTA_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc for /api/docs/, served as static files (no CDN)
    "django_prometheus",
    "channels",
    "routes",
    "metrics",
    "rusta",  # the process wiring: runproxy, rundns, ensureadmin and the rusta.E00x checks
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "rusta.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "metrics.context_processors.background",  # the admin's banner while background work is missing
            ],
        },
    },
]
ASGI_APPLICATION = "rusta.asgi.admin_application"

# --- Storage -------------------------------------------------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'rusta.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the admin write while every gateway worker reads; IMMEDIATE avoids upgrade deadlocks.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not memory, so that gateway processes started by the tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_rusta.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# This gateway instance's own state, apart from any other started from the same checkout with another database:
# the workers' metrics files (metrics.procfiles), the embedded broker's folders and beat's schedule.
INSTANCE_DIR = instance_dir(VAR_DIR, DATABASE_URL)

REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery: Redis when configured, otherwise a broker on the local disk (no server needed) ----------------
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost/")
# True when background work goes through the folders below; `runproxy` then runs a worker itself by default.
RUSTA_EMBEDDED_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if RUSTA_EMBEDDED_BROKER:
    CELERY_BROKER_TRANSPORT = "rusta.broker:Transport"  # kombu's filesystem transport, messages written atomically
    _CELERY_DIR = INSTANCE_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_CELERY_DIR / "queue"),
        "data_folder_out": str(_CELERY_DIR / "queue"),
        "processed_folder": str(_CELERY_DIR / "processed"),
        "control_folder": str(_CELERY_DIR / "control"),  # kombu's default is a "control" folder in the cwd
        "store_processed": False,
        "polling_interval": 0.1,  # a listdir ten times a second; the default 1 s would delay each task by up to 1 s
    }
    # kombu does not create them, and a worker without them fails on its first poll.
    for _folder in ("queue", "processed", "control"):
        (_CELERY_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(INSTANCE_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "run-health-checks": {
        "task": "metrics.run_health_checks",
        "schedule": 1.0,  # each run probes only the backends whose route's interval has passed
        # A tick still queued after 5 s (a worker busy with slow probes, or stopped) is dropped, not piled up.
        "options": {"expires": 5},
    },
    # Ingest closed 10-second buckets from Redis and fill the 1 min / 5 min / 1 h / 1 d series (idempotent).
    "rollup-metrics": {"task": "metrics.rollup", "schedule": 10.0, "options": {"expires": 10}},
    "apply-metrics-retention": {"task": "metrics.apply_retention", "schedule": 600.0, "options": {"expires": 300}},
}
# --- Adaptive limits (metrics.abuse): the detection task's schedule and limits ------------------------------
# Seconds between two runs of the detection (metrics.detect_abuse): a verdict is recorded within about two of them.
RUSTA_ABUSE_INTERVAL_S = envfloat("RUSTA_ABUSE_INTERVAL_S", 10.0)
# How much history the baselines use (seconds); client windows older than this are deleted by each run.
RUSTA_ABUSE_BASELINE_S = envfloat("RUSTA_ABUSE_BASELINE_S", 3600.0)
# A run stops (and logs the routes it left) once it has worked this long (seconds).
RUSTA_ABUSE_BUDGET_S = envfloat("RUSTA_ABUSE_BUDGET_S", 8.0)
# Each route's isolation forest is retrained once it is this old (seconds).
RUSTA_ABUSE_RETRAIN_S = envfloat("RUSTA_ABUSE_RETRAIN_S", 600.0)
for _name, _value in (("RUSTA_ABUSE_INTERVAL_S", RUSTA_ABUSE_INTERVAL_S),
                      ("RUSTA_ABUSE_BASELINE_S", RUSTA_ABUSE_BASELINE_S),
                      ("RUSTA_ABUSE_BUDGET_S", RUSTA_ABUSE_BUDGET_S), ("RUSTA_ABUSE_RETRAIN_S", RUSTA_ABUSE_RETRAIN_S)):
    if _value <= 0:
        raise EnvError(f"{_name} must be a positive number of seconds, not {_value}")
CELERY_BEAT_SCHEDULE["detect-abuse"] = {"task": "metrics.detect_abuse", "schedule": RUSTA_ABUSE_INTERVAL_S,
                                        "options": {"expires": RUSTA_ABUSE_INTERVAL_S}}
if REDIS_URL:
    # LLM token limits and budgets of a day or longer, copied from Redis to the database (metrics.llm_spend); on
    # the embedded default each gateway process writes its own counters.
    CELERY_BEAT_SCHEDULE["persist-llm-spend"] = {"task": "metrics.persist_llm_spend", "schedule": 10.0,
                                                 "options": {"expires": 10}}
# The log level of the Celery worker `runproxy` starts; INFO would log two lines per health-check tick.
RUSTA_BACKGROUND_LOG_LEVEL = envstr("RUSTA_BACKGROUND_LOG_LEVEL", "WARNING")
# Every task run records when it ran (metrics.background); after this many seconds without one, /health and /ready
# say "degraded" and the admin shows a banner. Three rollup intervals: one late tick is not an alarm.
RUSTA_BACKGROUND_STALE_AFTER = envfloat("RUSTA_BACKGROUND_STALE_AFTER", 30.0)

# --- Auth and the management API -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# ModelBackend plus the roles: staff users in no Rusta group get the viewer's permissions (routes.roles).
AUTHENTICATION_BACKENDS = ["routes.roles.RoleBackend"]
REST_FRAMEWORK = {
    # The first class's challenge answers a call without credentials: 401 with `WWW-Authenticate: Token`.
    # Not Basic: a browser whose admin session expired would pop up a password dialog over the dashboard.
    # Otherwise the order only picks the winner when a call carries two kinds; session writes still need CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "routes.api.error_handlers.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rusta management API",
    "DESCRIPTION": "Configure routes and backends of the Rusta API gateway.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API reference's pages load their scripts, styles and icon from the sidecar package's static files, served
    # by the admin listener itself: an operator's browser never fetches them from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # drf-spectacular's deepLinking kept (this dict replaces its default); no validator badge, which a layout that
    # shows it would load from validator.swagger.io with our schema's URL.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": envstr("RUSTA_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- The gateway (data plane) --------------------------------------------------------------------------
# How often each gateway process checks whether the configuration changed (seconds).
RUSTA_RELOAD_INTERVAL = envfloat("RUSTA_RELOAD_INTERVAL", 0.5)
# How long SIGTERM waits for requests in flight before closing connections (seconds).
RUSTA_SHUTDOWN_GRACE = envfloat("RUSTA_SHUTDOWN_GRACE", 20.0)
# Peers whose X-Forwarded-For is trusted (addresses or CIDR ranges).
RUSTA_TRUSTED_PROXIES = envlist("RUSTA_TRUSTED_PROXIES", [])
# Upstream connections kept alive per backend and per worker.
RUSTA_UPSTREAM_POOL_SIZE = envint("RUSTA_UPSTREAM_POOL_SIZE", 256)
# The proxy listener's hostile-input limits (protocols.http.listener): seconds for a request head to arrive, seconds
# a request body may stall, connections one client address may hold per worker (0: no cap; peers in
# RUSTA_TRUSTED_PROXIES are exempt), and what happens to request fields whose name has an underscore.
RUSTA_CLIENT_HEADER_TIMEOUT = envfloat("RUSTA_CLIENT_HEADER_TIMEOUT", 10.0)
RUSTA_CLIENT_BODY_TIMEOUT = envfloat("RUSTA_CLIENT_BODY_TIMEOUT", 60.0)
RUSTA_MAX_CONNECTIONS_PER_CLIENT = envint("RUSTA_MAX_CONNECTIONS_PER_CLIENT", 256)
RUSTA_UNDERSCORE_HEADERS = envchoice("RUSTA_UNDERSCORE_HEADERS", "drop", ("drop", "reject", "allow"))
# HTTP/2 on the proxy listener (protocols.http.h2): streams one connection may have in progress, and the request
# body bytes one stream may have in flight before the gateway reads them (the connection's window is four times it).
RUSTA_H2_MAX_STREAMS = envint("RUSTA_H2_MAX_STREAMS", 128)
RUSTA_H2_WINDOW_BYTES = envint("RUSTA_H2_WINDOW_BYTES", 65536)
# Write one JSON access-log line per request on stdout.
RUSTA_ACCESS_LOG = envbool("RUSTA_ACCESS_LOG", True)
# The database stops counting as reachable for /ready after this long without a successful check (seconds).
RUSTA_READY_STALE_AFTER = envfloat("RUSTA_READY_STALE_AFTER", 10.0)
# Health probes and health state changes kept per backend (older ones are deleted as new ones arrive).
RUSTA_HEALTH_HISTORY = envint("RUSTA_HEALTH_HISTORY", 100)
# Backends (and JWKS URLs) at link-local or cloud metadata addresses (169.254.0.0/16, fe80::/10,
# metadata.google.internal, ...) are refused unless this is true: they would let a configuration change read the
# host's cloud credentials through the gateway.
RUSTA_ALLOW_LINK_LOCAL_BACKENDS = envbool("RUSTA_ALLOW_LINK_LOCAL_BACKENDS", False)
# The port in the Location of a route's HTTPS redirect (its tls block's redirect_http) when a load balancer
# publishes the TLS listener on another one; 0: the TLS listener's own port (443 when there is none).
RUSTA_TLS_REDIRECT_PORT = envint("RUSTA_TLS_REDIRECT_PORT", 0)
if not 0 <= RUSTA_TLS_REDIRECT_PORT <= 65535:
    raise EnvError(f"RUSTA_TLS_REDIRECT_PORT must be a port number (1 to 65535), not {RUSTA_TLS_REDIRECT_PORT}")

# --- Metrics ---------------------------------------------------------------------------------------------
# Count every proxied request for /metrics and the history; false swaps in a recorder that does nothing (the
# bench compares the two to show what recording costs).
RUSTA_METRICS_RECORD = envbool("RUSTA_METRICS_RECORD", True)
# Each gateway process writes its 10-second traffic points (Redis when configured, else the database).
RUSTA_METRICS_HISTORY = envbool("RUSTA_METRICS_HISTORY", True)
# Seconds between those writes (off the request path).
RUSTA_METRICS_FLUSH_INTERVAL = envfloat("RUSTA_METRICS_FLUSH_INTERVAL", 2.0)
# Routes with an `abuse` block: each gateway process counts what every client does per window of this many
# seconds (aligned on the clock) and writes the windows as ClientWindow rows; at most RUSTA_ABUSE_MAX_CLIENTS
# (route, client) pairs per process and window, the rest counted under the client `overflow`.
RUSTA_ABUSE_WINDOW_S = envint("RUSTA_ABUSE_WINDOW_S", 10)
if not 1 <= RUSTA_ABUSE_WINDOW_S <= 3600:
    raise EnvError(f"RUSTA_ABUSE_WINDOW_S must be a number of seconds from 1 to 3600, not {RUSTA_ABUSE_WINDOW_S}")
RUSTA_ABUSE_MAX_CLIENTS = envint("RUSTA_ABUSE_MAX_CLIENTS", 50000)
if RUSTA_ABUSE_MAX_CLIENTS < 1:
    raise EnvError(f"RUSTA_ABUSE_MAX_CLIENTS must be at least 1, not {RUSTA_ABUSE_MAX_CLIENTS}")
# /metrics on the admin listener is open, as Kong's Status API is, so Prometheus scrapes it without setup; with a
# token set (or RUSTA_METRICS_TOKEN_FILE), it needs `Authorization: Bearer <token>` (or Basic, token as password).
RUSTA_METRICS_TOKEN = envstr("RUSTA_METRICS_TOKEN")
# Advice (metrics.advice): the requests per second one gateway worker serves, for the capacity forecast's worker
# count; 0 measures it from the workers' own figures (requests over CPU seconds).
RUSTA_WORKER_CAPACITY_RPS = envfloat("RUSTA_WORKER_CAPACITY_RPS", 0.0)
if RUSTA_WORKER_CAPACITY_RPS < 0:
    raise EnvError(f"RUSTA_WORKER_CAPACITY_RPS must be 0 (measure it) or above, not {RUSTA_WORKER_CAPACITY_RPS}")
# How long the advice waits for the gateway-wide `ai` LLM to phrase its findings (all of them, at once) before
# using its own templates; and how long a phrasing is kept per finding.
RUSTA_ADVICE_LLM_BUDGET_MS = envint("RUSTA_ADVICE_LLM_BUDGET_MS", 5000)
if not 1 <= RUSTA_ADVICE_LLM_BUDGET_MS <= 60_000:
    raise EnvError(f"RUSTA_ADVICE_LLM_BUDGET_MS must be from 1 to 60000, not {RUSTA_ADVICE_LLM_BUDGET_MS}")
RUSTA_ADVICE_LLM_CACHE_S = envint("RUSTA_ADVICE_LLM_CACHE_S", 3600)
# The dashboard's chart library, installed from the npm registry by `make vendor` (never committed).
RUSTA_STATIC_VENDOR_DIR = Path(envstr("RUSTA_STATIC_VENDOR_DIR", str(BASE_DIR / "var" / "static-vendor")))
UPLOT_DIST = RUSTA_STATIC_VENDOR_DIR / "node_modules" / "uplot" / "dist"
STATICFILES_DIRS = [("vendor/uplot", UPLOT_DIST)] if UPLOT_DIST.is_dir() else []
