"""The chaos matrix, exchange side (3): every simulator fault that can meet the withdrawal back to custody — the
request (withdraw/apply), the exchange's own processing (a withdrawal it accepted and then failed, refunded), and
its tracking to arrival on chain — for a stopped order holding two assets (tests/execution/test_withdraw_back.py).

After each: every withdrawal row not failed is one withdrawal in the exchange's history, nothing was withdrawn
twice, the ledger balances, custody holds on chain what the ledger says it holds, and the order reached `settled`
by itself once the fault was lifted — or, for a failure the exchange reports as final, stopped with an open alert
and its funds located (docs/reliability.md, section 1)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from web3 import Web3

from devnet.chain import token
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.funds import WithdrawStatus
from execution import homeward, selectors, withdrawals
from execution.models import ExchangeWithdrawal
from tests.chaos import invariants
from tests.chaos.test_matrix_exchange import REQUEST_FAULTS
from tests.execution import conftest as execution_fixtures
from tests.execution import test_withdraw_back as withdraw_back
from tests.execution.test_withdraw_back import CUSTODY, HOLDINGS, Stopped, on_exchange, track_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db, pytest.mark.timeout(120)]

# The return leg's own fixtures (tests/execution/test_withdraw_back.py), on a chain of this module's own.
anvil, w3 = execution_fixtures.anvil, execution_fixtures.w3
tokens, sim, stopped = withdraw_back.tokens, withdraw_back.sim, withdraw_back.stopped
APPLY = "/sapi/v1/capital/withdraw/apply"


@pytest.fixture
def short_timeout(settings) -> None:
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1  # a hung exchange costs the test one second a call


def add(sim: RunningExchange, stopped: Stopped, fields: dict[str, Any], **more: Any) -> Fault:
    return sim.sim.faults.add(Fault(**{**fields, **more}, account=stopped.venue))


def try_withdraw(stopped: Stopped) -> str:
    """One withdraw-back call as the task makes it; it may raise (the task retries). The order's state after."""
    with contextlib.suppress(Exception):  # typed errors of several kinds; the stored state is what is checked
        stopped.withdraw_back()
    return stopped.state()


def settled_once(stopped: Stopped, sim: RunningExchange, w3: Web3, tokens: dict[str, str]) -> None:
    """The common ending: tracked until settled, then every invariant of the return leg."""
    track_until(stopped, w3, lambda: stopped.state() == "settled")
    assert invariants.assert_resumed_or_parked(stopped.state(), resumed=["settled"]) == "resumed"
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([stopped.order])
    invariants.assert_withdrawals_once(stopped.order, stopped.treasury)
    for asset, units in HOLDINGS.items():
        live = [w for w in on_exchange(sim, stopped.venue, asset) if w.status != WithdrawStatus.FAILURE]
        assert len(live) == 1, f"{asset}: {len(live)} withdrawals the exchange did not fail"
        assert stopped.free(asset) == 0
        assert stopped.transit(asset) == 0
        assert selectors.ledger_balance(account=f"custody:{asset}") == units
    for asset, address in tokens.items():
        on_chain = token(w3, address).functions.balanceOf(CUSTODY.address).call()
        assert on_chain >= selectors.ledger_balance(account=f"custody:{asset}")  # earlier tests' arrivals too
    invariants.assert_exchange_agrees(stopped.account)


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize("fault", [*REQUEST_FAULTS, "insufficient_balance"])
def test_withdraw_back_x_request_fault(stopped: Stopped, sim: RunningExchange, w3: Web3, tokens, fault: str) -> None:
    """The request fails (or is refused for balance): nothing is booked as sent that the exchange did not take,
    a request whose answer was lost is found in the history rather than sent again, and the retry sends each
    asset once."""
    fields = {"kind": FaultKind.INSUFFICIENT_BALANCE} if fault == "insufficient_balance" else REQUEST_FAULTS[fault]
    rule = add(sim, stopped, fields, endpoint=APPLY)
    state = try_withdraw(stopped)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the fault acted on the withdrawal request"
    if fault != "latency":
        assert state == "stopping"
        for asset, units in HOLDINGS.items():
            sent = [r for r in stopped.rows(asset) if r.status == "sent"]
            assert stopped.free(asset) + stopped.transit(asset) == units
            assert len(sent) <= len(on_exchange(sim, stopped.venue, asset))  # nothing booked the exchange lacks
    invariants.assert_ledger_balanced()
    sim.sim.faults.remove(rule.fault_id)
    if stopped.state() == "stopping":
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(withdrawals, "WITHDRAWAL_LISTING_SECONDS", 0.0)  # the listing window passed
            assert try_withdraw(stopped) == "withdrawing_back"
    settled_once(stopped, sim, w3, tokens)


def test_withdraw_back_x_withdrawal_failure(stopped: Stopped, sim: RunningExchange, w3: Web3, tokens) -> None:
    """The exchange accepts the withdrawals and then fails them (refunded, nothing on chain): each is failed once,
    the funds are booked back on the exchange account, the order is parked with an open alert, and the operator's
    next withdraw-back sends each asset once more and settles."""
    rule = add(sim, stopped, {"kind": FaultKind.WITHDRAWAL_FAILURE})
    assert try_withdraw(stopped) == "withdrawing_back"
    rows = ExchangeWithdrawal.objects.filter(order=stopped.order)
    track_until(stopped, w3, lambda: all(r.status == "failed" for r in rows.all()))
    homeward.mm_order_track_withdrawal(order_id=stopped.order.pk)
    parked = stopped.state()
    assert invariants.assert_resumed_or_parked(parked, resumed=[], parked={parked: "withdrawal_failed"}) == "parked"
    for asset, units in HOLDINGS.items():
        assert stopped.free(asset) == units  # refunded on the exchange, where the ledger locates it
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([stopped.order])
    sim.sim.faults.remove(rule.fault_id)
    if parked == "failed":
        stopped.stop()  # a failed order is stopped again by the operator (docs/runbook.md)
    assert try_withdraw(stopped) == "withdrawing_back"
    settled_once(stopped, sim, w3, tokens)
