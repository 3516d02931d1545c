"""ZeroTP settings: one file, every value read from the environment in one place.

Each variable has a default that suits a local run (`make run`); a wrong value stops
start-up with a message that names the variable.
"""

import ipaddress
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy

from zerotp.client_address import trusted_proxies
from zerotp.rates import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _read[T](name: str, cast: type[T], default: T) -> T:
    try:
        return env(name, cast=cast, default=default)
    except (ValueError, TypeError, environ.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} has a bad value: {exc}") from exc


def _positive_int(name: str, default: int, minimum: int = 1) -> int:
    value = _read(name, int, default)
    if value < minimum:
        raise ImproperlyConfigured(f"Environment variable {name} must be at least {minimum}.")
    return value


DEBUG = _read("DEBUG", bool, False)
HTTPS = _read("HTTPS", bool, False)
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-set-SECRET_KEY-in-production"  # noqa: S105
SECRET_KEY = _read("SECRET_KEY", str, _DEV_SECRET_KEY)
if HTTPS and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when HTTPS=true (production).")
ALLOWED_HOSTS: list[str] = _read(
    "ALLOWED_HOSTS", list, ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
# The proxies whose X-Forwarded-For is believed (zerotp/client_address.py): addresses or CIDRs.
try:
    TRUSTED_PROXIES = trusted_proxies(_read("TRUSTED_PROXIES", str, ""))
except ValueError as exc:
    raise ImproperlyConfigured(
        f"Environment variable TRUSTED_PROXIES has a bad value: {exc}."
    ) from None

# --- Business rules (docs/API.md, "Configuration") --------------------------------------
ORDER_TTL_SECONDS = _positive_int("ORDER_TTL_SECONDS", 1200)
MODEM_ONLINE_SECONDS = _positive_int("MODEM_ONLINE_SECONDS", 120)
RESELLER_SHARE_PERCENT = _positive_int("RESELLER_SHARE_PERCENT", 70, minimum=0)
if RESELLER_SHARE_PERCENT > 100:
    raise ImproperlyConfigured("Environment variable RESELLER_SHARE_PERCENT must be 0 to 100.")
MAX_ACTIVE_ORDERS = _positive_int("MAX_ACTIVE_ORDERS", 20)
# PostgreSQL writes an order with its hold, a cancel with its refund, in one statement
# (zerotp/db.py); false forces the portable path of several statements in a transaction.
ONE_STATEMENT_WRITES = _read("ONE_STATEMENT_WRITES", bool, True)
MODEM_BATCH_MAX = _positive_int("MODEM_BATCH_MAX", 1000)
CALLBACK_ALLOW_PRIVATE = _read("CALLBACK_ALLOW_PRIVATE", bool, False)
API_RATE_LIMIT = _read("API_RATE_LIMIT", str, "100/s")
# Number scanning: a buyer whose last SCAN_GUARD_ORDERS closed orders (within 24 h) got an
# SMS less than SCAN_GUARD_MIN_SMS_PERCENT of the time is paused (429).
SCAN_GUARD = _read("SCAN_GUARD", bool, True)
SCAN_GUARD_ORDERS = _positive_int("SCAN_GUARD_ORDERS", 20)
SCAN_GUARD_MIN_SMS_PERCENT = _positive_int("SCAN_GUARD_MIN_SMS_PERCENT", 5, minimum=0)
# The public catalogue (prices and stock) is cached this long; 0 turns the cache off.
CATALOGUE_CACHE_SECONDS = _positive_int("CATALOGUE_CACHE_SECONDS", 2, minimum=0)
# How often and how fast codes arrive (orders/statements/deliverability.py): a figure needs
# this many decided orders (delivered ones, for the times) in its window, else it is null;
# the figures are recomputed this often.
DELIVERABILITY_MIN_ORDERS = _positive_int("DELIVERABILITY_MIN_ORDERS", 20)
DELIVERABILITY_CACHE_SECONDS = _positive_int("DELIVERABILITY_CACHE_SECONDS", 60, minimum=0)
# Routing to numbers that deliver (orders/statements/free_modems.py): a number that failed
# this many orders of an application in a row (0: never) rests from it this long; an order
# gets the likeliest to deliver of the first ROUTING_CANDIDATES free modems (1: the first),
# except a share of orders (ROUTING_EXPLORATION_PERCENT) that take the first, so numbers
# that failed get tried again.
NUMBER_REST_AFTER_FAILURES = _positive_int("NUMBER_REST_AFTER_FAILURES", 3, minimum=0)
NUMBER_REST_SECONDS = _positive_int("NUMBER_REST_SECONDS", 6 * 3600)
ROUTING_CANDIDATES = _positive_int("ROUTING_CANDIDATES", 2)
ROUTING_EXPLORATION_PERCENT = _positive_int("ROUTING_EXPLORATION_PERCENT", 10, minimum=0)
CURRENCY = "IDR"
# --- Money in and out (billing/topups.py, billing/withdrawals.py) ------------------------
TOPUP_MIN = _positive_int("TOPUP_MIN", 10_000)
TOPUP_MAX = _positive_int("TOPUP_MAX", 10_000_000)
if TOPUP_MAX < TOPUP_MIN:
    raise ImproperlyConfigured("Environment variable TOPUP_MAX must be at least TOPUP_MIN.")
WITHDRAWAL_MIN = _positive_int("WITHDRAWAL_MIN", 50_000)
# The payment providers buyers may top up with, in the order the dashboard offers them.
PAYMENT_PROVIDERS: list[str] = _read("PAYMENT_PROVIDERS", list, ["manual"])
_KNOWN_PROVIDERS = {"manual", "midtrans"}
if not set(PAYMENT_PROVIDERS) <= _KNOWN_PROVIDERS:
    raise ImproperlyConfigured(
        f"Environment variable PAYMENT_PROVIDERS names unknown providers: "
        f"{sorted(set(PAYMENT_PROVIDERS) - _KNOWN_PROVIDERS)}; known: {sorted(_KNOWN_PROVIDERS)}."
    )
# Bank transfer: the operator's accounts, shown to the buyer ("BCA 1234567890 PT ZeroTP",
# separated by semicolons), and how long a transfer may take to be confirmed.
MANUAL_BANK_ACCOUNTS: list[str] = [
    line.strip() for line in _read("MANUAL_BANK_ACCOUNTS", str, "").split(";") if line.strip()
]
MANUAL_TOPUP_HOURS = _positive_int("MANUAL_TOPUP_HOURS", 24)
MIDTRANS_SERVER_KEY = _read("MIDTRANS_SERVER_KEY", str, "")
MIDTRANS_CLIENT_KEY = _read("MIDTRANS_CLIENT_KEY", str, "")
MIDTRANS_PRODUCTION = _read("MIDTRANS_PRODUCTION", bool, False)
_MIDTRANS_HOST = "midtrans.com" if MIDTRANS_PRODUCTION else "sandbox.midtrans.com"
MIDTRANS_SNAP_URL = _read("MIDTRANS_SNAP_URL", str, f"https://app.{_MIDTRANS_HOST}").rstrip("/")
MIDTRANS_API_URL = _read("MIDTRANS_API_URL", str, f"https://api.{_MIDTRANS_HOST}").rstrip("/")
if "midtrans" in PAYMENT_PROVIDERS and not MIDTRANS_SERVER_KEY:
    raise ImproperlyConfigured("PAYMENT_PROVIDERS has midtrans: set MIDTRANS_SERVER_KEY.")
MIDTRANS_TOPUP_HOURS = _positive_int("MIDTRANS_TOPUP_HOURS", 24)

# This server's country in the sms-activate protocol's own numbering (not a dialling code):
# 6 is Indonesia. /stubs/handler_api.php sells numbers of this country only.
ACTIVATION_COUNTRY = _positive_int("ACTIVATION_COUNTRY", 6, minimum=0)
# A request body above this is answered 413 before it is parsed. A full 1,000-modem sync
# is about 120 KB.
API_MAX_BODY_BYTES = _positive_int("API_MAX_BODY_BYTES", 1024 * 1024)

try:
    parse_rate(API_RATE_LIMIT)
except ValueError:
    raise ImproperlyConfigured(
        "Environment variable API_RATE_LIMIT must look like 100/s, 600/m or 0 (off)."
    ) from None

# --- Applications ------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "accounts",
    "billing",
    "modems",
    "orders",
]

