"""Production. Refuses to start unless every required variable is set and no secret is a dev or weak value;
see docs/configuration.md."""

from __future__ import annotations

import os
import re

from mrmarket.config import (
    DEV_CONTROLLER_SIGNING_KEY,
    DEV_CREDENTIALS_SIGNING_KEY,
    DEV_MASTER_KEY,
    ConfigError,
    ed25519_public_hex,
    missing_variables,
    parse_controller_key,
    parse_key_ring,
    parse_master_key,
    parse_public_key,
    parse_verify_keys,
    require_custody_key,
    require_protected_redis,
    require_strong_key_bytes,
    require_strong_secret_key,
)

# The public web process seals credentials for the master key's public half and never holds the key itself
# (ADR 0015); every other process (worker, beat, a management command) holds the master key.
REQUIRED = [
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CREDENTIALS_MASTER_KEY",
    "CONTROLLER_SIGNING_KEY",
    "METRICS_TOKEN",
]
if os.environ.get("MRMARKET_PROCESS", "all") == "web":
    REQUIRED[REQUIRED.index("CREDENTIALS_MASTER_KEY")] = "CREDENTIALS_PUBLIC_KEY"
# Credential rows are signed by whoever writes them (web: enrolment; worker and commands: rewrap) and checked
# by whoever opens them (worker, beat, commands): a database writer holds neither key.
if os.environ.get("MRMARKET_PROCESS", "all") in ("web", "worker", "all"):
    REQUIRED.append("CREDENTIALS_SIGNING_KEY")
if os.environ.get("MRMARKET_PROCESS", "all") != "web":
    REQUIRED.append("CREDENTIALS_VERIFY_KEYS")
_missing = missing_variables(os.environ, REQUIRED)
if _missing:
    raise ConfigError(
        "mrmarket.settings.prod: missing required environment variables: "
        + ", ".join(_missing)
        + " (see docs/configuration.md)"
    )

from execution.domain.envelope import public_key_of  # noqa: E402
from mrmarket.config import custody_address  # noqa: E402

from .base import *  # noqa: E402, F403
from .base import (  # noqa: E402
    ALLOWED_HOSTS,
    CELERY_BROKER_URL,
    CREDENTIALS_MASTER_KEY_ID,
    CUSTODY_ASSETS,
    PROCESS_ROLE,
    REDIS_URL,
    env,
)

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ConfigError("DEBUG must be off in the prod profile")
SECRET_KEY = env.str("SECRET_KEY")
require_strong_secret_key("SECRET_KEY", SECRET_KEY)
if "*" in ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS must name the hosts served; the prod profile refuses '*'")
require_protected_redis("REDIS_URL", REDIS_URL)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    require_protected_redis("CELERY_BROKER_URL", CELERY_BROKER_URL)
METRICS_TOKEN = env.str("METRICS_TOKEN")
if len(METRICS_TOKEN) < 32:
    raise ConfigError("METRICS_TOKEN is weak: use at least 32 random characters")
if env.str("ATTESTATION_DEV_ROOT_CA_FILE", default="") or env.str("ATTESTATION_COLLATERAL_FILE", default=""):
    raise ConfigError(
        "the prod profile refuses the dev quote authority (ATTESTATION_DEV_ROOT_CA_FILE / _COLLATERAL_FILE)"
    )
_ita_jwks = env.str("ATTESTATION_ITA_JWKS_URL", default="")
if _ita_jwks and not _ita_jwks.startswith("https://"):
    raise ConfigError("the prod profile fetches the Intel Trust Authority JWKS over https only")
if env.bool("EASYENCLAVE_ALLOW_HTTP", default=False) or env.str("EASYENCLAVE_URL", default="").startswith("http://"):
    raise ConfigError("the prod profile reaches the EasyEnclave control plane over https only (EASYENCLAVE_URL)")
if not {1, 2, 3} <= set(env.list("ATTESTATION_REQUIRED_RTMRS", cast=int, default=[1, 2, 3])):
    raise ConfigError("the prod profile pins RTMR1-3 in every allowlist entry (ATTESTATION_REQUIRED_RTMRS)")
if env.bool("EXECUTOR_ACCEPT_DEV_RUNTIME", default=False):
    raise ConfigError("the prod profile never accepts executors running in dev mode (EXECUTOR_ACCEPT_DEV_RUNTIME)")
# An allowlist entry pinning RTMR3 to zeros (no workload measured) would admit any workload on that runtime.
ATTESTATION_REFUSE_UNMEASURED_WORKLOAD = True

