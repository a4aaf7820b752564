"""The only settings module. Everything comes from the environment, with safe defaults.

Every variable is validated at start-up: a bad value raises ImproperlyConfigured with a
message that names the variable, so `daphne`, `manage.py` and the tests all stop at once.
Plain data: it imports nothing from the apps (hub, dashboard, slurm_monitor). What only the
hub can judge (origins, channel policies) the hub app validates in ``HubConfig.ready()``
(``hub.apps.check_settings``), which runs under ``django.setup()`` before anything is served.
Apps read the resulting ``HUB`` dict lazily through ``hub.conf.hub_settings``.
"""

from __future__ import annotations

import json
import warnings
import os
import socket
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from realtime_project.env import env_number, env_rate
from realtime_project.security import jwt_settings, proxy_ssl_header, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    return env_number(name, default, minimum, cast=int)


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    return env_number(name, default, minimum)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _env_json_object(name: str) -> dict:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object")
    return value


# --- Django core -------------------------------------------------------------------------

DEBUG = _env_bool("DJANGO_DEBUG", False)
# No built-in key (PROTOCOL.md §2): unset or weak stops start-up unless DEBUG is on, which
# gets a random key per process (see realtime_project.security; scripts/run keeps one).
SECRET_KEY, HUB_SECRET_KEY_EPHEMERAL = secret_key(os.environ, DEBUG)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
# Each a full origin: checked by the hub app at start-up (hub.apps.check_settings).
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS and cookies (README: "Production settings"); all off for plain-HTTP development -

_SECURE_COOKIES = _env_bool("DJANGO_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = _SECURE_COOKIES
CSRF_COOKIE_SECURE = _SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The dashboard takes the token from its page, never from the cookie: pages on other ports
# of the same host (which share cookies) cannot read it either.
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = _env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Only behind a proxy that sets the header itself and strips it from clients' requests.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

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
    "hub",
    "slurm_monitor",
    "dashboard",
    "realtime_project.apps.ProjectConfig",  # system checks: realtime_project.checks
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
]

ROOT_URLCONF = "realtime_project.urls"
ASGI_APPLICATION = "realtime_project.asgi.application"
WSGI_APPLICATION = None

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

# --- Database: SQLite embedded, DATABASE_URL for PostgreSQL ------------------------------

DATABASE_URL = _env_str("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    except Exception as exc:  # dj_database_url raises a variety of errors
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _env_str("SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
            # Daphne, the monitor and the tests share the file: wait instead of failing.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
            # A file, not :memory:, so the daphne processes the tests start share it; one per
            # test run, so concurrent runs in one checkout do not recreate each other's.
            "TEST": {"NAME": _env_str("SQLITE_TEST_PATH")
                     or str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Failed-login lockout first (hub.rest.login_throttle), then the usual user table.
AUTHENTICATION_BACKENDS = ["hub.rest.login_throttle.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Static files (the JS client, the dashboard's modules) through WhiteNoise, straight from the
# apps' static/ folders (no collectstatic step needed; collectstatic still works for a proxy).
# max-age 0: the modules import each other by plain URL, so every load revalidates (a cheap 304)
# and a page never mixes an old module with a new one. Every origin may load them
# (Access-Control-Allow-Origin: *): hub-client.js is public code that other sites import; what
# it connects to is guarded by the Origin check and credentials, not by hiding the file.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MAX_AGE = 0
WHITENOISE_ALLOW_ALL_ORIGINS = True
# STATIC_ROOT exists only after collectstatic; without it the finders serve everything.
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- site logins (issue 15): optional REMOTE_USER, LDAP and OIDC hooks ---------------------
# None is on by default (the embedded hub logs in with Django's own accounts); each is
# enabled by its variables, validated here (realtime_project.logins). They set
# AUTHENTICATION_BACKENDS (LockoutBackend still first), MIDDLEWARE (REMOTE_USER only),
# LOGIN_URL (HUB_LOGIN_URL) and their library's settings. Who a user is in Slurm:
# hub.identity.slurm_user_for (HubProfile, editable in admin; blank = the username).
from realtime_project.logins import site_logins  # noqa: E402

globals().update(site_logins(os.environ, MIDDLEWARE))
# --- end of site logins --------------------------------------------------------------------

# --- E-mail (notification deliveries, hub.notify.deliveries): Django's SMTP backend -------------

EMAIL_HOST = _env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = _env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = _env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = _env_str("DEFAULT_FROM_EMAIL", "hub@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Channel layer: in-process by default, channels-redis with REDIS_URL ------------------

REDIS_URL = _env_str("REDIS_URL")
HUB_CHANNEL_PREFIX = _env_str("HUB_CHANNEL_PREFIX", "hub")
# At most 30: hashed group names are prefix + 67 characters and must stay under 100.
if (not HUB_CHANNEL_PREFIX or len(HUB_CHANNEL_PREFIX) > 30
        or not all(c.isalnum() or c in "-_." for c in HUB_CHANNEL_PREFIX)):
    raise ImproperlyConfigured("HUB_CHANNEL_PREFIX must be 1-30 characters of A-Za-z0-9_.-")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    # The pub/sub layer: a group_send is one PUBLISH whatever the group size (the default
    # RedisChannelLayer does one Redis operation per member); see docs/benchmarks.md.
    # health_check_interval + keepalive: redis-py 8 otherwise drops idle connections
    # (channels_redis#422), and a dead connection is noticed instead of hanging.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{
                    "address": REDIS_URL,
                    "health_check_interval": 10,
                    "socket_keepalive": True,
                    "socket_connect_timeout": 2,
                    "retry_on_timeout": True,
                }],
                "prefix": f"{HUB_CHANNEL_PREFIX}.layer",
            },
        }
    }
