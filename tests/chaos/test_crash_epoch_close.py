"""A worker killed (SIGKILL) at every transition of an epoch close (collecting → closing → stored → recorded), just
before it is written and just after it committed; then the close_epochs beat takes it on (a new task, another
worker name) and the epoch's results are recorded on chain exactly once, under the bundle the close stored, each
step once in the close's timeline. The campaign and its inputs are tests/payouts/test_closing.py's."""

# The fixtures are imported from other modules (a conftest here would override the matrix tests' own devnet):
# pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
from typing import Any

import pytest
from web3 import Web3

from devnet.protocol import campaign as campaign_contract
from payouts import closing
from payouts.domain.epochs import CloseState
from payouts.models import EpochClose, OracleTransaction
from tests.chaos import invariants
from tests.chaos.crash_invariants import wait
from tests.chaos.driver_plugin import Driver
from tests.payouts.test_closing import (  # noqa: F401 (fixtures)
    HAPPY,
    anvil,
    chain_now,
    close_settings,
    factory_address,
    open_campaign,
    token,
    transitions,
    w3,
)
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

TRANSITIONS = [event for event, _, _ in HAPPY]  # grace_over, stored, recorded
LEASE_SECONDS = 2  # how long a killed builder holds the close (900 s in production)
SETTINGS = ["CHAIN_RPC_URL", "RECORDING_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_PRIVATE_KEY",
            "RECORDING_ORACLE_RETIRED_KEYS", "ORACLE_GAS_BUMP_SECONDS", "ORACLE_REPORT_GRACE_SECONDS",
            "ORACLE_PUBLIC_BASE_URL", "STORAGES", "ORACLE_CLOSE_LEASE_SECONDS", "CHAIN_CONFIRMATIONS"]  # fmt: skip


def shared(settings: Any) -> dict[str, Any]:
    settings.ORACLE_CLOSE_LEASE_SECONDS = LEASE_SECONDS
    return json.loads(json.dumps({name: getattr(settings, name) for name in SETTINGS}, default=str))


def resume(w3: Web3, close_id: int) -> EpochClose:
    """The close_epochs beat, tick after tick: each due close advanced by a new task (its own worker name)."""
    ticks = iter(range(10_000))

    def tick() -> None:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # the chain's clock moves on
        for due in closing.epoch_closes_due(now=chain_now(w3)):
            closing.epoch_close_advance(close_id=due, worker=f"beat-{next(ticks)}", now=chain_now(w3))

    wait(lambda: EpochClose.objects.get(pk=close_id).state == CloseState.RECORDED, "the close recorded", 60, tick)
    return EpochClose.objects.get(pk=close_id)


def check(w3: Web3, close: EpochClose) -> None:
    assert transitions(close) == HAPPY, "a step of the close was lost or applied twice"
    # The beat closes the campaign's next epoch too (it is over): only this epoch's are counted.
    event = invariants.assert_recorded_once(w3, campaign_contract(w3, close.campaign.address), close.epoch)
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == close.bundle_digest
    purpose = f"record:{close.campaign.chain_id}:{close.campaign.address}:{close.epoch}"
    assert OracleTransaction.objects.filter(purpose_key__startswith=purpose).count() == 1, "a second recordResults"
    assert close.lease_owner == ""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(TRANSITIONS) + 1), ids=TRANSITIONS)
def test_a_worker_killed_at_a_close_transition_resumes_and_records_once(
    crash_driver: Driver, w3: Web3, factory_address: str, token: str, settings: Any, kill_at: int, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    run = crash_driver.run("epoch_close", kill_at, when, settings=shared(settings), args={"close": close.pk})
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert run.steps[-1]["event"] == TRANSITIONS[kill_at - 1]
    done = [event for event, _, _ in transitions(EpochClose.objects.get(pk=close.pk))]
    assert done == TRANSITIONS[: kill_at if when == "after" else kill_at - 1]
    check(w3, resume(w3, close.pk))
