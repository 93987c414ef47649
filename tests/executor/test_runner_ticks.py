"""The run loop tick by tick against a scripted exchange: the kill switch trips in the very tick its condition
appears, consecutive rejects halt, post-only and balance refusals do not, and a halted job cancels all."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Any

import pytest

from executor.engine.runner import Credentials, JobRunner, JobState, RunnerSettings
from executor.exchange import OrderSnapshot, Rejected, TradeSnapshot
from executor.jobs.spec import accept_job_spec
from executor.strategy.base import Book, Level, MarketRules
from tests.executor.harness import job_spec
from wire.keys import SigningKey

RULES = MarketRules(Decimal("0.0001"), Decimal("0.1"), Decimal("0.1"), Decimal("1"))


class ScriptedGateway:
    """Just enough of `executor.exchange.Gateway`, driven by the test."""

    def __init__(self) -> None:
        self.open: dict[str, OrderSnapshot] = {}
        self.trades: list[TradeSnapshot] = []
        self.reject_with: str | None = None
        self.cancel_all_calls = 0
        self.creates = 0
        self.base, self.quote = Decimal(4000), Decimal(2000)
        self._ids = itertools.count(1)
        self.mid = Decimal("0.5")

    async def load_market(self, symbol: str) -> tuple[MarketRules, str, str]:
        return RULES, "MMT", "USDT"

    async def order_book(self, symbol: str, *, depth: int = 20) -> Book:
        m = self.mid
        return Book((Level(m - Decimal("0.001"), Decimal(5000)),), (Level(m + Decimal("0.001"), Decimal(5000)),), 0)

    async def balances(self, assets: tuple[str, ...]) -> dict[str, tuple[Decimal, Decimal]]:
        return {"MMT": (self.base, Decimal(0)), "USDT": (self.quote, Decimal(0))}

    async def create_limit(self, symbol: str, side: str, amount: Decimal, price: Decimal, **kw: Any) -> OrderSnapshot:
        self.creates += 1
        if self.reject_with:
            raise Rejected("refused", kind=self.reject_with)
        snap = OrderSnapshot(str(next(self._ids)), kw["client_order_id"], side, price, amount, Decimal(0), "open", 1)
        self.open[snap.client_order_id or ""] = snap
        return snap

    async def cancel(self, symbol: str, cid: str) -> OrderSnapshot:
        snap = self.open.pop(cid)
        return OrderSnapshot(
            snap.exchange_order_id, cid, snap.side, snap.price, snap.amount, snap.filled, "canceled", 1
        )

    async def cancel_all(self, symbol: str) -> None:
        self.cancel_all_calls += 1
        self.open.clear()

    async def order_by_client_id(self, symbol: str, cid: str) -> OrderSnapshot:
        from executor.exchange import NotFound

        raise NotFound("no such order")

    async def open_orders(self, symbol: str) -> list[OrderSnapshot]:
        return list(self.open.values())

    async def my_trades(self, symbol: str, *, since_ms: int | None = None) -> list[TradeSnapshot]:
        return list(self.trades)

    async def close(self) -> None:
        pass

    def fill(self, side: str, price: str, amount: str, fee: str = "0") -> None:
        order = next(o for o in self.open.values() if o.side == side)
        self.trades.append(
            TradeSnapshot(
                f"t{len(self.trades) + 1}",
                order.exchange_order_id,
                side,
                Decimal(price),
                Decimal(amount),
                Decimal(fee),
                "USDT",
                "maker",
                int(time.time() * 1000),
            )
        )


async def started(gateway: ScriptedGateway, *, clock: Any = None, **overrides: Any) -> JobRunner:
    spec = job_spec("tick-job", **overrides)
    accepted = accept_job_spec(spec, markets={"MMT/USDT"})
    runner = JobRunner(
        spec=accepted.spec,
        strategy=accepted.strategy,
        signing_key=SigningKey.from_seed(b"s" * 32),
        settings=RunnerSettings(tick_ms=100),
        gateway_factory=lambda creds: gateway,  # type: ignore[arg-type, return-value]
        clock=clock,
    )
    runner.gateway = gateway  # type: ignore[assignment]
    await runner._start()
    return runner


async def test_the_loss_limit_halts_in_the_tick_that_sees_the_loss() -> None:
    gw = ScriptedGateway()
    runner = await started(gw, risk={"max_loss_quote": "5"})
    await runner.tick()
    assert runner.state is JobState.RUNNING
    assert len(gw.open) == 4
    # The job buys 200 at 0.4995 and the market drops: −0.0495·200 = −9.9 quote ≤ −5.
    gw.fill("buy", "0.4995", "200")
    gw.mid = Decimal("0.45")
    await runner.tick()
    assert runner.state is JobState.HALTED
    assert runner.reason is not None
    assert "loss limit" in runner.reason
    creates = gw.creates
    await runner._cancel_everything()  # what the halted state does first
    assert gw.cancel_all_calls >= 1
    assert gw.open == {}
    assert gw.creates == creates  # nothing placed once halted


async def test_consecutive_rejects_halt_but_post_only_and_balance_refusals_do_not() -> None:
    gw = ScriptedGateway()
    runner = await started(gw, risk={"max_consecutive_rejects": 3})
    gw.reject_with = "would_take"
    for _ in range(3):
        await runner.tick()
    assert runner.state is JobState.RUNNING
    gw.reject_with = "insufficient_balance"
    await runner.tick()
    assert runner.state is JobState.RUNNING
    assert set(runner.side_cooldown) == {"buy", "sell"}
    sent = gw.creates
    await runner.tick()
    assert gw.creates == sent  # both sides cool down: no spinning on a refusal
    runner.side_cooldown.clear()
    gw.reject_with = "invalid"
    await runner.tick()  # 4 refusals (2 levels × 2 sides) ≥ 3
    await runner.tick()
    assert runner.state is JobState.HALTED
    assert runner.reason is not None
    assert "consecutive rejects" in runner.reason


async def test_fees_and_fills_are_counted_once() -> None:
    gw = ScriptedGateway()
    runner = await started(gw)
    await runner.tick()
    gw.fill("sell", "0.5005", "100", fee="0.05")
    await runner.tick()
    await runner.tick()  # the same trade is listed again: counted once
    assert runner.position is not None
    assert runner.position.fees == Decimal("0.05")
    assert runner.tracker.trade_ids == {"t1"}
    assert runner.status()["fills"] == 1


def test_credentials_never_print() -> None:
    assert "secret" not in repr(Credentials("k", "secret-value"))


async def test_orders_of_an_earlier_run_are_adopted_and_foreign_ones_cancelled() -> None:
    from executor.engine.tracker import job_prefix

    gw = ScriptedGateway()
    earlier = OrderSnapshot(
        "900", job_prefix("tick-job") + "zz-7", "buy", Decimal("0.49"), Decimal(100), Decimal(0), "open", 1
    )
    foreign = OrderSnapshot("901", "manual-order-1", "sell", Decimal("0.6"), Decimal(50), Decimal(0), "open", 1)
    gw.open = {earlier.client_order_id or "": earlier, foreign.client_order_id or "": foreign}
    runner = await started(gw)
    adopted = runner.tracker.orders[earlier.client_order_id or ""]
    assert adopted.adopted
    assert adopted.status in ("open", "cancelling", "cancelled")
    assert "manual-order-1" not in gw.open  # cancelled by the default policy
    assert "manual-order-1" not in runner.tracker.orders  # and never counted as the job's
    await runner.tick()
    ids = [cid for cid in gw.open if runner.tracker.owns(cid)]
    assert len(ids) == len(set(ids))


class SlowGateway(ScriptedGateway):
    """The scripted exchange on a clock the test owns: a call marked slow takes `delay_ms` of it."""

    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 1_700_000_000_000
        self.delay_ms = {"order_book": 0, "open_orders": 0}

    def clock(self) -> int:
        return self.now_ms

    async def order_book(self, symbol: str, *, depth: int = 20) -> Book:
        self.now_ms += self.delay_ms["order_book"]
        return await super().order_book(symbol, depth=depth)

    async def open_orders(self, symbol: str) -> list[OrderSnapshot]:
        self.now_ms += self.delay_ms["open_orders"]
        return await super().open_orders(symbol)


@pytest.mark.parametrize("slow_call", ["order_book", "open_orders"])
async def test_a_book_older_than_the_limit_when_quoting_cancels_and_quotes_nothing(slow_call: str) -> None:
    gw = SlowGateway()
    runner = await started(gw, clock=gw.clock)  # job_spec's stale_book_seconds: 5
    gw.now_ms += 100
    await runner.tick()
    assert len(gw.open) == 4
    # The book's answer (or the account's own calls after it) took 6 s: the prices it holds are too old.
    gw.delay_ms[slow_call] = 6_000
    creates = gw.creates
    gw.now_ms += 100
    await runner.tick()
    assert gw.open == {}  # what rested was cancelled
    assert gw.creates == creates  # nothing placed on it
    assert runner.last_error is not None
    assert "book is 6." in runner.last_error
    assert runner.state is JobState.RUNNING  # not a halt: the next fresh book quotes again
    gw.delay_ms[slow_call] = 0
    gw.now_ms += 100
    await runner.tick()
    assert len(gw.open) == 4


async def test_a_book_just_inside_the_limit_is_quoted() -> None:
    gw = SlowGateway()
    runner = await started(gw, clock=gw.clock)  # job_spec's stale_book_seconds: 5
    gw.delay_ms["open_orders"] = 4_900
    gw.now_ms += 100
    await runner.tick()
    assert len(gw.open) == 4


def test_jobs_reconcile_each_on_its_own_cadence_near_the_setting() -> None:
    # Jobs started together must not reconcile by REST together every period: each one's interval is its own,
    # within ±10 % of the setting, and stable for the job.
    def interval(job_id: str) -> int:
        accepted = accept_job_spec(job_spec(job_id), markets={"MMT/USDT"})
        runner = JobRunner(
            spec=accepted.spec,
            strategy=accepted.strategy,
            signing_key=SigningKey.from_seed(b"s" * 32),
            settings=RunnerSettings(tick_ms=100, reconcile_ms=30_000),
        )
        return runner._reconcile_every_ms

    intervals = [interval(f"job-{i}") for i in range(20)]
    assert all(27_000 <= v <= 33_000 for v in intervals)
    assert len(set(intervals)) > 15, "the cadences differ from job to job"
    assert interval("job-3") == intervals[3], "and each job keeps its own"
