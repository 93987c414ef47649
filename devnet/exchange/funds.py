"""Funds on chain: deposit addresses, deposits credited after N confirmations (reorg-safe), and withdrawals
sent as ERC-20 transfers from the hot wallet, moving processing → completed / failed.

Deposits. Each poll rescans the last `confirmations + REORG_DEPTH` blocks for Transfer logs to a deposit
address, and re-checks every pending deposit's transaction receipt: a deposit counts its confirmations from the
block that holds it *now*, and one whose transaction left the chain (reorg) is dropped before it is credited.
A deposit is credited exactly once, keyed by (tx hash, log index).

Withdrawals. Applying debits the free balance at once (Binance's "Processing", status 4); the worker then sends
the transfer, and the withdrawal completes (6) when its receipt succeeds, or fails (5) and is refunded when the
send or the transaction fails, or when a `withdrawal_failure` fault is active for the account.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from devnet.exchange.chain import ChainClient, address_of, derive_deposit_key
from devnet.exchange.config import ChainConfig
from devnet.exchange.domain import errors
from devnet.exchange.domain.engine import Engine
from devnet.exchange.domain.model import ASSET_EXP, ZERO, fmt
from devnet.exchange.faults import FaultKind, FaultRegistry

log = logging.getLogger("devnet.exchange.funds")

NETWORK = "ETH"  # Binance's network id for ERC-20 (ccxt maps its "ERC20" code to it)
REORG_DEPTH = 12


class DepositStatus:
    PENDING = 0
    SUCCESS = 1


class WithdrawStatus:
    PROCESSING = 4
    FAILURE = 5
    COMPLETED = 6


@dataclass
class Deposit:
    deposit_id: str
    account_id: str
    coin: str
    amount: Decimal
    address: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    insert_time: int
    confirmations: int = 0
    status: int = DepositStatus.PENDING


@dataclass
class Withdrawal:
    withdraw_id: str
    account_id: str
    coin: str
    amount: Decimal
    fee: Decimal
    address: str
    apply_time: int
    withdraw_order_id: str | None
    status: int = WithdrawStatus.PROCESSING
    tx_id: str = ""
    info: str = ""
    complete_time: int | None = None


def not_open() -> errors.ExchangeError:
    return errors.ExchangeError(-4019, "Current asset is not open for withdrawal.")


def unknown_coin() -> errors.ExchangeError:
    return errors.ExchangeError(-4018, "We don't have this asset.")


def _clock_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class Funds:
    def __init__(
        self,
        config: ChainConfig,
        *,
        engine: Engine,
        faults: FaultRegistry,
        clock: Callable[[], int],
        fees: Mapping[str, Decimal],
        client: ChainClient | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.faults = faults
        self.clock = clock
        self.fees = dict(fees)
        self.client = client or ChainClient(config.rpc_url, hot_wallet_key=config.hot_wallet_key)
        self.tokens = {coin: addr for coin, addr in config.assets.items()}
        self._coin_by_token = {addr.lower(): coin for coin, addr in config.assets.items()}
        self._decimals: dict[str, int] = {}
        self._addresses: dict[str, str] = {}  # account → deposit address
        self._owners: dict[str, str] = {}  # lower-case address → account
        self.deposits: dict[tuple[str, int], Deposit] = {}
        self.withdrawals: dict[str, Withdrawal] = {}
        self._by_withdraw_order_id: dict[tuple[str, str], str] = {}
        self._scanned = -1
        self._next_id = 1
        self._lock = threading.RLock()
        # One watcher/sender pass at a time: the background worker and the admin poll endpoint may both run a
        # pass, and two concurrent passes would both act on the same pending deposit or unsent withdrawal.
        self._pass_lock = threading.Lock()

    @property
    def hot_wallet(self) -> str:
        return self.client.hot_address

    def decimals(self, coin: str) -> int:
        if coin not in self._decimals:
            self._decimals[coin] = self.client.decimals(self.tokens[coin])
        return self._decimals[coin]

    def _id(self) -> str:
        self._next_id += 1
        return f"{self._next_id:020d}"

    # -- deposits --------------------------------------------------------------------------------------------

    def deposit_address(self, account_id: str, coin: str) -> str:
        if coin not in self.tokens:
            raise unknown_coin()
        with self._lock:
            address = self._addresses.get(account_id)
            if address is None:
                address = address_of(derive_deposit_key(self.config.address_seed, account_id))
                self._addresses[account_id] = address
                self._owners[address.lower()] = account_id
            return address

    def poll_deposits(self) -> None:
        """One pass of the watcher (blocking: call it off the event loop)."""
        with self._pass_lock:
            self._poll_deposits()

    def _poll_deposits(self) -> None:
        client = self.client
        latest = client.latest()
        with self._lock:
            # Watch every customer account's address, whether or not it was asked for yet.
            first_coin = next(iter(self.tokens), None)
            for account_id in list(self.engine.accounts):
                if account_id.startswith("acct-") and first_coin is not None:
                    self.deposit_address(account_id, first_coin)
            start = max(0, min(self._scanned + 1, latest - self.config.confirmations - REORG_DEPTH))
            addresses = list(self._addresses.values())
        for entry in client.transfers_to(list(self.tokens.values()), addresses, start, latest):
            coin = self._coin_by_token.get(entry.token.lower())
            owner = self._owners.get(entry.to.lower())
            if coin is None or owner is None:
                continue
            key = (entry.tx_hash, entry.log_index)
            with self._lock:
                if key in self.deposits:
                    continue
                amount = (Decimal(entry.value) / (Decimal(10) ** self.decimals(coin))).quantize(
                    ASSET_EXP, rounding=ROUND_DOWN
                )
                self.deposits[key] = Deposit(
                    deposit_id=self._id(),
                    account_id=owner,
                    coin=coin,
                    amount=amount,
                    address=entry.to,
                    tx_hash=entry.tx_hash,
                    log_index=entry.log_index,
                    block_number=entry.block_number,
                    block_hash=entry.block_hash,
                    insert_time=self.clock(),
                )
        with self._lock:
            self._scanned = latest
            pending = [d for d in self.deposits.values() if d.status == DepositStatus.PENDING]
        for dep in pending:
            where = client.receipt_block(dep.tx_hash)
            with self._lock:
                if where is None or not where[2]:
                    # Reorged out before it was credited: it never happened.
                    del self.deposits[(dep.tx_hash, dep.log_index)]
                    continue
                dep.block_number, dep.block_hash = where[0], where[1]
                dep.confirmations = max(0, latest - dep.block_number + 1)
                if dep.confirmations < self.config.confirmations or dep.amount <= 0:
                    continue
                if self.faults.active(FaultKind.DEPOSIT_DELAY, account=dep.account_id, now_ms=self.clock()):
                    continue
                self.engine.credit(dep.account_id, dep.coin, dep.amount)
                dep.status = DepositStatus.SUCCESS

    def deposit_history(self, account_id: str, coin: str | None) -> list[dict[str, Any]]:
        with self._lock:
            rows = [d for d in self.deposits.values() if d.account_id == account_id and coin in (None, d.coin)]
        rows.sort(key=lambda d: d.insert_time, reverse=True)
        n = self.config.confirmations
        return [
            {
                "id": d.deposit_id,
                "amount": fmt(d.amount),
                "coin": d.coin,
                "network": NETWORK,
                "status": d.status,
                "address": d.address,
                "addressTag": "",
                "txId": d.tx_hash,
                "insertTime": d.insert_time,
                "completeTime": d.insert_time if d.status == DepositStatus.SUCCESS else None,
                "transferType": 0,
                "confirmTimes": f"{min(d.confirmations, n)}/{n}",
                "unlockConfirm": n,
                "walletType": 0,
            }
            for d in rows
        ]

    # -- withdrawals -----------------------------------------------------------------------------------------

    def withdraw(
        self, *, account_id: str, coin: str, amount: Decimal, address: str, withdraw_order_id: str | None
    ) -> str:
        if coin not in self.tokens:
            raise unknown_coin()
        if not (address.startswith("0x") and len(address) == 42):
            raise errors.ExchangeError(-1100, "Illegal characters found in parameter 'address'.")
        fee = self.fees.get(coin, ZERO)
        grid = Decimal(1).scaleb(-min(8, self.decimals(coin)))
        if amount != amount.quantize(grid):
            raise errors.ExchangeError(-4021, f"Asset withdrawal must be an {grid:f} multiple of {grid:f}.")
        if amount <= fee:
            raise errors.ExchangeError(-4022, f"Not less than the minimum pick-up quantity {fmt(fee)}.")
        with self._lock:
            if withdraw_order_id is not None:
                # Idempotent by the caller's withdrawOrderId: a retry returns the first withdrawal.
                existing = self._by_withdraw_order_id.get((account_id, withdraw_order_id))
                if existing is not None:
                    return existing
            try:
                self.engine.debit(account_id, coin, amount)
            except errors.ExchangeError:
                raise errors.ExchangeError(-4026, "Account has insufficient balance for requested action.") from None
            w = Withdrawal(self._id(), account_id, coin, amount, fee, address, self.clock(), withdraw_order_id)
            self.withdrawals[w.withdraw_id] = w
            if withdraw_order_id is not None:
                self._by_withdraw_order_id[(account_id, withdraw_order_id)] = w.withdraw_id
            return w.withdraw_id

    def _fail(self, w: Withdrawal, info: str) -> None:
        w.status = WithdrawStatus.FAILURE
        w.info = info
        w.complete_time = self.clock()
        self.engine.credit(w.account_id, w.coin, w.amount)  # refunded whole

    def process_withdrawals(self) -> None:
        """One pass of the sender (blocking)."""
        with self._pass_lock:
            self._process_withdrawals()

    def _process_withdrawals(self) -> None:
        with self._lock:
            todo = [w for w in self.withdrawals.values() if w.status == WithdrawStatus.PROCESSING]
        for w in todo:
            if not w.tx_id:
                fault = self.faults.take(
                    FaultKind.WITHDRAWAL_FAILURE,
                    path="/sapi/v1/capital/withdraw/apply",
                    method="POST",
                    account=w.account_id,
                    now_ms=self.clock(),
                )
                if fault is not None:
                    with self._lock:
                        self._fail(w, "withdrawal failed (injected fault)")
                    continue
                units = int((w.amount - w.fee) * (Decimal(10) ** self.decimals(w.coin)))
                try:
                    w.tx_id = self.client.send_transfer(self.tokens[w.coin], w.address, units)
                except Exception as exc:
                    log.warning("withdrawal %s could not be sent: %s", w.withdraw_id, type(exc).__name__)
                    with self._lock:
                        self._fail(w, "withdrawal could not be sent")
                    continue
            where = self.client.receipt_block(w.tx_id)
            if where is None:
                continue  # not mined yet
            with self._lock:
                if where[2]:
                    w.status = WithdrawStatus.COMPLETED
                    w.complete_time = self.clock()
                else:
                    self._fail(w, "transaction reverted")

    def withdraw_history(self, account_id: str, coin: str | None) -> list[dict[str, Any]]:
        with self._lock:
            rows = [w for w in self.withdrawals.values() if w.account_id == account_id and coin in (None, w.coin)]
        rows.sort(key=lambda w: w.apply_time, reverse=True)
        out = []
        for w in rows:
            row: dict[str, Any] = {
                "id": w.withdraw_id,
                "amount": fmt(w.amount - w.fee),
                "transactionFee": fmt(w.fee),
                "coin": w.coin,
                "status": w.status,
                "address": w.address,
                "txId": w.tx_id,
                "applyTime": _clock_text(w.apply_time),
                "network": NETWORK,
                "transferType": 0,
                "info": w.info,
                "confirmNo": 1 if w.status == WithdrawStatus.COMPLETED else 0,
                "walletType": 0,
                "txKey": "",
            }
            if w.withdraw_order_id is not None:
                row["withdrawOrderId"] = w.withdraw_order_id
            if w.complete_time is not None:
                row["completeTime"] = _clock_text(w.complete_time)
            out.append(row)
        return out

    # -- the worker ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll deposits and push withdrawals forever (cancelled on shutdown); RPC failures are retried."""
        while True:
            try:
                await asyncio.to_thread(self.poll_deposits)
                await asyncio.to_thread(self.process_withdrawals)
            except Exception as exc:
                log.warning("chain poll failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.config.poll_interval)
