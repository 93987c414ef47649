"""A restarted devnet exchange is the same exchange: its customers' accounts, keys, balances, id counters,
deposits and withdrawals come back from its state file (the demo restarts it with the rest of the system)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from devnet.exchange import persist
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.domain.model import OrderType, Side, TimeInForce
from devnet.exchange.funds import Deposit, DepositStatus, Funds, Withdrawal
from devnet.exchange.keys import Permission
from devnet.exchange.simulator import Simulator

CHAIN = ChainConfig(rpc_url="http://127.0.0.1:1", assets={"USDT": "0x" + "ab" * 20}, hot_wallet_key="0x" + "11" * 32)


class _NoChain:
    """Nothing here talks to a chain: the funds records are what is saved."""

    hot_address = "0x" + "99" * 20

    def decimals(self, token: str) -> int:
        return 6


def simulator() -> Simulator:
    sim = Simulator(SimConfig(run_market=False))
    sim.funds = Funds(CHAIN, engine=sim.engine, faults=sim.faults, clock=sim.clock, fees={}, client=_NoChain())  # type: ignore[arg-type]
    return sim


def test_customers_come_back_with_their_keys_balances_and_history(tmp_path: Path) -> None:
    sim = simulator()
    maker = sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"MMT": Decimal(100)})
    taker = sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(500)})
    treasury = sim.create_key(maker.account_id, permissions=frozenset({Permission.WITHDRAW}))
    sim.engine.place_order(
        account_id=maker.account_id, symbol="MMTUSDT", side=Side.SELL, type=OrderType.LIMIT,
        quantity=Decimal(40), price=Decimal("0.5"), tif=TimeInForce.GTC, client_order_id="rest",
    )  # fmt: skip
    fill = sim.engine.place_order(
        account_id=taker.account_id, symbol="MMTUSDT", side=Side.BUY, type=OrderType.MARKET,
        quantity=Decimal(10), client_order_id="take",
    ).fills[0]  # fmt: skip
    assert sim.funds is not None
    sim.funds.deposits[("0xd1", 0)] = Deposit(
        "1", taker.account_id, "USDT", Decimal(500), "0xaddr", "0xd1", 0, 7, "0xb7", 1, 3, DepositStatus.SUCCESS
    )
    sim.funds.withdrawals["2"] = Withdrawal(
        "2", maker.account_id, "USDT", Decimal(1), Decimal(0), "0x" + "aa" * 20, 2, "w1"
    )
    sim.funds._by_withdraw_order_id[(maker.account_id, "w1")] = "2"
    totals = {a: {k: b.total for k, b in sim.engine.account(a).balances.items()} for a in sim.engine.accounts}
    persist.save(sim, tmp_path / "exchange.json")
    assert not (tmp_path / "exchange.json.tmp").exists()

    again = simulator()
    assert persist.load(again, tmp_path / "exchange.json")
    for key in (maker, taker, treasury):
        restored = again.keys.authenticate(key.key)
        assert (restored.secret, restored.account_id, restored.permissions) == (
            key.secret,
            key.account_id,
            key.permissions,
        )
    # Their history too: the rested order comes back cancelled, the trade as it was.
    rested = again.engine.find_order(maker.account_id, "MMTUSDT", order_id=None, client_id="rest")
    assert (rested.status, rested.executed_qty, rested.locked) == ("CANCELED", Decimal(10), Decimal(0))
    assert again.engine.my_fills(taker.account_id, "MMTUSDT") == [fill]
    for account_id, balances in totals.items():
        # What rested is not restored: its locked funds are free again, nothing lost.
        assert {k: b.free for k, b in again.engine.account(account_id).balances.items()} == balances
        assert not again.engine.open_orders(account_id)
    # Ids continue: a fill after the restart is never booked under an earlier trade's id.
    again.engine.place_order(
        account_id=maker.account_id, symbol="MMTUSDT", side=Side.SELL, type=OrderType.LIMIT,
        quantity=Decimal(10), price=Decimal("0.5"), tif=TimeInForce.GTC, client_order_id="rest-again",
    )  # fmt: skip
    after = again.engine.place_order(
        account_id=taker.account_id, symbol="MMTUSDT", side=Side.BUY, type=OrderType.MARKET,
        quantity=Decimal(10), client_order_id="take-again",
    ).fills[0]  # fmt: skip
    assert after.trade.trade_id > fill.trade.trade_id
    assert again.create_account(permissions=frozenset()).account_id not in totals
    assert again.funds is not None
    assert again.funds.deposit_history(taker.account_id, "USDT")[0]["txId"] == "0xd1"
    withdrawal = again.funds.withdraw(
        account_id=maker.account_id, coin="USDT", amount=Decimal(1), address="0x" + "aa" * 20, withdraw_order_id="w1"
    )
    assert withdrawal == "2"  # still idempotent by withdrawOrderId


def test_no_state_file_is_a_fresh_exchange(tmp_path: Path) -> None:
    sim = simulator()
    assert not persist.load(sim, tmp_path / "missing.json")
    assert not sim.keys._keys


def test_a_state_file_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "exchange.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        persist.load(simulator(), tmp_path / "exchange.json")
