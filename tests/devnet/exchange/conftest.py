"""One in-process simulator per test module (the market does not move unless a test steps it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import ApiKey, Permission


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    with run_exchange() as ex:
        ex.sim.market.seed_books()
        yield ex


@pytest.fixture
def new_account(exchange: RunningExchange) -> Callable[..., tuple[ApiKey, Any]]:
    """An account with a key of the given permissions and balances, and a ccxt client using that key."""

    def make(*permissions: str, timeout_ms: int = 10_000, **balances: str) -> tuple[ApiKey, Any]:
        perms = frozenset(Permission(p) for p in (permissions or ("trade",)))
        key = exchange.sim.create_account(permissions=perms, balances={a: Decimal(v) for a, v in balances.items()})
        client = exchange.make_ccxt(key.key, key.secret, timeout_ms=timeout_ms)
        client.load_markets()
        return key, client

    return make


@pytest.fixture(autouse=True)
def _fresh_book(exchange: RunningExchange) -> Iterator[None]:
    """Each test starts from the agents' base book around the fair price, with no faults and no other test's
    resting orders."""
    exchange.sim.market.seed_books()
    yield
    exchange.sim.faults.clear()
    engine = exchange.sim.engine
    with engine.lock:
        for account_id in list(engine.accounts):
            for symbol in engine.markets:
                engine.cancel_all(account_id, symbol)
