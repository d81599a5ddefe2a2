"""Agent Studio settings: one module, read from the environment (see README "Configuration").

Embedded mode (no DATABASE_URL / REDIS_URL): SQLite, in-memory channel layer and Celery
broker, keys generated once into the data directory. Production mode: PostgreSQL, Redis for
Channels and Celery, and SECRET_KEY / INTERNAL_API_KEY must be given.
"""

from __future__ import annotations

import json
import os
import sys
import zoneinfo
from datetime import timedelta
from pathlib import Path

from agent_runtime import protocol
from studio.dburl import database_from_url
from studio.env import (
    ConfigError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
)
from studio.local_keys import install_id_from, load_or_create_local_keys

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("STUDIO_DATA_DIR", str(BASE_DIR / "data"))).resolve()

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not DATABASE_URL and not REDIS_URL
TESTING = "pytest" in sys.modules

# Off unless asked for, in both modes: Django's debug pages show settings, SQL and source to
# anyone who makes a request fail. Embedded mode serves its pages the same either way.
DEBUG = env_bool("DEBUG", default=False)

if EMBEDDED:
    _local = load_or_create_local_keys(DATA_DIR / "local-keys.json")
    SECRET_KEY = env_str("SECRET_KEY") or _local["SECRET_KEY"]
    INTERNAL_API_KEY = env_str("INTERNAL_API_KEY") or _local["INTERNAL_API_KEY"]
    STUDIO_INSTALL_ID = env_str("STUDIO_INSTALL_ID") or _local["STUDIO_INSTALL_ID"]
