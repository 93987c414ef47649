"""The devnet of the crash and restart tests: one Anvil, two dev tokens and an exchange simulator on that chain
(each module its own: simulators derive deposit addresses from a fixed seed), an MM order ready to be funded with
a trading and a treasury key of one exchange account, and the crash driver run in a subprocess."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint, token
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts, orders, services
from execution.domain.ledger import transfer
from execution.models import ExchangeAccount, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.roles import Role
from tests.chaos.driver_plugin import ROOT
from tests.factories import user_with
from tests.fixtures.chain import chain_of_its_own

USDT = 10**6
CUSTODY = dev_accounts()[3]
CUSTODY_SEED = 5_000 * USDT  # what the ledger says custody holds before the flow
FUNDING = 1_000 * USDT


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def usdt(w3: Web3) -> str:
    address = deploy_dev_token(w3, sender=dev_accounts()[0])
    mint(w3, address, CUSTODY.address, 1_000_000 * USDT, sender=dev_accounts()[0])
    return address


@pytest.fixture(scope="module")
def sim(anvil: Anvil, w3: Web3, usdt: str) -> Iterator[RunningExchange]:
    hot = dev_accounts()[9]
    mint(w3, usdt, hot.address, 1_000_000 * USDT, sender=dev_accounts()[0])
    chain = ChainConfig(
        rpc_url=anvil.url, assets={"USDT": usdt}, hot_wallet_key=hot.private_key, confirmations=2, poll_interval=0.1
    )
    with run_exchange(SimConfig(run_market=False, chain=chain)) as running:
        yield running


@dataclass
class Flow:
    """An MM order about to be funded, its trading and treasury accounts (keys of one exchange account) and the
    settings every process of the flow needs (the test's and the driver's alike)."""

    order: MMOrder
    trading: ExchangeAccount
    treasury: ExchangeAccount
    venue: str  # the simulator's account id
    settings: dict[str, Any]
    custody_on_chain_before: int
    from_block: int  # the chain's head when the flow began (the module's chain carries earlier tests' transfers)


@pytest.fixture
def flow(settings: Any, anvil: Anvil, sim: RunningExchange, usdt: str, w3: Web3) -> Flow:
    chosen = {
        "CHAIN_RPC_URL": anvil.url,
        "CHAIN_CONFIRMATIONS": 2,
        "EXCHANGE_API_URLS": {"binance": sim.base_url},
        "CUSTODY_ASSETS": {"USDT": {"token": usdt, "decimals": 6}},
        "CUSTODY_PRIVATE_KEY": CUSTODY.private_key,
        "CUSTODY_ADDRESS": CUSTODY.address,
    }
    for name, value in chosen.items():
        setattr(settings, name, value)
    services.ledger_record(
        tx=transfer(
            "custody-seed",
            "deposit_credit",
            asset="USDT",
            amount=CUSTODY_SEED,
            source="external:chain",
            target="custody",
        )
    )
    owner = user_with(Role.OPERATOR)
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    treasury_key = sim.sim.create_key(key.account_id, permissions=frozenset({Permission.WITHDRAW}))
    trading = accounts.exchange_account_enrol(
        owner_id=owner.pk, exchange="binance", label="mm", role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )  # fmt: skip
    treasury = accounts.exchange_account_enrol(
        owner_id=owner.pk, exchange="binance", label="treasury", role="treasury",
        credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
    )  # fmt: skip
    order = orders.mm_order_create(
        owner_id=owner.pk, exchange_account_id=trading.pk, symbol="MMT/USDT", funding_asset="USDT",
        funding_amount=FUNDING,
    )  # fmt: skip
    return Flow(
        order=order,
        trading=trading,
        treasury=treasury,
        venue=key.account_id,
        settings=chosen,
        custody_on_chain_before=token(w3, usdt).functions.balanceOf(CUSTODY.address).call(),
        from_block=w3.eth.block_number + 1,
    )


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def celery_worker(env: dict[str, str]) -> Iterator[Worker]:
    """`tests/chaos/worker.py` running until the block ends (then terminated, and killed if it hangs)."""
    log = Path(tempfile.mkdtemp(prefix="chaos-worker-")) / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
    try:
        yield Worker(proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
