"""Production. Refuses to start unless every required variable is set; see docs/configuration.md."""

from __future__ import annotations

import os

from mrmarket.config import ConfigError, missing_variables, parse_key_ring, parse_master_key

REQUIRED = ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "CREDENTIALS_MASTER_KEY"]
_missing = missing_variables(os.environ, REQUIRED)
if _missing:
    raise ConfigError(
        "mrmarket.settings.prod: missing required environment variables: "
        + ", ".join(_missing)
        + " (see docs/configuration.md)"
    )

from .base import *  # noqa: E402, F403
from .base import CREDENTIALS_MASTER_KEY_ID, env  # noqa: E402

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ConfigError("DEBUG must be off in the prod profile")
SECRET_KEY = env.str("SECRET_KEY")
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
if env.bool("EXECUTOR_ALLOW_UNATTESTED", default=False):
    raise ConfigError("the prod profile never hands credentials to unattested executors (EXECUTOR_ALLOW_UNATTESTED)")
if env.bool("EXECUTOR_ACCEPT_DEV_RUNTIME", default=False):
    raise ConfigError("the prod profile never accepts executors running in dev mode (EXECUTOR_ACCEPT_DEV_RUNTIME)")
# Production routes only to attested executors: the gate verifies each one before every secret delivery.
EXECUTOR_ATTESTATION_GATE = env.str("EXECUTOR_ATTESTATION_GATE", default="attestation.gate.attested_identity")
CREDENTIALS_MASTER_KEY = parse_master_key("CREDENTIALS_MASTER_KEY", env.str("CREDENTIALS_MASTER_KEY"))

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
# Every master key that may still wrap a stored credential: the current one and retired ones during rotation.
CREDENTIALS_MASTER_KEYS = {
    **parse_key_ring("CREDENTIALS_RETIRED_KEYS", env.str("CREDENTIALS_RETIRED_KEYS", default="")),
    CREDENTIALS_MASTER_KEY_ID: CREDENTIALS_MASTER_KEY,
}
