"""The synthetic market around each symbol: a fair price following geometric Brownian motion, and agents.

- Noise makers keep a base book: `maker_levels` post-only levels each side around the fair price, requoted
  every step.
- Informed traders (arbitrageurs) take any quote left on the wrong side of the fair price by more than
  `arb_threshold_bps`: a market maker whose quotes lag the fair price is picked off, i.e. adversely selected.
- Poisson takers send market orders of exponential size at rate `taker_intensity`, either side.
- An occasional sweep takes several levels of one side at once.

A control (`set_makers`, admin `POST /_devnet/market/makers`) stops the noise makers of one side of a symbol: their
resting orders on it are cancelled and not requoted until they are resumed, so that side of the book empties
unless someone else quotes it (a market maker walking away, as the side-missing alert is there to catch).

Everything is driven by a seeded `random.Random` and by `step(seconds)`: the same seed and the same sequence of
steps and orders give the same fills. The server steps it on a timer; tests step it themselves.
Random draws are floats (a Gaussian shock, an exponential size); each becomes a Decimal quantized to the
market's tick or lot before it touches the book, so no float reaches an amount.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from devnet.exchange.config import AgentConfig, MarketConfig
from devnet.exchange.domain import errors
from devnet.exchange.domain.engine import Engine
from devnet.exchange.domain.model import MarketSpec, OrderType, Side, Stp, TimeInForce

MAKER = "agent-maker"
TAKER = "agent-taker"
ARB = "agent-arb"
AGENT_ACCOUNTS = (MAKER, TAKER, ARB)
SECONDS_PER_DAY = Decimal(86400)
BPS = Decimal(10_000)


def to_tick(value: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def _dec(x: float) -> Decimal:
    return Decimal(repr(round(x, 12)))


@dataclass
class _Symbol:
    spec: MarketSpec
    agents: AgentConfig
    rng: random.Random
    fair: Decimal
    seq: int = 0
    stopped: frozenset[Side] = frozenset()  # sides whose noise makers do not quote


class MarketSim:
    def __init__(self, engine: Engine, markets: list[MarketConfig], *, seed: int) -> None:
        self.engine = engine
        self.symbols: dict[str, _Symbol] = {}
        for index, cfg in enumerate(markets):
            rng = random.Random(f"{seed}:{index}:{cfg.spec.symbol}")  # noqa: S311 - a simulation, seeded on purpose
            self.symbols[cfg.spec.symbol] = _Symbol(cfg.spec, cfg.agents, rng, cfg.agents.initial_price)
        # Agents stand for the rest of the market: deep pockets, funded once.
        for account in AGENT_ACCOUNTS:
            for asset in engine.assets():
                engine.credit(account, asset, Decimal(10) ** 12)

    def fair(self, symbol: str) -> Decimal:
        return self.symbols[symbol].fair

    def set_fair(self, symbol: str, price: Decimal) -> None:
        """Move the fair price (tests use this to cause a jump) and requote."""
        with self.engine.lock:
            self.symbols[symbol].fair = price
            self._requote(self.symbols[symbol])

    def set_makers(self, symbol: str, side: Side, *, quoting: bool) -> None:
        """Stop (or resume) the noise makers of one side of a symbol, and requote at once."""
        with self.engine.lock:
            sym = self.symbols[symbol]
            sym.stopped = sym.stopped - {side} if quoting else sym.stopped | {side}
            self._requote(sym)

    def makers_stopped(self, symbol: str) -> frozenset[Side]:
        return self.symbols[symbol].stopped

    def step(self, seconds: Decimal, *, slot: int | None = None, slots: int = 1) -> None:
        """Advance every market by `seconds`, or (with `slot`) the markets whose index is `slot` modulo `slots`:
        the server steps its markets in staggered slices, as real markets do not all move in the same instant."""
        with self.engine.lock:
            chosen = list(self.symbols.values()) if slot is None else list(self.symbols.values())[slot::slots]
            for sym in chosen:
                self._advance(sym, seconds)
                self._arbitrage(sym)
                self._requote(sym)
                self._takers(sym, seconds)
                if sym.rng.random() < float(sym.agents.sweep_probability):
                    self._sweep(sym)
            for account in AGENT_ACCOUNTS:
                self.engine.forget_history(account)

    def seed_books(self) -> None:
        with self.engine.lock:
            for sym in self.symbols.values():
                self._requote(sym)

    # -- the pieces -------------------------------------------------------------------------------------------

    def _advance(self, sym: _Symbol, seconds: Decimal) -> None:
        dt = seconds / SECONDS_PER_DAY
        a = sym.agents
        shock = _dec(sym.rng.gauss(0.0, 1.0))
        exponent = (a.drift - a.volatility * a.volatility / 2) * dt + a.volatility * dt.sqrt() * shock
        fair = sym.fair * exponent.exp()
        sym.fair = max(sym.spec.min_price, min(sym.spec.max_price, fair))

    def _order(
        self,
        sym: _Symbol,
        account: str,
        side: Side,
        type: OrderType,
        qty: Decimal,
        price: Decimal | None = None,
        tif: TimeInForce | None = None,
    ) -> None:
        sym.seq += 1
        # An agent's order that would take (post-only) or misses a filter is simply not placed.
        with contextlib.suppress(errors.ExchangeError):
            self.engine.place_order(
                account_id=account,
                symbol=sym.spec.symbol,
                side=side,
                type=type,
                quantity=qty,
                price=price,
                tif=tif,
                client_order_id=f"{account}-{sym.seq}",
                stp=Stp.EXPIRE_TAKER,
            )

    def _requote(self, sym: _Symbol) -> None:
        spec, a = sym.spec, sym.agents
        self.engine.cancel_all(MAKER, spec.symbol)
        for level in range(a.maker_levels):
            off = (a.maker_spread_bps + a.level_step_bps * level) / BPS
            bid = to_tick(sym.fair * (1 - off), spec.tick_size, up=False)
            ask = to_tick(sym.fair * (1 + off), spec.tick_size, up=True)
            qty = self._lot(spec, a.maker_size)
            if bid >= spec.min_price and Side.BUY not in sym.stopped:
                self._order(sym, MAKER, Side.BUY, OrderType.LIMIT_MAKER, qty, bid)
            if Side.SELL not in sym.stopped:
                self._order(sym, MAKER, Side.SELL, OrderType.LIMIT_MAKER, qty, ask)

    def _arbitrage(self, sym: _Symbol) -> None:
        spec = sym.spec
        thr = sym.agents.arb_threshold_bps / BPS
        buy_below = to_tick(sym.fair * (1 - thr), spec.tick_size, up=False)
        sell_above = to_tick(sym.fair * (1 + thr), spec.tick_size, up=True)
        book = self.engine.books[spec.symbol]
        ask_qty = sum((q for p, q in book.depth(Side.SELL, 1000) if p <= buy_below), Decimal(0))
        if ask_qty > 0:
            self._order(sym, ARB, Side.BUY, OrderType.LIMIT, self._lot(spec, ask_qty), buy_below, TimeInForce.IOC)
        bid_qty = sum((q for p, q in book.depth(Side.BUY, 1000) if p >= sell_above), Decimal(0))
        if bid_qty > 0:
            self._order(sym, ARB, Side.SELL, OrderType.LIMIT, self._lot(spec, bid_qty), sell_above, TimeInForce.IOC)

    def _takers(self, sym: _Symbol, seconds: Decimal) -> None:
        count = self._poisson(sym.rng, float(sym.agents.taker_intensity * seconds))
        for _ in range(count):
            side = Side.BUY if sym.rng.random() < 0.5 else Side.SELL
            size = _dec(sym.rng.expovariate(1.0)) * sym.agents.taker_size
            self._order(sym, TAKER, side, OrderType.MARKET, self._lot(sym.spec, size))

    def _sweep(self, sym: _Symbol) -> None:
        side = Side.BUY if sym.rng.random() < 0.5 else Side.SELL
        opposite = Side.SELL if side is Side.BUY else Side.BUY
        levels = self.engine.books[sym.spec.symbol].depth(opposite, sym.agents.sweep_levels)
        qty = sum((q for _, q in levels), Decimal(0))
        if qty > 0:
            self._order(sym, TAKER, side, OrderType.MARKET, self._lot(sym.spec, qty))

    @staticmethod
    def _lot(spec: MarketSpec, qty: Decimal) -> Decimal:
        lots = (qty / spec.step_size).to_integral_value(rounding=ROUND_FLOOR) * spec.step_size
        return min(spec.max_qty, max(spec.min_qty, lots))

    @staticmethod
    def _poisson(rng: random.Random, lam: float) -> int:
        # Knuth's method; lam is small (a rate times one step), bounded so a huge step cannot loop for long.
        lam = min(lam, 50.0)
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
