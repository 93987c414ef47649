"""The addresses a new campaign names as its oracles and fee recipient. Only the worker that signs holds an oracle's
key (payouts.oracle_keys); the web process, which prepares campaigns for creators' wallets, knows the oracles by
their public addresses (`RECORDING_ORACLE_ADDRESS`, `REPUTATION_ORACLE_ADDRESS`), derived from the key instead
where a process holds both (dev, tests) and checked to match."""

from __future__ import annotations

from typing import Literal

from django.conf import settings

from mrmarket.config import key_address
from mrmarket.errors import ApplicationError

OracleRole = Literal["recording", "reputation"]


class OracleAddressNotConfigured(ApplicationError):
    code = "oracle_address_not_configured"
    status = 503


def oracle_address(role: OracleRole) -> str:
    """The role's current address (checksummed): the one new campaigns name."""
    prefix = role.upper()
    address = key_address(
        getattr(settings, f"{prefix}_ORACLE_PRIVATE_KEY", ""),
        getattr(settings, f"{prefix}_ORACLE_ADDRESS", ""),
        key_name=f"{prefix}_ORACLE_PRIVATE_KEY",
        address_name=f"{prefix}_ORACLE_ADDRESS",
    )
    if not address:
        raise OracleAddressNotConfigured(
            f"this site does not know the {role} oracle's address ({prefix}_ORACLE_ADDRESS)", extra={"role": role}
        )
    return address
