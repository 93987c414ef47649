"""Settings shared by every profile. Every knob is an environment variable listed in docs/configuration.md."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

from mrmarket.config import ConfigError, custody_address, parse_database_url, parse_redis_url
from mrmarket.observability.logging import configure_logging

# Lets generic classes such as ModelAdmin[Model] be subscripted at runtime (typed admin and querysets).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VERSION = "0.1.0"

# Which process loads these settings: "web" (the public HTTP/WebSocket server), "worker", "beat", or "all" (a
# management command, a shell). Set by the entry points (manage.py, mrmarket.asgi, mrmarket.celery_app); the
# web process never loads the custody or master keys (mrmarket.settings.prod).
PROCESS_ROLES = ("web", "worker", "beat", "all")
PROCESS_ROLE = env.str("MRMARKET_PROCESS", default="all")
if PROCESS_ROLE not in PROCESS_ROLES:
    raise ConfigError(f"MRMARKET_PROCESS must be one of {', '.join(PROCESS_ROLES)}")

# Runtime files of a local run (SQLite database, beat schedule, demo state); never committed.
DATA_DIR = Path(env.str("MRMARKET_DATA_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "mrmarket.apps.MrMarketAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens: stored as a SHA-512 digest only, each with an expiry (REST_KNOX below).
    "knox",
    # Login lockout with backoff for the admin and the token endpoint (AXES_* below).
    "axes",
    "csp",
    "drf_spectacular",
    "channels",
    "django_prometheus",
    "mrmarket.apps.CoreConfig",
    "campaigns",
    "execution",
    "attestation",
    "payouts",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "mrmarket.observability.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mrmarket.observability.middleware.UserContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: turns a lockout flagged during authentication into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mrmarket.urls"
ASGI_APPLICATION = "mrmarket.asgi.application"

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

# --- data stores -------------------------------------------------------------------------------------------
# PostgreSQL only. 0 (a connection per request or task) by default: the web process serves ASGI, where Django's
# persistent connections are kept per executor thread and never reused or closed in time (Django's docs: disable
# them under ASGI). Under load they ran the server out of connections (docs/reliability.md, section 6). A worker
# may set it higher for itself.
DB_CONN_MAX_AGE = env.int("DB_CONN_MAX_AGE", default=0)
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{(DATA_DIR / 'db.sqlite3').resolve()}")
DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and DATABASES["default"]["NAME"] != ":memory:":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Redis serves cache, Celery broker (unless CELERY_BROKER_URL says otherwise) and the channel layer.
REDIS_URL = parse_redis_url("REDIS_URL", env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"))
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="mrmarket")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "TIMEOUT": 300,
        # JSON, not Django's default pickle: a write to Redis must never become code run here (mrmarket/cache.py).
        "OPTIONS": {"serializer": "mrmarket.cache.JSONSerializer"},
    }
}
# The only dataclasses the cache may rebuild from an entry.
CACHE_JSON_TYPES = [
    "attestation.easyenclave.ControlPlaneVerdict",
    "attestation.easyenclave.DiscoveredService",
]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout None: channels-redis blocks on BZPOPMIN; a client timeout would drop idle
            # WebSockets every few seconds (docs/adr/0004-redis-client.md).
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            "prefix": f"{REDIS_KEY_PREFIX}:asgi",
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

# --- Celery (read by mrmarket/celery.py through the CELERY_ namespace) --------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="mrmarket")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# An operator's fund or withdraw-back request whose task has not started after this long is queued again
# (`execution.redeliver_requests`): the broker may have lost it.
REQUEST_REDELIVERY_SECONDS = env.int("REQUEST_REDELIVERY_SECONDS", default=300)
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=10)
CHAIN_INDEX_INTERVAL_SECONDS = env.int("CHAIN_INDEX_INTERVAL_SECONDS", default=5)
# Schedules are code, reviewed like code (docs/adr/0003-beat-schedule-in-settings.md).
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "mrmarket.heartbeat",
        "schedule": float(HEARTBEAT_INTERVAL_SECONDS),
        "options": {"expires": float(HEARTBEAT_INTERVAL_SECONDS)},
    },
    "execution-reprobe-exchange-keys": {
        "task": "execution.reprobe_exchange_keys",
        "schedule": float(env.int("EXCHANGE_KEY_REPROBE_SECONDS", default=3600)),
    },
    "execution-track-deposits": {
        "task": "execution.track_deposits",
        "schedule": float(CHAIN_INDEX_INTERVAL_SECONDS),
        "options": {"expires": float(CHAIN_INDEX_INTERVAL_SECONDS)},
    },
    "execution-track-withdrawals": {
        "task": "execution.track_withdrawals",
        "schedule": float(CHAIN_INDEX_INTERVAL_SECONDS),
        "options": {"expires": float(CHAIN_INDEX_INTERVAL_SECONDS)},
    },
    "execution-redeliver-requests": {
        "task": "execution.redeliver_requests",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "execution-drive-jobs": {
        "task": "execution.drive_jobs",
        "schedule": float(env.int("EXECUTOR_SYNC_SECONDS", default=10)),
        "options": {"expires": float(env.int("EXECUTOR_SYNC_SECONDS", default=10))},
    },
    "attestation-reattest-executors": {
        "task": "attestation.reattest_executors",
        "schedule": float(env.int("ATTESTATION_REATTEST_SECONDS", default=300)),
    },
    "attestation-refresh-collateral": {
        "task": "attestation.refresh_collateral",
        "schedule": float(env.int("ATTESTATION_COLLATERAL_REFRESH_SECONDS", default=3600)),
    },
    "execution-reconcile": {
        "task": "execution.reconcile",
        "schedule": float(env.int("RECONCILE_INTERVAL_SECONDS", default=60)),
    },
    "campaigns-index-chain": {
        "task": "campaigns.index_chain",
        "schedule": float(CHAIN_INDEX_INTERVAL_SECONDS),
        "options": {"expires": float(CHAIN_INDEX_INTERVAL_SECONDS)},
    },
}

# --- outside world -----------------------------------------------------------------------------------------
CHAIN_RPC_URL = env.str("CHAIN_RPC_URL", default="")
CAMPAIGN_FACTORY_ADDRESS = env.str("CAMPAIGN_FACTORY_ADDRESS", default="")
CHAIN_CONFIRMATIONS = env.int("CHAIN_CONFIRMATIONS", default=2)
# {"1": "https://etherscan.io"}: chain id → block explorer base URL; the public pages link a transaction as
# base + "/tx/" + hash (and an address as base + "/address/" + address). A chain without one shows plain hashes.
CHAIN_EXPLORER_URLS: dict[str, str] = env.json("CHAIN_EXPLORER_URLS", default={})
if not isinstance(CHAIN_EXPLORER_URLS, dict) or not all(
    isinstance(k, str) and k.isdigit() and isinstance(v, str) and v.startswith(("https://", "http://"))
    for k, v in CHAIN_EXPLORER_URLS.items()
):
    raise ConfigError(
        'CHAIN_EXPLORER_URLS must be a JSON object of chain id → http(s) URL, e.g. {"1": "https://etherscan.io"}'
    )
EXECUTOR_URLS: list[str] = env.list("EXECUTOR_URLS", default=[])
# {"binance": "https://testnet.binance.vision"}: ccxt exchange id → base URL replacing its API hosts.
EXCHANGE_API_URLS: dict[str, str] = env.json("EXCHANGE_API_URLS", default={})
EXCHANGE_MARKETS_TTL_SECONDS = env.int("EXCHANGE_MARKETS_TTL_SECONDS", default=3600)
# The market-data recorder (docs/scoring.md, "Market-data recorder"). A book stands for a sample time when its own
# time is within the tolerance of it: Binance publishes diffs every 100 ms (1 s on the slow stream) and a REST
# snapshot takes well under a second, so 2 s passes a healthy feed with room and refuses one that has stalled.
RECORDER_TOLERANCE_MS = env.int("RECORDER_TOLERANCE_MS", default=2000)
# Levels kept beyond the campaign's max_spread_bps, so a reader sees the book just outside the scoring band.
RECORDER_LEVEL_MARGIN_BPS = env.int("RECORDER_LEVEL_MARGIN_BPS", default=50)
# How often a recorder re-reads its campaigns (new ones start, ended ones stop).
RECORDER_REFRESH_SECONDS = env.float("RECORDER_REFRESH_SECONDS", default=30.0)
# Levels asked of a REST snapshot when the stream is down (a Binance limit: 5, 10, 20, 50, 100, 500, 1000, 5000).
RECORDER_REST_DEPTH = env.int("RECORDER_REST_DEPTH", default=500)
# How often the live-depth producer re-reads the markets of the running campaigns (docs/api/live-depth.md).
DEPTH_FEED_REFRESH_SECONDS = env.float("DEPTH_FEED_REFRESH_SECONDS", default=10.0)
# The custody wallet that funds MM orders: its ERC-20 assets ({"USDT": {"token": "0x…", "decimals": 6}}).
CUSTODY_ASSETS: dict[str, dict[str, object]] = env.json("CUSTODY_ASSETS", default={})
CUSTODY_PRIVATE_KEY = env.str("CUSTODY_PRIVATE_KEY", default="")
# A custody transfer still pending this long is replaced (same nonce) at a gas price this many percent higher,
# never above the cap (wei; 0 = no cap); reaching the cap raises an alert instead.
CUSTODY_GAS_BUMP_SECONDS = env.int("CUSTODY_GAS_BUMP_SECONDS", default=180)
CUSTODY_GAS_BUMP_PERCENT = env.int("CUSTODY_GAS_BUMP_PERCENT", default=25)
CUSTODY_GAS_PRICE_CAP_WEI = env.int("CUSTODY_GAS_PRICE_CAP_WEI", default=500 * 10**9)
# Public: what the web process knows of the custody wallet (it never holds the key in production).
CUSTODY_ADDRESS = custody_address(CUSTODY_PRIVATE_KEY, env.str("CUSTODY_ADDRESS", default=""))
# The recording and reputation oracle keys sign recordResults / publishPayout / distribute for the campaigns that
# name their addresses (payouts.oracle_keys); only the process that signs holds them (docs/key-lifecycle.md).
RECORDING_ORACLE_PRIVATE_KEY = env.str("RECORDING_ORACLE_PRIVATE_KEY", default="")
REPUTATION_ORACLE_PRIVATE_KEY = env.str("REPUTATION_ORACLE_PRIVATE_KEY", default="")
# Keys a rotation retired that campaigns created before it still name (comma-separated), until those campaigns end.
RECORDING_ORACLE_RETIRED_KEYS: list[str] = env.list("RECORDING_ORACLE_RETIRED_KEYS", default=[])
REPUTATION_ORACLE_RETIRED_KEYS: list[str] = env.list("REPUTATION_ORACLE_RETIRED_KEYS", default=[])
# Public: the oracles' current addresses, which new campaigns name (mrmarket.oracle_addresses); derived from the key
# where a process holds it. The web process, which never holds the keys in production, is given these.
RECORDING_ORACLE_ADDRESS = env.str("RECORDING_ORACLE_ADDRESS", default="")
REPUTATION_ORACLE_ADDRESS = env.str("REPUTATION_ORACLE_ADDRESS", default="")
# The operator's fee on every payout, in basis points of the paid total, taken from the epoch's budget
# (Campaign.publishPayout; at most 1000); paid to the reputation oracle's address. New campaigns name it.
CAMPAIGN_FEE_BPS = env.int("CAMPAIGN_FEE_BPS", default=0)
# An oracle transaction still pending this long is replaced (same nonce) at a gas price this many percent higher,
# never above the cap (wei; 0 = no cap); reaching the cap raises an alert instead.
ORACLE_GAS_BUMP_SECONDS = env.int("ORACLE_GAS_BUMP_SECONDS", default=180)
ORACLE_GAS_BUMP_PERCENT = env.int("ORACLE_GAS_BUMP_PERCENT", default=25)
ORACLE_GAS_PRICE_CAP_WEI = env.int("ORACLE_GAS_PRICE_CAP_WEI", default=500 * 10**9)
EASYENCLAVE_URL = env.str("EASYENCLAVE_URL", default="")
# Which of a service's endpoints (environment → URL) we use, extra discovery tags, and the caches (docs/easyenclave.md).
EASYENCLAVE_ENVIRONMENT = env.str("EASYENCLAVE_ENVIRONMENT", default="production")
EASYENCLAVE_TAGS: list[str] = env.list("EASYENCLAVE_TAGS", default=[])
EASYENCLAVE_VERIFY_SECONDS = env.int("EASYENCLAVE_VERIFY_SECONDS", default=300)
# Verified again at half its lifetime, so the cached verdict never lapses while the control plane passes.
CELERY_BEAT_SCHEDULE["attestation-verify-control-plane"] = {
    "task": "attestation.verify_control_plane",
    "schedule": max(1.0, EASYENCLAVE_VERIFY_SECONDS / 2),
    "options": {"expires": max(1.0, EASYENCLAVE_VERIFY_SECONDS / 2)},
}
EASYENCLAVE_CACHE_SECONDS = env.int("EASYENCLAVE_CACHE_SECONDS", default=30)
EASYENCLAVE_TIMEOUT_SECONDS = env.float("EASYENCLAVE_TIMEOUT_SECONDS", default=5.0)
# A plain-http control-plane URL: the devnet stand-ins only (dev and tests); production refuses to start with it.
EASYENCLAVE_ALLOW_HTTP = env.bool("EASYENCLAVE_ALLOW_HTTP", default=False)
# Hex 32-byte Ed25519 seed with which Django signs job control (ADR 0011). Secret.
CONTROLLER_SIGNING_KEY = env.str("CONTROLLER_SIGNING_KEY", default="")
# How often the beat pulls reports from running jobs, and how long a report may be late before an alert.
EXECUTOR_REPORT_GRACE_SECONDS = env.int("EXECUTOR_REPORT_GRACE_SECONDS", default=300)
# Whether the gate accepts an executor whose attested runtime configuration says dev mode (http exchanges allowed).
EXECUTOR_ACCEPT_DEV_RUNTIME = env.bool("EXECUTOR_ACCEPT_DEV_RUNTIME", default=False)
# Executor reputation (docs/proof.md): an executor whose reported orders the oracle's book does not show, or whose
# fills the exchange does not show, more than this ‰ of those checked (once at least MIN_CHECKED were) ranks last.
EXECUTOR_DEVIATION_TOLERANCE_PERMILLE = env.int("EXECUTOR_DEVIATION_TOLERANCE_PERMILLE", default=50)
EXECUTOR_DEVIATION_MIN_CHECKED = env.int("EXECUTOR_DEVIATION_MIN_CHECKED", default=20)
# Rate limits per attestation identity: new report-signing keys one executor may register in an hour, and reports
# one signing key may push in an hour (docs/proof.md, "Limits").
ATTESTATION_REGISTRATIONS_PER_HOUR = env.int("ATTESTATION_REGISTRATIONS_PER_HOUR", default=12)
REPORTS_PER_IDENTITY_PER_HOUR = env.int("REPORTS_PER_IDENTITY_PER_HOUR", default=3600)
ATTESTATION_NONCE_TTL_SECONDS = env.int("ATTESTATION_NONCE_TTL_SECONDS", default=300)
# DCAP collateral: a PCCS/PCS URL in production; a file (written by the dev quote authority) in dev and tests.
ATTESTATION_PCCS_URL = env.str("ATTESTATION_PCCS_URL", default="")
ATTESTATION_COLLATERAL_FILE = env.str("ATTESTATION_COLLATERAL_FILE", default="")
ATTESTATION_PCCS_TIMEOUT_SECONDS = env.float("ATTESTATION_PCCS_TIMEOUT_SECONDS", default=10.0)
# DER file of the dev quote authority's root CA: accepted only in dev and test (production refuses to start).
ATTESTATION_DEV_ROOT_CA_FILE = env.str("ATTESTATION_DEV_ROOT_CA_FILE", default="")
# Intel Trust Authority tokens as evidence (attestation/ita.py): the JWKS (ITA's `/certs`) and the issuer both set
# turns them on; a token's `aud` is checked only when an audience is set.
ATTESTATION_ITA_JWKS_URL = env.str("ATTESTATION_ITA_JWKS_URL", default="")
ATTESTATION_ITA_ISSUER = env.str("ATTESTATION_ITA_ISSUER", default="")
ATTESTATION_ITA_AUDIENCE = env.str("ATTESTATION_ITA_AUDIENCE", default="")
ATTESTATION_ITA_LEEWAY_SECONDS = env.int("ATTESTATION_ITA_LEEWAY_SECONDS", default=30)
ATTESTATION_ITA_JWKS_CACHE_SECONDS = env.int("ATTESTATION_ITA_JWKS_CACHE_SECONDS", default=3600)
# ITA's token-signing root (PEM or DER file): when set, JWKS keys count only with an x5c chain to it.
ATTESTATION_ITA_ROOT_CA_FILE = env.str("ATTESTATION_ITA_ROOT_CA_FILE", default="")
# An allowlist entry may not pin RTMR3 to zeros (a runtime that measured no workload) where this is on: production.
ATTESTATION_REFUSE_UNMEASURED_WORKLOAD = env.bool("ATTESTATION_REFUSE_UNMEASURED_WORKLOAD", default=False)
# RTMRs every allowlist entry must pin next to the MRTD (docs/attestation.md): the MRTD measures only the firmware.
ATTESTATION_REQUIRED_RTMRS: list[int] = env.list("ATTESTATION_REQUIRED_RTMRS", cast=int, default=[1, 2, 3])
if not set(ATTESTATION_REQUIRED_RTMRS) <= {0, 1, 2, 3}:
    raise ConfigError("ATTESTATION_REQUIRED_RTMRS names registers 0 to 3 only")
# TCB statuses that pass the policy (advisory ids are recorded either way).
ATTESTATION_TCB_ALLOWED: list[str] = env.list("ATTESTATION_TCB_ALLOWED", default=["UpToDate", "SWHardeningNeeded"])
HEALTHCHECK_TIMEOUT_SECONDS = env.float("HEALTHCHECK_TIMEOUT_SECONDS", default=2.0)
READYZ_REQUIRED: list[str] = env.list(
    "READYZ_REQUIRED",
    default=["database", "redis", "broker", "channel_layer", "chain_rpc", "workers", "beat"],
)
# /readyz runs its checks at most once per this many seconds (it is public).
READYZ_CACHE_SECONDS = env.float("READYZ_CACHE_SECONDS", default=5.0)
OUTBOUND_HTTP_TIMEOUT_SECONDS = env.float("OUTBOUND_HTTP_TIMEOUT_SECONDS", default=10.0)

# --- alerts: the rules beat evaluates, and the signed webhook each alert event is delivered to (docs/operators.md)
ALERT_RULES_INTERVAL_SECONDS = env.int("ALERT_RULES_INTERVAL_SECONDS", default=30)
# A side of the book missing (no level inside the campaign's band, or a one-sided book) in this many consecutive
# samples of the oracle's recorder raises `side_missing`: one sample can be a blip, three at 10 s are half a minute.
ALERT_SIDE_MISSING_SAMPLES = env.int("ALERT_SIDE_MISSING_SAMPLES", default=3)
if ALERT_SIDE_MISSING_SAMPLES < 1:
    raise ConfigError("ALERT_SIDE_MISSING_SAMPLES must be 1 or more")
# Empty: no webhook. The URL can be a capability (a chat hook's path): it is masked like a secret in every log.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_SECRET = env.str("ALERT_WEBHOOK_SECRET", default="")  # HMAC-SHA256 key of the signature. Secret.
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_URL.startswith(("https://", "http://")):
    raise ConfigError("ALERT_WEBHOOK_URL must be an http(s) URL")
if ALERT_WEBHOOK_URL and len(ALERT_WEBHOOK_SECRET) < 16:
    raise ConfigError("ALERT_WEBHOOK_SECRET must be set (16 characters or more) when ALERT_WEBHOOK_URL is")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Attempts per event before it is given up (transport failures, 5xx and 429 are retried; the first wait is the
# backoff, doubled after each failure, at most an hour): 10 attempts from 2 s span about 17 minutes.
ALERT_WEBHOOK_MAX_ATTEMPTS = env.int("ALERT_WEBHOOK_MAX_ATTEMPTS", default=10)
ALERT_WEBHOOK_BACKOFF_SECONDS = env.float("ALERT_WEBHOOK_BACKOFF_SECONDS", default=2.0)
if ALERT_WEBHOOK_MAX_ATTEMPTS < 1 or ALERT_WEBHOOK_BACKOFF_SECONDS < 0:
    raise ConfigError("ALERT_WEBHOOK_MAX_ATTEMPTS must be 1 or more and ALERT_WEBHOOK_BACKOFF_SECONDS not negative")
CELERY_BEAT_SCHEDULE["execution-evaluate-alert-rules"] = {
    "task": "execution.evaluate_alert_rules",
    "schedule": float(ALERT_RULES_INTERVAL_SECONDS),
    "options": {"expires": float(ALERT_RULES_INTERVAL_SECONDS)},
}
CELERY_BEAT_SCHEDULE["payouts-evaluate-alert-rules"] = {
    "task": "payouts.evaluate_alert_rules",
    "schedule": float(ALERT_RULES_INTERVAL_SECONDS),
    "options": {"expires": float(ALERT_RULES_INTERVAL_SECONDS)},
}
# The safety net under the webhook: a delivery whose task was lost (a worker died, the broker dropped it) is queued
# again once due.
CELERY_BEAT_SCHEDULE["execution-sweep-alert-webhooks"] = {
    "task": "execution.sweep_alert_webhooks",
    "schedule": 60.0,
    "options": {"expires": 60.0},
}

# --- credentials at rest (envelope encryption; master key from the environment) ----------------------------
CREDENTIALS_MASTER_KEY_ID = env.str("CREDENTIALS_MASTER_KEY_ID", default="k1")

# --- auth and API ------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# How many reverse proxies of ours stand in front of the web process: the client address is the one the
# outermost of them saw (mrmarket/login_security.py). 0: REMOTE_ADDR, X-Forwarded-For ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ConfigError("TRUSTED_PROXY_COUNT must be 0 or more")

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out client before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AUTH_LOCKOUT_FAILURES", default=5)
AUTH_LOCKOUT_BASE_SECONDS = env.int("AUTH_LOCKOUT_BASE_SECONDS", default=300)
AUTH_LOCKOUT_MAX_SECONDS = env.int("AUTH_LOCKOUT_MAX_SECONDS", default=86400)
# A client locked out by address or by username; every failure while locked doubles the wait.
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_COOLOFF_TIME = "mrmarket.login_security.lockout_cooloff"
# Each attempt row expires on its own schedule, so one client's short wait never clears another's long one.
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "mrmarket.login_security.client_ip"
AXES_LOCKOUT_CALLABLE = "mrmarket.login_security.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]
AXES_VERBOSE = False

# Sign-In with Ethereum (mrmarket/siwe.py, docs/participants.md): the authority every message must name (host, and
# port when not the scheme's default), how long an issued nonce may be used, and how far ahead of our clock a
# message's Issued At may be.
SIWE_DOMAIN = env.str("SIWE_DOMAIN", default=ALLOWED_HOSTS[0] if ALLOWED_HOSTS else "localhost")
SIWE_NONCE_TTL_SECONDS = env.int("SIWE_NONCE_TTL_SECONDS", default=600)
SIWE_CLOCK_SKEW_SECONDS = env.int("SIWE_CLOCK_SKEW_SECONDS", default=60)

REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=env.int("API_TOKEN_TTL_SECONDS", default=86400)),
    "AUTO_REFRESH": False,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API call then gets 401 with `WWW-Authenticate: Token`.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default: every view states who may call it (mrmarket.api.permissions.RolePermission).
    "DEFAULT_PERMISSION_CLASSES": ["mrmarket.api.permissions.RolePermission"],
    "DEFAULT_SCHEMA_CLASS": "mrmarket.api.schema.AutoSchema",
    # DRF's three, the JSON one bounding nesting first (a deep body crashed the process: mrmarket/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "mrmarket.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "mrmarket.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("AUTH_THROTTLE_RATE", default="10/min"),
        # Participants (payouts/api/v1/participants.py): nonces per client address, joins per reward address,
        # key enrolments and report pushes per user.
        "participant_nonce": env.str("PARTICIPANT_NONCE_THROTTLE_RATE", default="30/min"),
        "participant_join": env.str("PARTICIPANT_JOIN_THROTTLE_RATE", default="10/hour"),
        "participant_enrol": env.str("PARTICIPANT_ENROL_THROTTLE_RATE", default="10/hour"),
        "participant_reports": env.str("PARTICIPANT_REPORTS_THROTTLE_RATE", default="120/hour"),
        # The site's Sign-In with Ethereum (mrmarket/siwe_views.py): messages asked and sign-ins, per client address.
        "siwe_sign_in": env.str("SIWE_SIGN_IN_THROTTLE_RATE", default="30/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mr.Market API",
    "DESCRIPTION": "Campaigns, market-making orders, attested executors and payouts.",
    "VERSION": "v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    # The default hook, then the error responses every operation has (mrmarket/api/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "mrmarket.api.schema.document_errors"],
}
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- i18n, static ------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "static_root")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))

# --- the recording oracle ---------------------------------------------------------------------------------------
# Where the published inputs and bundles live: "filesystem" (MEDIA_ROOT/oracle) or "s3" (any S3-compatible store
# through django-storages; ORACLE_S3_* name the bucket, endpoint and region, credentials come the usual AWS ways).
ORACLE_ARTIFACTS_STORAGE = env.str("ORACLE_ARTIFACTS_STORAGE", default="filesystem")
if ORACLE_ARTIFACTS_STORAGE == "filesystem":
    _ORACLE_STORAGE: dict[str, Any] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "oracle")},
    }
elif ORACLE_ARTIFACTS_STORAGE == "s3":
    _ORACLE_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("ORACLE_S3_BUCKET"),
            "endpoint_url": env.str("ORACLE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("ORACLE_S3_REGION", default="") or None,
            "location": env.str("ORACLE_S3_PREFIX", default="oracle"),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    raise ConfigError("ORACLE_ARTIFACTS_STORAGE must be 'filesystem' or 's3'")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "oracle_artifacts": _ORACLE_STORAGE,
}
# The public origin of this deployment: the bundle URI put on chain with recordResults is built on it.
ORACLE_PUBLIC_BASE_URL = env.str("ORACLE_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# How long after an epoch's end reports may still arrive (the executor's pull cadence plus its own window).
ORACLE_REPORT_GRACE_SECONDS = env.int("ORACLE_REPORT_GRACE_SECONDS", default=600)
# A worker building an epoch's inputs holds it this long; a crashed worker's close is taken over after it.
ORACLE_CLOSE_LEASE_SECONDS = env.int("ORACLE_CLOSE_LEASE_SECONDS", default=900)
# The participants' running estimate of the open epoch (a full score of the epoch so far, cross-checks included).
CELERY_BEAT_SCHEDULE["payouts-preview-epochs"] = {
    "task": "payouts.preview_epochs",
    "schedule": float(env.int("ORACLE_PREVIEW_INTERVAL_SECONDS", default=300)),
    "options": {"expires": float(env.int("ORACLE_PREVIEW_INTERVAL_SECONDS", default=300))},
}
CELERY_BEAT_SCHEDULE["payouts-close-epochs"] = {
    "task": "payouts.close_epochs",
    "schedule": float(env.int("ORACLE_CLOSE_INTERVAL_SECONDS", default=60)),
    "options": {"expires": float(env.int("ORACLE_CLOSE_INTERVAL_SECONDS", default=60))},
}

# The reputation oracle (payouts.paying): publish each recorded epoch's root, then push its leaves in batches. A
# batch's gas limit stays under the cap (Ethereum's per-transaction cap is 16,777,216); at most this many batches of
# one epoch wait to be mined at a time.
PAYOUT_BATCH_GAS_CAP = env.int("PAYOUT_BATCH_GAS_CAP", default=12_000_000)
PAYOUT_BATCHES_IN_FLIGHT = env.int("PAYOUT_BATCHES_IN_FLIGHT", default=2)
if PAYOUT_BATCH_GAS_CAP < 200_000 or PAYOUT_BATCHES_IN_FLIGHT < 1:
    raise ConfigError("PAYOUT_BATCH_GAS_CAP must be at least 200000 and PAYOUT_BATCHES_IN_FLIGHT at least 1")
# The health check oracle_keys fails when an oracle key this process signs with holds less ether than this.
ORACLE_MIN_BALANCE_WEI = env.int("ORACLE_MIN_BALANCE_WEI", default=10**16)
# A payout still open this long after it was opened raises an alert (payout_stalled).
PAYOUT_STALL_SECONDS = env.int("PAYOUT_STALL_SECONDS", default=3600)
# Every oracle transaction still unsettled this long after it was signed is advanced by the sweep, whatever
# signed it (a signed nonce left unsent would block every later transaction of its key).
ORACLE_TX_SWEEP_AFTER_SECONDS = env.int("ORACLE_TX_SWEEP_AFTER_SECONDS", default=120)
CELERY_BEAT_SCHEDULE["payouts-sweep-oracle-txs"] = {
    "task": "payouts.sweep_oracle_txs",
    "schedule": 60.0,
    "options": {"expires": 60.0},
}
CELERY_BEAT_SCHEDULE["payouts-pay-epochs"] = {
    "task": "payouts.pay_epochs",
    "schedule": float(env.int("ORACLE_PAYOUT_INTERVAL_SECONDS", default=30)),
    "options": {"expires": float(env.int("ORACLE_PAYOUT_INTERVAL_SECONDS", default=30))},
}

# --- logging -----------------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in {"json", "console"}:
    raise ConfigError("LOG_FORMAT must be 'json' or 'console'")
LOGGING_CONFIG = None  # configure_logging owns the stdlib and structlog setup
configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT, version=VERSION)

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Same-origin everything: no inline script, no third-party origin (the admin and our pages load only /static/).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
