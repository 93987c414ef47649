"""Local development on the embedded defaults (SQLite, the launcher's Redis, Anvil, devnet stand-ins)."""

from __future__ import annotations

from execution.domain.envelope import public_key_of
from mrmarket.config import (
    DEV_CONTROLLER_SIGNING_KEY,
    DEV_CREDENTIALS_SIGNING_KEY,
    DEV_CUSTODY_PRIVATE_KEY,
    DEV_MASTER_KEY,
    DEV_ORACLE_PRIVATE_KEY,
    DEV_SECRET_KEY,
    custody_address,
    ed25519_public_hex,
    parse_key_ring,
    parse_master_key,
    parse_verify_keys,
)

from .base import *  # noqa: F403
from .base import CREDENTIALS_MASTER_KEY_ID, env

DEBUG = env.bool("DEBUG", default=True)
# Dev-only values: the prod profile refuses to start without real ones.
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
# Anvil's public dev account 3; production takes the custody key from its secret store (docs/threat-model.md).
CUSTODY_PRIVATE_KEY = env.str("CUSTODY_PRIVATE_KEY", default=DEV_CUSTODY_PRIVATE_KEY)
CUSTODY_ADDRESS = custody_address(CUSTODY_PRIVATE_KEY, env.str("CUSTODY_ADDRESS", default=""))
# Anvil's public dev account 2, the oracle the demo campaign names (devnet.protocol); production injects real keys
# into the signing worker only.
RECORDING_ORACLE_PRIVATE_KEY = env.str("RECORDING_ORACLE_PRIVATE_KEY", default=DEV_ORACLE_PRIVATE_KEY)
REPUTATION_ORACLE_PRIVATE_KEY = env.str("REPUTATION_ORACLE_PRIVATE_KEY", default=DEV_ORACLE_PRIVATE_KEY)
# Dev-only controller key (its public half is what dev executors pin); production sets a secret one.
CONTROLLER_SIGNING_KEY = env.str("CONTROLLER_SIGNING_KEY", default=DEV_CONTROLLER_SIGNING_KEY)
# The devnet's EasyEnclave stand-in listens on plain http (its answers are signed all the same).
EASYENCLAVE_ALLOW_HTTP = env.bool("EASYENCLAVE_ALLOW_HTTP", default=True)
EXECUTOR_ACCEPT_DEV_RUNTIME = env.bool("EXECUTOR_ACCEPT_DEV_RUNTIME", default=True)  # the devnet exchange is http
CREDENTIALS_MASTER_KEY = parse_master_key(
    "CREDENTIALS_MASTER_KEY",
    env.str("CREDENTIALS_MASTER_KEY", default=DEV_MASTER_KEY),
)
# Every master key that may still wrap a stored credential: the current one and retired ones during rotation.
CREDENTIALS_MASTER_KEYS = {
    **parse_key_ring("CREDENTIALS_RETIRED_KEYS", env.str("CREDENTIALS_RETIRED_KEYS", default="")),
    CREDENTIALS_MASTER_KEY_ID: CREDENTIALS_MASTER_KEY,
}
# Every dev process holds both halves (one machine, public dev keys); prod gives the web process the public one only.
CREDENTIALS_PUBLIC_KEY = public_key_of(CREDENTIALS_MASTER_KEY)
# Dev-only enrolment key: it signs every credential row written; openers trust its public half (ADR 0015).
CREDENTIALS_SIGNING_KEY = env.str("CREDENTIALS_SIGNING_KEY", default=DEV_CREDENTIALS_SIGNING_KEY)
CREDENTIALS_VERIFY_KEYS = parse_verify_keys(
    "CREDENTIALS_VERIFY_KEYS",
    env.str("CREDENTIALS_VERIFY_KEYS", default="") or ed25519_public_hex(bytes.fromhex(CREDENTIALS_SIGNING_KEY)),
)