else:
    SECRET_KEY = env_str("SECRET_KEY")
    INTERNAL_API_KEY = env_str("INTERNAL_API_KEY")
    missing = [n for n in ("SECRET_KEY", "INTERNAL_API_KEY") if not globals()[n]]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} must be set in production mode "
            "(DATABASE_URL or REDIS_URL is set)."
        )
    if len(SECRET_KEY) < 50:
        raise ConfigError("SECRET_KEY must be at least 50 characters long.")
    # Which provider sandboxes are this install's (E2B metadata `install_id`): reconcile kills
    # only those. Unset, it is derived from INTERNAL_API_KEY, which is stable for the life of
    # an install; two installs sharing one E2B team must not share that key (or set this).
    STUDIO_INSTALL_ID = env_str("STUDIO_INSTALL_ID") or install_id_from(INTERNAL_API_KEY)

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if EMBEDDED else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "studio",
    "agents",
    "sandboxes",
    "logs",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(DATA_DIR / "studio.sqlite3")),
            # WAL lets the web threads read while the worker writes; the busy timeout
            # waits out a writer instead of failing with "database is locked".
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not :memory:, so servers the tests start in other processes share it;
            # one per test run, so two runs on one checkout do not trample each other.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Budgets' days and months are calendar periods in this zone (docs/budgets.md).
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ConfigError(
        f"TIME_ZONE={TIME_ZONE!r} is not a time zone name (e.g. Europe/Paris)."
    ) from None
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Production serves hashed, compressed copies made by `collectstatic`; embedded mode (and
# DEBUG) serves the files where they are, found at start, so `runstudio` needs no build step.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING or EMBEDDED
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED
WHITENOISE_AUTOREFRESH = DEBUG

# Sign-in throttling (django-axes, for the sign-in page and the admin's): after
# LOGIN_FAILURE_LIMIT failures for one username from one address, that pair is locked out for
# LOGIN_LOCKOUT_MINUTES; a success resets the count. Attempts are rows in the database, so
# every web process sees them; operators see and clear them in admin (Axes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "agents.web.login.locked_out"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Channels: Redis in production so every web process sees every group; in embedded mode
# the single process owns the in-memory layer. The pub/sub layer publishes a group message
# in one Redis round trip and pushes it to subscribed processes (the list-based
# RedisChannelLayer takes four to send and three to receive). Pub/sub keeps nothing for a
# process that is not listening; the session sockets already read any gap from the database.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # redis-py 8 gives every socket a 5 s read timeout by default; the layer's reader
            # waits on its subscription connection between messages, so none.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis broker in production; in embedded mode an in-process broker that the
# worker thread started by `runstudio` consumes.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died unacknowledged is redelivered after this long (Redis broker).
# Tasks are idempotent, so a redelivery while the first run still goes is harmless.
_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    # kombu only looks for such tasks every interval x throttle seconds (10 x 10 by
    # default), which would add up to 100 s to the timeout: look at a tenth of it instead.
    "unacked_restore_interval": max(1, min(30, _VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
if not REDIS_URL:
    # The in-memory transport polls its queues (1 s by default); a dict lookup every 20 ms
    # costs nothing and takes ~0.5 s off every deploy.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.02
CELERY_TASK_ALWAYS_EAGER = False
if TESTING:
    # Test runs sharing one Redis each get their own queue, so no run's worker takes
    # another's tasks (whose rows live in another test database). Set in the environment so
    # the workers and studios the tests start inherit it.
    os.environ.setdefault("CELERY_QUEUE", f"test-{os.getpid()}")
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "reap-expired-sandboxes": {"task": "sandboxes.tasks.sandboxes_reap", "schedule": 60.0},
    "reconcile-sandboxes": {"task": "sandboxes.tasks.sandboxes_reconcile", "schedule": 300.0},
    # A sandbox that dies under a running session fails it within seconds, not at the
    # next reconciliation.
    "check-busy-sandboxes": {"task": "sandboxes.tasks.sandboxes_check_busy", "schedule": 15.0},
    # Deploys and prompts the API accepted while the broker was down are sent again.
    "requeue-stalled-work": {"task": "sandboxes.tasks.work_requeue_stalled", "schedule": 15.0},
    "diagnose-silent-sessions": {
        "task": "sandboxes.tasks.sessions_diagnose_silent",
        "schedule": 15.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "studio.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "studio.schema.AutoSchema",
    "EXCEPTION_HANDLER": "studio.api.exception_handler",
    # The API speaks JSON only (nested skills, env, files do not fit a form); so does the
    # schema, and the test client by default.
    "DEFAULT_PARSER_CLASSES": ["logs.jsonio.BoundedJSONParser"],  # nesting bounded: jsonio
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_RATE", "6000/min"),
        "anon": "60/min",
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# /api/schema/ and /api/docs/ need a signed-in user (session or token) unless this opens them.
API_SCHEMA_PUBLIC = env_bool("API_SCHEMA_PUBLIC", default=False)
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Studio API",
    "DESCRIPTION": "Define Claude agents, deploy them into sandboxes, run prompts, read logs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SandboxBackendEnum": "agents.models.SANDBOX_BACKENDS",
        # Sessions and sandboxes both have a `status`: one name each.
        "SessionStatusEnum": "agents.models.SessionStatus",
        "SandboxStatusEnum": "sandboxes.models.SandboxStatus",
    },
}

# Request size: bodies above this are refused before parsing (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 12 * 1024 * 1024, minimum=1024)

# Sandboxes
_E2B_API_KEY = env_str("E2B_API_KEY")
E2B_API_KEY = _E2B_API_KEY
E2B_TEMPLATE_ID = env_str("E2B_TEMPLATE_ID", "agent-studio-runtime")
E2B_DOMAIN = env_str("E2B_DOMAIN")
SANDBOX_BACKEND = env_choice(
    "SANDBOX_BACKEND", ("local", "e2b"), "e2b" if _E2B_API_KEY else "local"
)
# Local sandboxes live here. A test run gets its own, so reconciliation in one run never
# kills the sandboxes of another run on the same checkout.
SANDBOX_DATA_DIR = DATA_DIR / (f"test-runs/{os.getpid()}" if TESTING else "")
SANDBOX_LOCAL_ISOLATION = env_choice("SANDBOX_LOCAL_ISOLATION", ("bwrap", "none"), "bwrap")
SANDBOX_TIMEOUT_SECONDS = env_int("SANDBOX_TIMEOUT_SECONDS", 1800, minimum=60)
# Local sandboxes: each runs as its own host uid from this range (first-last; uids nobody
# else uses; user namespaces map the sandbox's uid 1000 onto it), with these limits in a
# cgroup of its own and a disk of its own for /workspace and HOME (0 MB: no quota).
SANDBOX_UID_RANGE = env_str("SANDBOX_UID_RANGE", "1300000-1365535")
SANDBOX_PIDS_MAX = env_int("SANDBOX_PIDS_MAX", 512, minimum=16)
SANDBOX_MEMORY_MB = env_int("SANDBOX_MEMORY_MB", 2048, minimum=64)
# For all sandboxes together, against 100 for each other process: the studio comes first.
SANDBOX_CPU_WEIGHT = env_int("SANDBOX_CPU_WEIGHT", 100, minimum=1)
SANDBOX_DISK_MB = env_int("SANDBOX_DISK_MB", 2048, minimum=0)
# The host uid of local sandboxes' network helpers (pasta and the namespace it holds); the
# egress proxy of `allowlist` agents runs as the next uid. Both outside SANDBOX_UID_RANGE.
SANDBOX_NET_UID = env_int("SANDBOX_NET_UID", 64900, minimum=1000)
# How long a deploy waits for the sandbox's runtime to answer /health. A runtime starts in
# well under a second on an idle machine, but twenty deploys at once on two cores take longer.
SANDBOX_READY_TIMEOUT_SECONDS = env_int("SANDBOX_READY_TIMEOUT_SECONDS", 120, minimum=1)
# An idle sandbox is paused (files, HOME and memory kept; no compute billed) when its backend
# can pause, and resumed by the next use; off: it is stopped as before.
SANDBOX_PAUSE_WHEN_IDLE = env_bool("SANDBOX_PAUSE_WHEN_IDLE", True)
SANDBOX_MAX_LIFETIME_SECONDS = env_int("SANDBOX_MAX_LIFETIME_SECONDS", 24 * 3600, minimum=60)
# E2B: the provider's own timeout is only a dead man's switch. Every activity pushes it out
# (at most once per E2B_KEEPALIVE_SECONDS per sandbox), never past E2B_MAX_TIMEOUT_SECONDS
# from now: the plan's maximum (Hobby: 3600 s), so a crashed studio leaks nothing longer.
E2B_MAX_TIMEOUT_SECONDS = env_int("E2B_MAX_TIMEOUT_SECONDS", 3600, minimum=60)
E2B_KEEPALIVE_SECONDS = env_int("E2B_KEEPALIVE_SECONDS", 30, minimum=0)
# How many sandboxes the E2B plan runs at once (Hobby 20, Pro 100): deploys past it get 429.
E2B_MAX_SANDBOXES = env_int("E2B_MAX_SANDBOXES", 20, minimum=1)
# The size a sandbox is billed at when the provider does not say (the template's build size).
E2B_SANDBOX_VCPUS = env_int("E2B_SANDBOX_VCPUS", 2, minimum=1)
E2B_SANDBOX_MEMORY_MB = env_int("E2B_SANDBOX_MEMORY_MB", 2048, minimum=128)
# Sandbox prices per second of size (see sandboxes/pricing.py, the one home of the sum):
# E2B's published prices by default; local sandboxes cost nothing unless set.
SANDBOX_PRICES = {
    "e2b": {
        "vcpu_second": env_float("E2B_PRICE_PER_VCPU_SECOND", 0.000014, minimum=0),
        "gib_second": env_float("E2B_PRICE_PER_GIB_SECOND", 0.0000045, minimum=0),
    },
    # Local sandboxes report no size: a flat price per second, if any.
    "local": {"second": env_float("LOCAL_COST_PER_SECOND", 0.0, minimum=0)},
}
# A flat USD/second for every sandbox instead of the size-based price (unset: by size).
_FLAT_COST = env_str("SANDBOX_COST_PER_SECOND")
SANDBOX_COST_PER_SECOND = (
    env_float("SANDBOX_COST_PER_SECOND", 0.0, minimum=0) if _FLAT_COST else None
)
SANDBOX_MAX_LIVE_PER_USER = env_int("SANDBOX_MAX_LIVE_PER_USER", 5, minimum=1)
SESSION_TIMEOUT_SECONDS = env_int(
    "SESSION_TIMEOUT_SECONDS", protocol.DEFAULT_TIMEOUT_SECONDS, minimum=10
)
# How a sandbox reaches the studio. Unset in embedded mode, `runstudio` points it at the
# address it serves on (so `make run PORT=8100` works); production must set it for E2B.
BACKEND_API_URL_SET = bool(env_str("BACKEND_API_URL"))
BACKEND_API_URL = env_str("BACKEND_API_URL", "http://127.0.0.1:8000")

# The operator's model settings (docs/gateway.md). They stay in the studio: the model gateway
# sends the credential upstream (ANTHROPIC_BASE_URL, else Anthropic's API); sandboxes get the
# gateway's URL and a per-session credential. Read from the environment when used.
MODEL_ENV_NAMES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL")
# Price overrides, USD per million tokens (docs/pricing.md): a JSON object such as
# {"claude-sonnet-4-5": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}.
try:
    MODEL_PRICES = json.loads(env_str("MODEL_PRICES", "{}"))
except ValueError:
    MODEL_PRICES = None
if not isinstance(MODEL_PRICES, dict):
    raise ConfigError("MODEL_PRICES must be a JSON object of model family -> prices.")
GATEWAY_MAX_REQUEST_BYTES = env_int("GATEWAY_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        # The in-memory broker has no host; kombu warns about that on every connection.
        "kombu.connection": {"level": "ERROR"},
        # Its start banner in every manage command, and three lines per successful sign-in;
        # failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Production sits behind TLS; embedded mode serves plain HTTP on this machine unless told.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not EMBEDDED)
    # Probes and sandboxes may talk plain HTTP on the private network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^api/internal/"]
    # Behind TLS cookies must be Secure; a plain-HTTP staging setup can turn this off.
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not EMBEDDED)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int(
        "SECURE_HSTS_SECONDS", 31536000 if SECURE_SSL_REDIRECT else 0, minimum=0
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
