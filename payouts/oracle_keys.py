"""The oracle signing keys, read from settings only by the process that signs (never stored, never logged: the
core app registers them with the redaction layer at start).

Each role has one current key, which new campaigns name, and may hold retired keys: a campaign names its oracle
addresses for good, so a campaign created before a rotation is served by the key it names until it is over
(docs/key-lifecycle.md)."""

from __future__ import annotations

from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount

from mrmarket.oracle_addresses import OracleRole
from payouts.errors import OracleKeyNotConfigured

_SETTINGS: dict[str, tuple[str, str]] = {
    "recording": ("RECORDING_ORACLE_PRIVATE_KEY", "RECORDING_ORACLE_RETIRED_KEYS"),
    "reputation": ("REPUTATION_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_RETIRED_KEYS"),
}


def oracle_signer(role: OracleRole, *, address: str | None = None) -> LocalAccount:
    """The role's current key; with `address`, whichever of its keys (current or retired) signs as that address."""
    names = _SETTINGS.get(role)
    if names is None:
        raise OracleKeyNotConfigured(f"there is no oracle role {role!r}", extra={"role": role})
    current_name, retired_name = names
    current = getattr(settings, current_name, "")
    if address is None:
        if not current:
            raise OracleKeyNotConfigured(
                f"this process holds no {role} oracle key ({current_name})", extra={"role": role}
            )
        return _account(current, current_name, role)
    for key, name in [(current, current_name)] + [(k, retired_name) for k in getattr(settings, retired_name, [])]:
        if key:
            account = _account(key, name, role)
            if account.address.lower() == address.lower():
                return account
    raise OracleKeyNotConfigured(
        f"this process holds no {role} oracle key for {address}", extra={"role": role, "address": address}
    )


def _account(key: str, name: str, role: str) -> LocalAccount:
    try:
        return Account.from_key(key)
    except (ValueError, TypeError):
        # The message never carries the value: a malformed key is still most of a key.
        raise OracleKeyNotConfigured(
            f"{name} holds a key that is not a valid private key", extra={"role": role}
        ) from None


def oracle_addresses(role: OracleRole) -> list[str]:
    """The lower-case addresses this process can sign as for the role (current key first, then retired ones);
    empty when it holds none (a process that does not sign)."""
    current_name, retired_name = _SETTINGS[role]
    keys = [getattr(settings, current_name, ""), *getattr(settings, retired_name, [])]
    return [_account(k, current_name, role).address.lower() for k in keys if k]
