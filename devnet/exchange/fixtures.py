"""Run the simulator in-process (a background thread with its own event loop, on a free loopback port), and build
ccxt's unmodified `binance` class pointed at it.

    with run_exchange() as ex:
        key = ex.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(1000)})
        client = ex.make_ccxt(key.key, key.secret)
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000)

The only knobs turned on ccxt are its own: `urls["api"]` (every entry, so nothing can leak to the internet) and
options that keep `load_markets` to the spot endpoint (no margin, currency or futures calls).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import ccxt
import ccxt.pro

from devnet.exchange.config import SimConfig
from devnet.exchange.server import build_app
from devnet.exchange.simulator import Simulator, wall_ms
from devnet.serving import serve_in_thread

# ccxt options that make load_markets call GET /api/v3/exchangeInfo only.
CCXT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "adjustForTimeDifference": False,
}


def ccxt_urls(base_url: str) -> dict[str, Any]:
    """Every entry of ccxt's `binance.urls["api"]`, re-rooted at `base_url` (same paths); the spot WebSocket
    streams at `<base>/stream/ws`."""
    ws_base = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    template = ccxt.pro.binance().urls["api"]
    out: dict[str, Any] = {}
    for name, value in template.items():
        if isinstance(value, str):
            out[name] = base_url + urlparse(value).path
        elif isinstance(value, dict):
            out[name] = {k: (ws_base + "/stream/ws" if isinstance(v, str) else v) for k, v in value.items()}
    return out


def make_ccxt(
    base_url: str,
    key: str | None = None,
    secret: str | None = None,
    *,
    async_: bool = False,
    timeout_ms: int = 10_000,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> Any:
    """A `ccxt.binance` (or, with `async_`, a `ccxt.pro.binance`: REST and WebSocket, asyncio) pointed at the
    simulator."""
    cls = ccxt.pro.binance if async_ else ccxt.binance
    params: dict[str, Any] = {
        "apiKey": key,
        "secret": secret,
        "timeout": timeout_ms,
        "enableRateLimit": False,
        "options": {**CCXT_OPTIONS, **(options or {})},
        **config,
    }
    client = cls({k: v for k, v in params.items() if v is not None})
    client.urls["api"] = ccxt_urls(base_url)
    return client


@dataclass
class RunningExchange:
    sim: Simulator
    host: str
    port: int
    _stop: Callable[[], None] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def make_ccxt(self, key: str | None = None, secret: str | None = None, *, async_: bool = False, **kw: Any) -> Any:
        return make_ccxt(self.base_url, key, secret, async_=async_, **kw)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call an admin endpoint (`/_devnet/...`) and return its JSON."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        self._stop()


@contextlib.contextmanager
def run_exchange(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", clock: Callable[[], int] = wall_ms
) -> Iterator[RunningExchange]:
    """The simulator on a free loopback port for the duration of the block. By default the market does not
    step by itself (tests call `sim.market.step`) and funds are off."""
    sim = Simulator(config or SimConfig(run_market=False), clock=clock)
    with serve_in_thread(build_app(sim), host=host, name="devnet-exchange") as served:
        yield RunningExchange(sim, host, served.port, served.stop)
