"""The simulator's configuration: its markets (filters, fees, and the synthetic market around each) and funds."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from devnet.exchange.domain.model import MarketSpec, Stp


@dataclass(frozen=True)
class AgentConfig:
    """The synthetic market around one symbol (see market.py). Rates are per simulated second."""

    initial_price: Decimal
    drift: Decimal = Decimal(0)  # GBM drift per day
    volatility: Decimal = Decimal("0.03")  # GBM volatility per sqrt(day)
    maker_levels: int = 10
    maker_spread_bps: Decimal = Decimal(10)  # half-spread of the noise makers' first level around the fair price
    level_step_bps: Decimal = Decimal(5)
    maker_size: Decimal = Decimal(1)  # base units per level
    taker_intensity: Decimal = Decimal("0.5")  # Poisson rate of taker orders per second
    taker_size: Decimal = Decimal("0.2")  # mean taker size (exponential), base units
    sweep_probability: Decimal = Decimal("0.002")  # per step
    sweep_levels: int = 4  # a sweep takes this many maker levels at once
    arb_threshold_bps: Decimal = Decimal(5)  # informed traders take quotes this far on the wrong side of fair


@dataclass(frozen=True)
class MarketConfig:
    spec: MarketSpec
    agents: AgentConfig


def default_markets() -> list[MarketConfig]:
    """Three markets with real-looking filters (Binance's own for BTCUSDT and ETHUSDT, mid-2026)."""
    return [
        MarketConfig(
            MarketSpec(
                base="BTC",
                quote="USDT",
                tick_size=Decimal("0.01"),
                step_size=Decimal("0.00001"),
                min_qty=Decimal("0.00001"),
                max_qty=Decimal("9000"),
                min_price=Decimal("0.01"),
                max_price=Decimal("1000000"),
                min_notional=Decimal("5"),
            ),
            AgentConfig(initial_price=Decimal("60000"), maker_size=Decimal("0.05"), taker_size=Decimal("0.01")),
        ),
        MarketConfig(
            MarketSpec(
                base="ETH",
                quote="USDT",
                tick_size=Decimal("0.01"),
                step_size=Decimal("0.0001"),
                min_qty=Decimal("0.0001"),
                max_qty=Decimal("9000"),
                min_price=Decimal("0.01"),
                max_price=Decimal("1000000"),
                min_notional=Decimal("5"),
            ),
            AgentConfig(initial_price=Decimal("3000"), maker_size=Decimal("1"), taker_size=Decimal("0.2")),
        ),
        MarketConfig(
            MarketSpec(
                base="MMT",
                quote="USDT",
                tick_size=Decimal("0.0001"),
                step_size=Decimal("0.1"),
                min_qty=Decimal("0.1"),
                max_qty=Decimal("9000000"),
                min_price=Decimal("0.0001"),
                max_price=Decimal("1000"),
                min_notional=Decimal("1"),
                default_stp=Stp.NONE,
            ),
            AgentConfig(
                initial_price=Decimal("0.5"),
                volatility=Decimal("0.08"),
                maker_size=Decimal("2000"),
                taker_size=Decimal("300"),
                maker_spread_bps=Decimal(20),
                level_step_bps=Decimal(10),
            ),
        ),
    ]


@dataclass(frozen=True)
class ChainConfig:
    rpc_url: str
    assets: dict[str, str]  # asset → ERC-20 contract address
    hot_wallet_key: str  # 0x-hex private key of the simulator's hot wallet (dev only)
    confirmations: int = 3
    poll_interval: float = 1.0
    address_seed: str = "mrmarket-devnet-exchange"  # deposit addresses derive from it, per account


@dataclass
class SimConfig:
    markets: list[MarketConfig] = field(default_factory=default_markets)
    seed: int = 1
    tick_seconds: Decimal = Decimal("0.5")  # simulated seconds per market step
    run_market: bool = True  # step the market in the background (off in tests, which step it themselves)
    chain: ChainConfig | None = None
    withdraw_fee: dict[str, Decimal] = field(default_factory=dict)  # asset → flat fee (default none)
    admin_token: str | None = None  # when set, /_devnet/ requires `Authorization: Bearer <token>`
    # Binance's limits (6000 weight a minute per IP, 100 orders per 10 s per account) are reported in headers
    # always, and enforced only when set here: tests and benchmarks would otherwise trip over them.
    weight_per_minute: int | None = None
    orders_per_10s: int | None = None
