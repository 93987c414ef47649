"""The simulator's state in one object: engine, market agents, keys, faults and (optionally) on-chain funds.

The aiohttp app (server.py) is a thin Binance-dialect skin over it; tests and the admin endpoints reach the
same object, so what a test sets up is what ccxt then sees.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from devnet.exchange.config import SimConfig
from devnet.exchange.domain.engine import Engine
from devnet.exchange.faults import FaultRegistry
from devnet.exchange.funds import Funds
from devnet.exchange.keys import ApiKey, KeyStore, Permission
from devnet.exchange.limits import RateLimiter
from devnet.exchange.market import MarketSim


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Simulator:
    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], int] = wall_ms) -> None:
        self.config = config or SimConfig()
        self.clock = clock
        self.engine = Engine([m.spec for m in self.config.markets], clock=clock)
        self.market = MarketSim(self.engine, self.config.markets, seed=self.config.seed)
        self.keys = KeyStore()
        self.faults = FaultRegistry()
        self.limits = RateLimiter(
            weight_per_minute=self.config.weight_per_minute, orders_per_10s=self.config.orders_per_10s
        )
        self.funds: Funds | None = (
            Funds(self.config.chain, engine=self.engine, faults=self.faults, clock=clock, fees=self.config.withdraw_fee)
            if self.config.chain is not None
            else None
        )
        self._account_ids = itertools.count(1)
        self._seq = itertools.count(1)

    def create_account(
        self, *, permissions: frozenset[Permission], balances: Mapping[str, Decimal] | None = None
    ) -> ApiKey:
        account_id = f"acct-{next(self._account_ids)}"
        self.engine.account(account_id)
        for asset, amount in (balances or {}).items():
            self.engine.credit(account_id, asset, amount)
        return self.keys.create(account_id, permissions, now_ms=self.clock())

    def create_key(self, account_id: str, *, permissions: frozenset[Permission]) -> ApiKey:
        if account_id not in self.engine.accounts:
            raise KeyError(account_id)
        return self.keys.create(account_id, permissions, now_ms=self.clock())

    def next_id(self) -> int:
        return next(self._seq)
