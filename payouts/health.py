"""The payouts app's health checks (registered from PayoutsConfig.ready()); they only read."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from web3 import Web3

from mrmarket import health
from mrmarket.chain import get_web3
from payouts.oracle_keys import oracle_addresses

RECORDER_HEARTBEAT_PREFIX = "recorder:"  # the component names `payouts.recorder.Recorder` writes


def check_recorder() -> tuple[health.State, str]:
    """Every market-data recorder shard seen recently is alive (its heartbeat fresh)."""
    return health.shards_alive(RECORDER_HEARTBEAT_PREFIX, "recorder")


def check_oracle_keys() -> tuple[health.State, str]:
    """Every oracle key this process signs with holds enough ether for its transactions (`ORACLE_MIN_BALANCE_WEI`):
    a key without gas fails every broadcast, and every epoch waits behind it."""
    held = [(role, address) for role in ("recording", "reputation") for address in oracle_addresses(role)]
    if not held:
        return "not_configured", "this process holds no oracle key"
    w3 = get_web3()
    low, seen = [], []
    for role, address in held:
        balance = int(w3.eth.get_balance(Web3.to_checksum_address(address)))
        text = f"{role} {address} {Decimal(balance).scaleb(-18).normalize():f} ETH"
        seen.append(text)
        if balance < settings.ORACLE_MIN_BALANCE_WEI:
            low.append(text)
    minimum = f"{Decimal(settings.ORACLE_MIN_BALANCE_WEI).scaleb(-18).normalize():f} ETH"
    if low:
        return "fail", f"below {minimum}: {', '.join(low)}"
    return "ok", ", ".join(seen)


def register_checks() -> None:
    health.register("recorder", check_recorder)
    health.register("oracle_keys", check_oracle_keys)
