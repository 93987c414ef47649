"""Fixtures for the exchange cross-check (this folder's `sim` overrides the payouts one): the exchange simulator
on its own Anvil (deposit addresses come from a fixed seed, so a simulator must not share a chain with another
one's deposits), with USDT and BTC as tokens so that deposit addresses and withdrawals of the BTC/USDT market's
assets exist, and a quiet market (no agents: every order and trade is one a test made)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from tests.fixtures.chain import chain_of_its_own

HOT_WALLET = dev_accounts()[9]


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def sim(anvil: Anvil, w3: Web3) -> Iterator[RunningExchange]:
    owner = dev_accounts()[0]
    usdt = deploy_dev_token(w3, sender=owner)
    btc = deploy_dev_token(w3, sender=owner, name="Dev BTC", symbol="BTC", decimals=8)
    mint(w3, usdt, HOT_WALLET.address, 1_000_000 * 10**6, sender=owner)
    mint(w3, btc, HOT_WALLET.address, 1_000 * 10**8, sender=owner)
    chain = ChainConfig(
        rpc_url=anvil.url,
        assets={"USDT": usdt, "BTC": btc},
        hot_wallet_key=HOT_WALLET.private_key,
        confirmations=1,
        poll_interval=0.1,
    )
    with run_exchange(SimConfig(run_market=False, chain=chain)) as running:
        yield running