MIDDLEWARE = [
    "zerotp.middleware.ChunkedBodyMiddleware",  # first: before anything reads the body
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.TimeZoneMiddleware",  # after authentication: the user's own zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "zerotp.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "zerotp.urls"
WSGI_APPLICATION = "zerotp.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
try:
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
except (ValueError, environ.ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(f"Environment variable DATABASE_URL has a bad value: {exc}") from exc

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes concurrent writers queue instead of failing with "database is locked";
    # WAL lets readers run beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # Parameters bound by the server, and the hot paths' hand-written statements
    # prepared on a connection's first use of them (zerotp.db.prepared): PostgreSQL then
    # stops parsing them and, once a plan for all parameter values proves as good, planning
    # them; on the order path that cost more than running them (docs/PERFORMANCE.md).
    # Behind a pooler in transaction mode (PgBouncer < 1.21), set
    # DATABASE_SERVER_SIDE_BINDING=false, which turns both off.
    if _read("DATABASE_SERVER_SIDE_BINDING", bool, True):
        from zerotp.db import PREPARE_THRESHOLD, PreparingCursor

        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {
                "server_side_binding": True,
                "cursor_factory": PreparingCursor,
                "prepare_threshold": PREPARE_THRESHOLD,
            }
        )

# --- Cache and job queue -----------------------------------------------------------------
REDIS_URL = _read("REDIS_URL", str, "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    _Q_BROKER: dict[str, str] = {"redis": REDIS_URL}
else:
    # The database cache is shared by every gunicorn worker, unlike the local-memory one.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "zerotp_cache",
        }
    }
    _Q_BROKER = {"orm": "default"}

