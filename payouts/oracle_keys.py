"""The oracle signing keys, read from settings only by the process that signs (never stored, never logged: the
core app registers them with the redaction layer at start)."""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount

from payouts.errors import OracleKeyNotConfigured

OracleRole = Literal["recording", "reputation"]

_SETTING: dict[str, str] = {
    "recording": "RECORDING_ORACLE_PRIVATE_KEY",
    "reputation": "REPUTATION_ORACLE_PRIVATE_KEY",
}


def oracle_signer(role: OracleRole) -> LocalAccount:
    name = _SETTING.get(role)
    if name is None:
        raise OracleKeyNotConfigured(f"there is no oracle role {role!r}", extra={"role": role})
    key = getattr(settings, name, "")
    if not key:
        raise OracleKeyNotConfigured(f"this process holds no {role} oracle key ({name})", extra={"role": role})
    try:
        return Account.from_key(key)
    except (ValueError, TypeError):
        # The message never carries the value: a malformed key is still most of a key.
        raise OracleKeyNotConfigured(f"{name} is not a valid private key", extra={"role": role}) from None