CONTROLLER_SIGNING_KEY = env.str("CONTROLLER_SIGNING_KEY")
require_strong_key_bytes(
    "CONTROLLER_SIGNING_KEY",
    parse_controller_key("CONTROLLER_SIGNING_KEY", CONTROLLER_SIGNING_KEY),
    dev=bytes.fromhex(DEV_CONTROLLER_SIGNING_KEY),
)
_dev_master = parse_master_key("dev master key", DEV_MASTER_KEY)
if PROCESS_ROLE == "web":
    # Refused rather than ignored: a variable in the environment is readable by whatever runs in the process.
    for _name, _instead in (
        ("CREDENTIALS_MASTER_KEY", "it seals credentials with CREDENTIALS_PUBLIC_KEY alone"),
        ("CREDENTIALS_RETIRED_KEYS", "it seals credentials with CREDENTIALS_PUBLIC_KEY alone"),
        ("CUSTODY_PRIVATE_KEY", "it knows the custody wallet by CUSTODY_ADDRESS"),
        ("RECORDING_ORACLE_PRIVATE_KEY", "only the worker that records results signs with it"),
        ("REPUTATION_ORACLE_PRIVATE_KEY", "only the worker that publishes payouts signs with it"),
        ("RECORDING_ORACLE_RETIRED_KEYS", "only the worker that records results signs with them"),
        ("REPUTATION_ORACLE_RETIRED_KEYS", "only the worker that publishes payouts signs with them"),
    ):
        if env.str(_name, default=""):
            raise ConfigError(f"the web process is never given {_name}: {_instead}")
    CREDENTIALS_MASTER_KEY = b""
    CREDENTIALS_MASTER_KEYS: dict[str, bytes] = {}
    CREDENTIALS_PUBLIC_KEY = parse_public_key("CREDENTIALS_PUBLIC_KEY", env.str("CREDENTIALS_PUBLIC_KEY"))
    if public_key_of(_dev_master) == CREDENTIALS_PUBLIC_KEY:
        raise ConfigError("CREDENTIALS_PUBLIC_KEY is the dev value; generate a random master key for production")
else:
    CREDENTIALS_MASTER_KEY = parse_master_key("CREDENTIALS_MASTER_KEY", env.str("CREDENTIALS_MASTER_KEY"))
    require_strong_key_bytes("CREDENTIALS_MASTER_KEY", CREDENTIALS_MASTER_KEY, dev=_dev_master)
    # Every master key that may still wrap a stored credential: the current one and retired ones during rotation.
    CREDENTIALS_MASTER_KEYS = {
        **parse_key_ring("CREDENTIALS_RETIRED_KEYS", env.str("CREDENTIALS_RETIRED_KEYS", default="")),
        CREDENTIALS_MASTER_KEY_ID: CREDENTIALS_MASTER_KEY,
    }
    for _key_id, _key in CREDENTIALS_MASTER_KEYS.items():
        require_strong_key_bytes(f"CREDENTIALS_MASTER_KEYS ({_key_id})", _key, dev=_dev_master)
    CREDENTIALS_PUBLIC_KEY = public_key_of(CREDENTIALS_MASTER_KEY)
    _declared_public = env.str("CREDENTIALS_PUBLIC_KEY", default="")
    if _declared_public and parse_public_key("CREDENTIALS_PUBLIC_KEY", _declared_public) != CREDENTIALS_PUBLIC_KEY:
        # The web process would seal rows for a key no worker holds.
        raise ConfigError("CREDENTIALS_PUBLIC_KEY is not the public half of CREDENTIALS_MASTER_KEY")

# The credentials enrolment key vouches for every credential row written (ADR 0015); its public halves are what
# the openers trust. Several verification keys during a rotation of the enrolment key.
_dev_row_seed = bytes.fromhex(DEV_CREDENTIALS_SIGNING_KEY)
CREDENTIALS_SIGNING_KEY = env.str("CREDENTIALS_SIGNING_KEY", default="").strip()
if CREDENTIALS_SIGNING_KEY:
    require_strong_key_bytes(
        "CREDENTIALS_SIGNING_KEY",
        parse_controller_key("CREDENTIALS_SIGNING_KEY", CREDENTIALS_SIGNING_KEY),
        dev=_dev_row_seed,
    )
CREDENTIALS_VERIFY_KEYS = parse_verify_keys("CREDENTIALS_VERIFY_KEYS", env.str("CREDENTIALS_VERIFY_KEYS", default=""))
if PROCESS_ROLE != "web" and not CREDENTIALS_VERIFY_KEYS:
    raise ConfigError("CREDENTIALS_VERIFY_KEYS names no key: the worker and beat would trust no credential row")
