"""The devnet of the reliability drills: an Anvil of the module's own (simulators derive deposit addresses from a
fixed seed, so two on one chain would see each other's deposits), USDT and MMT deployed and minted to the
custody wallet and the exchange's hot wallet, and the exchange simulator watching that chain."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from web3 import Web3

from devnet.chain import Anvil, DevAccount, deploy_dev_token, dev_accounts, mint
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from tests.executor.harness import busy_markets
from tests.fixtures.chain import chain_of_its_own

USDT, MMT = 10**6, 10**18
CUSTODY: DevAccount = dev_accounts()[3]
HOT_WALLET: DevAccount = dev_accounts()[9]


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def tokens(w3: Web3) -> dict[str, str]:
    minter = dev_accounts()[0]
    usdt = deploy_dev_token(w3, sender=minter)
    mmt = deploy_dev_token(w3, sender=minter, name="Mr.Market Token", symbol="MMT", decimals=18)
    for address, unit in ((usdt, USDT), (mmt, MMT)):
        mint(w3, address, HOT_WALLET.address, 1_000_000 * unit, sender=minter)
        mint(w3, address, CUSTODY.address, 100_000 * unit, sender=minter)
    return {"USDT": usdt, "MMT": mmt}


def chain_config(anvil: Anvil, tokens: dict[str, str], *, seed: str) -> ChainConfig:
    return ChainConfig(
        rpc_url=anvil.url,
        assets=tokens,
        hot_wallet_key=HOT_WALLET.private_key,
        confirmations=2,
        poll_interval=0.1,
        address_seed=seed,
    )


@pytest.fixture(scope="module")
def sim(anvil: Anvil, tokens: dict[str, str]) -> Iterator[RunningExchange]:
    """The simulator on this chain, its MMT/USDT takers busy enough to fill a job within seconds."""
    config = SimConfig(
        markets=busy_markets(),
        run_market=True,
        tick_seconds=Decimal("0.2"),
        chain=chain_config(anvil, tokens, seed="mrmarket-drill"),
    )
    with run_exchange(config) as running:
        yield running