Q_CLUSTER: dict[str, Any] = {
    "name": "zerotp",
    "workers": _positive_int("Q_WORKERS", 2),
    "timeout": 50,
    "retry": 60,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    # Successes are not stored: pruning the kept ones cost the monitor a thousand-row lock
    # per job, and it fell so far behind that callbacks waited seconds for a worker
    # (docs/DEPLOY.md); failures are stored, and the zerotp.job log records every job.
    "save_limit": -1,
    # The database broker looks for new jobs this often (django-q's default 0.2 s alone
    # put a callback's first attempt up to 200 ms late); Redis is told of jobs at once.
    "poll": 0.02,
    "label": gettext_lazy("Job queue"),  # the admin's name of django-q2's app
    **_Q_BROKER,
}

# --- Auth, i18n, static ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ----------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every page: scripts only from this site (the one inline script carries the nonce),
# nothing framed, forms post only here. Styles allow inline for htmx's indicator style.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": ["zerotp.throttling.KeyRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["zerotp.api.LenientJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "zerotp.api.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "zerotp.api.JSONOnlyNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ZeroTP API",
    "DESCRIPTION": (
        "One-time passwords on real phone numbers. Buyers use `X-API-KEY`; modem-pool agents "
        "use `X-AGENT-KEY`. Money is an integer number of rupiah. Every error is "
        '`{"error": {"code": ..., "message": ...}}`.'
    ),
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"OperatorEnum": "modems.models.Operator"},
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # runserver logs every request; the simulator's poll of its open orders each second
        # would bury everything else (`make run`). Failures still show.
        "quiet_agent_polls": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: (
                getattr(record, "status_code", 500) >= 400
                or "GET /api/modem/orders " not in record.getMessage()
            ),
        }
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["quiet_agent_polls"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# --- Operations: probes, metrics, logs (zerotp/health.py, metrics.py, logs.py) -----------
# /healthz, /readyz and /metrics are answered first, before the host check and the HTTPS
# redirect (a balancer probes each node by its address, over plain HTTP); every request
# gets an id and, with LOG_FORMAT=json, one log line.
MIDDLEWARE[:0] = ["zerotp.logs.RequestLogMiddleware", "zerotp.health.ProbeMiddleware"]
INSTALLED_APPS.append("zerotp")  # its ready() logs each job (django-q2's signals)
# /readyz answers 503 when the oldest waiting job, or the last clean expiry sweep, is older.
READY_QUEUE_MAX_SECONDS = _positive_int("READY_QUEUE_MAX_SECONDS", 300)
READY_EXPIRY_SWEEP_MAX_SECONDS = _positive_int("READY_EXPIRY_SWEEP_MAX_SECONDS", 300)
# /metrics is a 404 unless at least one is set; when both are, a scrape needs both.
METRICS_TOKEN = _read("METRICS_TOKEN", str, "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("Environment variable METRICS_TOKEN must be 16 characters or more.")
METRICS_ALLOW: list[str] = _read("METRICS_ALLOW", list, [])
for _network in METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"Environment variable METRICS_ALLOW: {_network!r} is not an address or CIDR."
        ) from None
LOG_FORMAT = _read("LOG_FORMAT", str, "text" if DEBUG else "json")
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "zerotp.logs.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
    LOGGING["handlers"]["django.server"]["formatter"] = "json"
    # One line per request and per job: the lines that would repeat them are left out
    # (runserver's, Django's "Not Found: ..." and "Service Unavailable: ..." without a
    # traceback, django-q's "Processed ...").
    LOGGING["loggers"]["django.server"]["level"] = "ERROR"
    LOGGING["filters"]["tracebacks_only"] = {
        "()": "django.utils.log.CallbackFilter",
        "callback": lambda record: record.exc_info is not None,
    }
    LOGGING["loggers"]["django.request"] = {"level": "ERROR", "filters": ["tracebacks_only"]}
    LOGGING["loggers"]["django-q"] = {"level": "WARNING"}
elif LOG_FORMAT == "text":
    # `make run`: runserver and django-q print their own lines; ours only for failures.
    LOGGING["loggers"]["zerotp.request"] = {"level": "WARNING"}
    LOGGING["loggers"]["zerotp.job"] = {"level": "WARNING"}
else:
    raise ImproperlyConfigured("Environment variable LOG_FORMAT must be json or text.")

# Development prints emails (password resets) on the console; production (HTTPS=true)
# sends them over SMTP (EMAIL_HOST and friends in MAILERS' OPTIONS) unless EMAIL_BACKEND
# names another backend.
_DEFAULT_MAIL = "smtp" if HTTPS else "console"
MAILERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": _read(
            "EMAIL_BACKEND", str, f"django.core.mail.backends.{_DEFAULT_MAIL}.EmailBackend"
        ),
        "OPTIONS": {
            "host": _read("EMAIL_HOST", str, "localhost"),
            "port": _read("EMAIL_PORT", int, 25),
        }
        if HTTPS
        else {},
    }
}

# --- Dashboard ---------------------------------------------------------------------------
# The server-rendered pages: htmx for the live parts, English and Indonesian, email login
# with throttled failures (counted in the shared cache, so every worker sees them).
INSTALLED_APPS += ["django_htmx"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
    "django.middleware.locale.LocaleMiddleware",
)
MIDDLEWARE.append("django_htmx.middleware.HtmxMiddleware")
LANGUAGES = [("en", "English"), ("id", "Bahasa Indonesia")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "landing"
LOGIN_FAILURES_MAX = _positive_int("LOGIN_FAILURES_MAX", 5)
LOGIN_FAILURES_WINDOW_SECONDS = _positive_int("LOGIN_FAILURES_WINDOW_SECONDS", 15 * 60)
# The reseller's agent as one file, offered on the reseller page; `make agent` builds it.
AGENT_PYZ = Path(_read("AGENT_PYZ", str, str(BASE_DIR / "dist" / "zerotp-agent.pyz")))