if ed25519_public_hex(_dev_row_seed) in CREDENTIALS_VERIFY_KEYS:
    raise ConfigError("CREDENTIALS_VERIFY_KEYS holds the dev key's public half: anyone can sign rows with it")
_signer = ed25519_public_hex(bytes.fromhex(CREDENTIALS_SIGNING_KEY)) if CREDENTIALS_SIGNING_KEY else ""
if _signer and CREDENTIALS_VERIFY_KEYS and _signer not in CREDENTIALS_VERIFY_KEYS:
    # Rows this process signs (rewrap) would be refused by every opener.
    raise ConfigError("CREDENTIALS_VERIFY_KEYS does not hold the public half of CREDENTIALS_SIGNING_KEY")

# The custody key signs on-chain transfers out of custody: only the worker and beat hold it. The public web
# process knows the custody wallet by its address alone (CUSTODY_ADDRESS) and never reads the key.
if PROCESS_ROLE == "web":
    CUSTODY_PRIVATE_KEY = ""
    CUSTODY_ADDRESS = custody_address("", env.str("CUSTODY_ADDRESS", default=""))
    if CUSTODY_ASSETS and not CUSTODY_ADDRESS:
        raise ConfigError("CUSTODY_ASSETS is set: the web process needs CUSTODY_ADDRESS (it never holds the key)")
else:
    CUSTODY_PRIVATE_KEY = env.str("CUSTODY_PRIVATE_KEY", default="")
    if CUSTODY_PRIVATE_KEY:
        require_custody_key("CUSTODY_PRIVATE_KEY", CUSTODY_PRIVATE_KEY)
    CUSTODY_ADDRESS = custody_address(CUSTODY_PRIVATE_KEY, env.str("CUSTODY_ADDRESS", default=""))

# The oracle keys: no default, and never on the web process (refused above). A worker that signs for an oracle is
# given its key; the others run without it and raise OracleKeyNotConfigured if asked to sign.
if PROCESS_ROLE == "web":
    RECORDING_ORACLE_PRIVATE_KEY = ""
    REPUTATION_ORACLE_PRIVATE_KEY = ""
    RECORDING_ORACLE_RETIRED_KEYS: list[str] = []
    REPUTATION_ORACLE_RETIRED_KEYS: list[str] = []
else:
    RECORDING_ORACLE_PRIVATE_KEY = env.str("RECORDING_ORACLE_PRIVATE_KEY", default="")
    REPUTATION_ORACLE_PRIVATE_KEY = env.str("REPUTATION_ORACLE_PRIVATE_KEY", default="")
    RECORDING_ORACLE_RETIRED_KEYS = env.list("RECORDING_ORACLE_RETIRED_KEYS", default=[])
    REPUTATION_ORACLE_RETIRED_KEYS = env.list("REPUTATION_ORACLE_RETIRED_KEYS", default=[])
    for _name, _value in (
        ("RECORDING_ORACLE_PRIVATE_KEY", RECORDING_ORACLE_PRIVATE_KEY),
        ("REPUTATION_ORACLE_PRIVATE_KEY", REPUTATION_ORACLE_PRIVATE_KEY),
        *(("RECORDING_ORACLE_RETIRED_KEYS", _key) for _key in RECORDING_ORACLE_RETIRED_KEYS),
        *(("REPUTATION_ORACLE_RETIRED_KEYS", _key) for _key in REPUTATION_ORACLE_RETIRED_KEYS),
    ):
        if _value:
            require_custody_key(_name, _value)
            if _value.strip().lower().removeprefix("0x") == CUSTODY_PRIVATE_KEY.strip().lower().removeprefix("0x"):
                raise ConfigError(f"{_name} is the custody key: each role signs with its own key")

# Cookies travel over TLS only, with no switch: production is served over https (docs/deploy.md).
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The header the TLS-terminating proxy sets to tell Django the request came over https; empty when Django is
# reached directly (then no client can claim https with a header). Trusted only because the proxy overwrites it.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto").strip()
if _proxy_ssl_header and not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
    raise ConfigError("SECURE_PROXY_SSL_HEADER must be a header name (letters, digits, '-') or empty")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
if SECURE_HSTS_SECONDS < 0:
    raise ConfigError("SECURE_HSTS_SECONDS must be 0 (no HSTS) or a positive number of seconds")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_REFERRER_POLICY = "same-origin"
