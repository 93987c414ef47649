"""The synthetic market: seeded and stepped, so its fills are reproducible; its agents fill a quoting market
maker and pick off stale quotes (adverse selection)."""

from __future__ import annotations

from decimal import Decimal

from devnet.exchange.config import SimConfig
from devnet.exchange.domain.model import OrderType, Side, TimeInForce
from devnet.exchange.simulator import Simulator


def simulate(seed: int, steps: int = 200) -> Simulator:
    clock = [0]

    def tick() -> int:
        clock[0] += 500
        return clock[0]

    sim = Simulator(SimConfig(seed=seed, run_market=False), clock=tick)
    sim.market.seed_books()
    for _ in range(steps):
        sim.market.step(Decimal("0.5"))
    return sim


def tape(sim: Simulator) -> list[tuple[str, Decimal, Decimal]]:
    return [(t.symbol, t.price, t.qty) for s in sim.engine.tape.values() for t in s]


def test_same_seed_same_market():
    a, b = simulate(7), simulate(7)
    assert tape(a) == tape(b)
    assert a.market.fair("BTCUSDT") == b.market.fair("BTCUSDT")
    assert tape(simulate(8)) != tape(a)


def test_several_markets_trade_and_keep_a_book():
    sim = simulate(3)
    for symbol in ("BTCUSDT", "ETHUSDT", "MMTUSDT"):
        assert sim.engine.tape[symbol], symbol
        book = sim.engine.books[symbol]
        bid, ask = book.best(Side.BUY), book.best(Side.SELL)
        assert bid is not None
        assert ask is not None
        assert bid < ask
        assert len(book.depth(Side.BUY, 100)) >= 5


def test_a_stale_quote_is_picked_off():
    sim = simulate(5, steps=1)
    key = sim.create_account(permissions=frozenset(), balances={"USDT": Decimal("100000"), "BTC": Decimal("1")})
    fair = sim.market.fair("BTCUSDT")
    ask = (fair * Decimal("1.0005")).quantize(Decimal("0.01"))
    order = sim.engine.place_order(
        account_id=key.account_id,
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.LIMIT,
        quantity=Decimal("0.1"),
        price=ask,
        tif=TimeInForce.GTC,
        client_order_id="mm-ask",
    ).order
    sim.market.set_fair("BTCUSDT", fair * Decimal("1.01"))  # the fair price jumps 1 % above our ask
    sim.market.step(Decimal("0.001"))
    assert order.executed_qty == Decimal("0.1")  # informed flow took it, below the new fair price
    fills = sim.engine.my_fills(key.account_id, "BTCUSDT")
    assert all(f.is_maker and f.trade.price < sim.market.fair("BTCUSDT") for f in fills)


def test_a_fair_quote_gets_filled_by_noise_takers():
    sim = simulate(11, steps=1)
    key = sim.create_account(permissions=frozenset(), balances={"USDT": Decimal("100000"), "BTC": Decimal("1")})
    fair = sim.market.fair("BTCUSDT")
    for side, price in ((Side.BUY, fair * Decimal("0.9995")), (Side.SELL, fair * Decimal("1.0005"))):
        sim.engine.place_order(
            account_id=key.account_id,
            symbol="BTCUSDT",
            side=side,
            type=OrderType.LIMIT,
            quantity=Decimal("0.02"),
            price=price.quantize(Decimal("0.01")),
            tif=TimeInForce.GTC,
            client_order_id=f"mm-{side}",
        )
    for _ in range(400):
        sim.market.step(Decimal("0.5"))
        if len(sim.engine.my_fills(key.account_id, "BTCUSDT")) >= 2:
            break
    assert sim.engine.my_fills(key.account_id, "BTCUSDT")


def test_agent_churn_does_not_accumulate():
    sim = simulate(2, steps=50)
    held = len(sim.engine._orders)
    for _ in range(200):
        sim.market.step(Decimal("0.5"))
    assert len(sim.engine._orders) <= held + 10  # only the agents' open quotes remain
    assert all(not sim.engine.account(a).fills for a in ("agent-maker", "agent-taker", "agent-arb"))
