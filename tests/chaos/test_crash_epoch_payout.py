"""A worker killed (SIGKILL) at every transition of an epoch payout (pending → publishing → distributing → paid), just
before it is written and just after it committed; then the pay_epochs beat and the oracle-transaction sweep take
it on, and the chain's own events say every leaf was paid exactly once, the root published once, each step once
in the payout's timeline. The campaign and its recorded epoch are tests/payouts/test_paying.py's."""

# The fixtures are imported from other modules (a conftest here would override the matrix tests' own devnet):
# pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
from typing import Any

import pytest
from web3 import Web3

from devnet.protocol import campaign as campaign_contract
from payouts import oracle_tx, paying
from payouts.models import EpochPayout, OracleTransaction
from tests.chaos import invariants
from tests.chaos.crash_invariants import wait
from tests.chaos.driver_plugin import Driver
from tests.payouts.test_paying import an_epoch, anvil, chain_settings, factory_and_token, w3  # noqa: F401 (fixtures)
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

# The payout's steps in the order the worker applies them (the census test checks it): its three transitions,
# and the steps of its batch on the same timeline (signed, then paid), each a kill point too. One batch: each
# distinct step is killed once (a second batch would repeat the same two; tests/payouts/test_paying.py kills a
# worker between batches already).
STEPS = ["publish_signed", "published", "batch_signed", "batch_paid", "paid"]
TRANSITIONS = ["publish_signed", "published", "paid"]
PAYEES = 30
SETTINGS = ["CHAIN_RPC_URL", "RECORDING_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_PRIVATE_KEY",
            "ORACLE_GAS_BUMP_SECONDS", "PAYOUT_BATCH_GAS_CAP", "PAYOUT_BATCHES_IN_FLIGHT", "STORAGES",
            "ORACLE_TX_SWEEP_AFTER_SECONDS", "CHAIN_CONFIRMATIONS"]  # fmt: skip


def shared(settings: Any) -> dict[str, Any]:
    settings.ORACLE_TX_SWEEP_AFTER_SECONDS = 0
    settings.PAYOUT_BATCH_GAS_CAP = 1_200_000  # PAYEES fit one batch under it
    return json.loads(json.dumps({name: getattr(settings, name) for name in SETTINGS}, default=str))


def resume(w3: Web3, payout_id: int) -> EpochPayout:
    """The beats: pay_epochs (each due payout advanced) and sweep_oracle_txs (each unsettled transaction)."""

    def tick() -> None:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # confirmations, where some are asked
        for due in paying.epoch_payouts_due():
            paying.epoch_payout_advance(payout_id=due)
        for tx_id in oracle_tx.oracle_txs_unsettled(older_than_seconds=0):
            oracle_tx.oracle_tx_advance(tx_id=tx_id)

    wait(lambda: EpochPayout.objects.get(pk=payout_id).state == "paid", "the payout paid", 90, tick)
    return EpochPayout.objects.get(pk=payout_id)


def test_the_census_counts_every_step_of_the_payout(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    chosen = shared(settings)
    epoch = an_epoch(w3, factory_and_token, payees=PAYEES, seed=99)
    run = crash_driver.run("epoch_payout", 0, "after", settings=chosen, args={"payout": epoch.payout_id})
    assert run.returncode == 0, run.output
    assert [s["event"] for s in run.steps] == STEPS, [s["event"] for s in run.steps]
    epoch.assert_paid_once(w3)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(STEPS) + 1), ids=[f"{i}-{e}" for i, e in enumerate(STEPS, 1)])
def test_a_worker_killed_at_a_payout_transition_resumes_and_pays_every_leaf_once(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, kill_at: int, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    chosen = shared(settings)
    epoch = an_epoch(w3, factory_and_token, payees=PAYEES, seed=100 + kill_at * 2 + (when == "after"))
    run = crash_driver.run("epoch_payout", kill_at, when, settings=chosen, args={"payout": epoch.payout_id})
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert run.steps[-1]["event"] == STEPS[kill_at - 1]
    payout = EpochPayout.objects.get(pk=epoch.payout_id)
    done = list(payout.transitions.order_by("pk").values_list("event", flat=True))
    assert done == STEPS[: kill_at if when == "after" else kill_at - 1]

    payout = resume(w3, epoch.payout_id)
    timeline = list(payout.transitions.order_by("pk").values_list("event", "from_state", "to_state"))
    assert [e for e, a, b in timeline if a != b] == TRANSITIONS, "a transition was lost or applied twice"
    assert sorted(e for e, _, _ in timeline) == sorted(STEPS), "a batch was signed or paid twice (or never)"
    epoch.assert_paid_once(w3)  # balances moved by the amounts, each leaf paid once by the chain's events
    invariants.assert_published_once(w3, campaign_contract(w3, epoch.campaign.address), 0)
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1
    assert payout.batches.count() == 1
    assert all(b.status == "paid" for b in payout.batches.all())
