"""Which assets the custody wallet holds, where it is, and the base-unit scale each asset is booked in.

Read by every step that converts or books an amount (order creation, both legs of the funds flow, report
booking, reconciliation, the admin); settings only, no chain or exchange call.
"""

from __future__ import annotations

from django.conf import settings
from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3

from execution.domain.ledger import NON_CUSTODY_DECIMALS
from execution.errors import CustodyNotConfigured


def custody_wallet_address() -> str:
    """The custody wallet: from its key where this process holds it (worker, beat), else its configured address
    (the production web process never holds the key)."""
    if settings.CUSTODY_PRIVATE_KEY:
        return str(Account.from_key(settings.CUSTODY_PRIVATE_KEY).address)
    return str(settings.CUSTODY_ADDRESS)


def custody_asset(asset: str) -> tuple[ChecksumAddress, int]:
    spec = settings.CUSTODY_ASSETS.get(asset)
    if not spec or not custody_wallet_address():
        raise CustodyNotConfigured(f"the custody wallet does not hold {asset} (CUSTODY_ASSETS, CUSTODY_ADDRESS)")
    return Web3.to_checksum_address(str(spec["token"])), int(str(spec["decimals"]))


def is_custody_asset(asset: str) -> bool:
    return asset in settings.CUSTODY_ASSETS


def asset_decimals(asset: str) -> int:
    """The base-unit scale the ledger books `asset` in: the custody token's decimals, or `NON_CUSTODY_DECIMALS`
    for an asset custody does not hold (a fee paid in BNB, a base bought that custody cannot take home)."""
    spec = settings.CUSTODY_ASSETS.get(asset)
    return int(str(spec["decimals"])) if spec else NON_CUSTODY_DECIMALS
