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

from payouts import oracle_tx, paying
from payouts.models import EpochPayout, OracleTransaction
from tests.chaos.crash_fixtures import Driver, driver  # noqa: F401 (fixtures)
from tests.chaos.crash_invariants import wait
from tests.payouts.test_paying import an_epoch, anvil, chain_settings, factory_and_token, w3  # noqa: F401 (fixtures)
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

TRANSITIONS = ["publish_signed", "published", "paid"]
SETTINGS = ["CHAIN_RPC_URL", "RECORDING_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_PRIVATE_KEY",
            "ORACLE_GAS_BUMP_SECONDS", "PAYOUT_BATCH_GAS_CAP", "PAYOUT_BATCHES_IN_FLIGHT", "STORAGES",
            "ORACLE_TX_SWEEP_AFTER_SECONDS"]  # fmt: skip


def shared(settings: Any) -> dict[str, Any]:
    settings.ORACLE_TX_SWEEP_AFTER_SECONDS = 0
    settings.PAYOUT_BATCH_GAS_CAP = 1_200_000  # several batches: a kill can fall between two
    return json.loads(json.dumps({name: getattr(settings, name) for name in SETTINGS}, default=str))


def resume(payout_id: int) -> EpochPayout:
    """The beats: pay_epochs (each due payout advanced) and sweep_oracle_txs (each unsettled transaction)."""

    def tick() -> None:
        for due in paying.epoch_payouts_due():
            paying.epoch_payout_advance(payout_id=due)
        for tx_id in oracle_tx.oracle_txs_unsettled(older_than_seconds=0):
            oracle_tx.oracle_tx_advance(tx_id=tx_id)

    wait(lambda: EpochPayout.objects.get(pk=payout_id).state == "paid", "the payout paid", 90, tick)
    return EpochPayout.objects.get(pk=payout_id)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(TRANSITIONS) + 1), ids=TRANSITIONS)
def test_a_worker_killed_at_a_payout_transition_resumes_and_pays_every_leaf_once(
    driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, kill_at: int, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    chosen = shared(settings)
    epoch = an_epoch(w3, factory_and_token, payees=60, seed=100 + kill_at * 2 + (when == "after"))
    run = driver.run("epoch_payout", kill_at, when, settings=chosen, args={"payout": epoch.payout_id})
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert run.steps[-1]["event"] == TRANSITIONS[kill_at - 1]
    payout = EpochPayout.objects.get(pk=epoch.payout_id)
    done = list(payout.transitions.order_by("pk").values_list("event", flat=True))
    assert done == TRANSITIONS[: kill_at if when == "after" else kill_at - 1]

    payout = resume(epoch.payout_id)
    assert list(payout.transitions.order_by("pk").values_list("event", flat=True)) == TRANSITIONS
    epoch.assert_paid_once(w3)  # balances moved by the amounts, each leaf paid once by the chain's events
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1
    assert payout.batches.count() > 1
    assert all(b.status == "paid" for b in payout.batches.all())