else:
    # One process; its node's inbox is the only group member, so a deep queue is all it needs.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                  "CONFIG": {"capacity": 100_000, "expiry": 60}}}

# --- The hub ---------------------------------------------------------------------------

HUB: dict[str, Any] = {  # values of several types; read through hub.conf.hub_settings
    "SERVER_NAME": _env_str("HUB_SERVER_NAME") or f"{socket.gethostname()}-{os.getpid()}",
    "MAX_CONNECTIONS": _env_int("HUB_MAX_CONNECTIONS", 1000, minimum=1),
    "MAX_CONNECTIONS_PER_USER": _env_int("HUB_MAX_CONNECTIONS_PER_USER", 20, minimum=1),
    # Sockets not (yet) authenticated (hub.socket.admission): in all, and per client address.
    "MAX_ANONYMOUS_CONNECTIONS": _env_int(
        "HUB_MAX_ANONYMOUS_CONNECTIONS",
        max(1, _env_int("HUB_MAX_CONNECTIONS", 1000, minimum=1) // 10), minimum=0),
    "MAX_CONNECTIONS_PER_ADDRESS": _env_int("HUB_MAX_CONNECTIONS_PER_ADDRESS", 100, minimum=1),
    "MAX_MESSAGE_SIZE": _env_int("HUB_MAX_MESSAGE_SIZE", 1024 * 1024, minimum=64),
    "HEARTBEAT_INTERVAL": _env_float("HUB_HEARTBEAT_INTERVAL", 30.0, minimum=0.05),
    "CONNECTION_TIMEOUT": _env_float("HUB_CONNECTION_TIMEOUT", 60.0, minimum=0.1),
    "REQUIRE_AUTH": _env_bool("HUB_REQUIRE_AUTH", True),
    "AUTH_TIMEOUT": _env_float("HUB_AUTH_TIMEOUT", 5.0, minimum=0.05),
    # Full origins allowed besides the hub's own and CSRF_TRUSTED_ORIGINS; "*" = any origin.
    "ALLOWED_ORIGINS": _env_list("HUB_ALLOWED_ORIGINS", []),
    "RATE_LIMIT": _env_int("HUB_RATE_LIMIT", 60, minimum=1),
    "MAX_SUBSCRIPTIONS": _env_int("HUB_MAX_SUBSCRIPTIONS", 100, minimum=1),
    "HISTORY_SIZE": _env_int("HUB_HISTORY_SIZE", 100, minimum=0),
    "HISTORY_TTL": _env_int("HUB_HISTORY_TTL", 86400, minimum=1),
    "CHANNELS": _env_json_object("HUB_CHANNELS"),
    "MAX_QUEUED_BYTES": _env_int("HUB_MAX_QUEUED_BYTES", 4 * 1024 * 1024, minimum=1024),
    # Sockets one fan-out writes per turn of the event loop (hub.engine.hub.Hub.fan_out).
    "FANOUT_CHUNK": _env_int("HUB_FANOUT_CHUNK", 50, minimum=1),
    # Modules that register application message types (hub.socket.handlers.register) at start-up.
    "HANDLER_MODULES": _env_list("HUB_HANDLER_MODULES", []),
    "PRIVATE_JOBS": _env_bool("HUB_PRIVATE_JOBS", False),  # Slurm PrivateData=jobs: own jobs only
    "REDIS_URL": REDIS_URL,
    "CHANNEL_PREFIX": HUB_CHANNEL_PREFIX,
}

# Read by the apps at use; validated here so a bad value stops start-up.
for _name in ("HUB_STATS_SNAPSHOT_SECONDS", "HUB_STATS_RETENTION_DAYS", "HUB_PROCESS_ALIVE_SECONDS"):
    env_number(_name, 1.0, 0.0, exclusive=True)
env_rate("HUB_API_RATE_LIMIT", "600/min")
env_rate("HUB_API_BROADCASTER_RATE_LIMIT", "12000/min")
env_rate("HUB_API_HEALTH_RATE_LIMIT", "120/min")
env_number("HUB_LOGIN_MAX_FAILURES", 5, 1, cast=int)
env_number("HUB_LOGIN_LOCKOUT_SECONDS", 30.0, 0.0, exclusive=True)

# HUB_ALLOWED_ORIGINS and HUB_CHANNELS are judged by the hub's own rules (the Origin check,
# the channel policies), so the hub app validates them at start-up: hub.apps.check_settings.

# The primary cluster's name (slurm_monitor.clusters): what a monitor started without
# --cluster watches, and what events, REST rows and metrics call it. Validated by
# slurm_monitor's AppConfig.ready().
SLURM_MONITOR_CLUSTER = _env_str("SLURM_MONITOR_CLUSTER") or "default"

# Job cancel from the job page (slurm_monitor.cancel): off unless a command is named. Kept as
# the raw line here (settings are plain data); slurm_monitor's AppConfig.ready() validates it.
SLURM_MONITOR_CANCEL_COMMAND = _env_str("SLURM_MONITOR_CANCEL_COMMAND") or None
SLURM_MONITOR_CANCEL_TIMEOUT = env_number("SLURM_MONITOR_CANCEL_TIMEOUT", 20.0, 0.0, exclusive=True)

# --- REST ------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "hub.rest.rest_auth.BearerAuthentication",  # a JWT, or a DRF token as on the WebSocket
        "rest_framework.authentication.SessionAuthentication",
    ],
    # DRF's defaults, with a JSON parser that refuses deep nesting and lone surrogates.
    "DEFAULT_PARSER_CLASSES": ["hub.rest.parsers.HubJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    # Throttles key on the peer address, never on a client-sent X-Forwarded-For (behind a
    # proxy, daphne --proxy-headers puts the real address there).
    "NUM_PROXIES": 0,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hub.rest.apis_errors.json_exception_handler",
}
# JWTs: their own key (HUB_JWT_SIGNING_KEY, else derived from SECRET_KEY), or an identity
# provider's public key (HUB_JWT_ALGORITHM=RS256|ES256 + HUB_JWT_VERIFYING_KEY).
# The WebSocket (hub.socket.auth) verifies through simplejwt too, so both roads use this.
SIMPLE_JWT = jwt_settings(os.environ, SECRET_KEY,
                          _env_float("HUB_JWT_ACCESS_MINUTES", 15.0, minimum=0.05))
SPECTACULAR_SETTINGS = {
    "TITLE": "Hub API",
    "DESCRIPTION": "Real-time hub: broadcast, health, clients, channels, notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema `manage.py spectacular` writes is the one /api/schema serves.
    "DEFAULT_GENERATOR_CLASS": "hub.rest.apis_errors.ErrorDocumentingGenerator",
    # Swagger UI from the installed sidecar package, not a CDN (works offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: tokens never appear (see hub.ops.logging_filters) -----------------------------

LOG_LEVEL = _env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "hub.ops.logging_filters.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
