"""The web stage's bootstrap on a second start: custody onboarding is recorded once for the life of the
database (the wallet holds less once the demo order funded the exchange; recording it again was a second,
different deposit under the same key), and a database that describes another chain is emptied to match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from devnet import launch
from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint, transfer
from execution import selectors, services
from execution.domain.ledger import transfer as ledger_transfer
from execution.models import ExchangeAccount, LedgerTransaction
from tests.factories import user_with
from tests.fixtures.chain import chain_of_its_own

# The reset flushes the database, which PostgreSQL refuses inside the transaction a plain django_db test runs in.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.chain]
UNIT = 10**6


# This module resets its chain (as the launcher does when the database described another): its own Anvil, not
# the session's.
anvil, w3 = chain_of_its_own()


@pytest.fixture
def stage(settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, anvil: Anvil) -> Path:
    """The environment the launcher gives its web stage, on this test's data directory."""
    monkeypatch.setenv("CHAIN_RPC_URL", anvil.url)
    monkeypatch.setenv("MRMARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(launch.RUN_MARKER, "first")
    settings.CUSTODY_PRIVATE_KEY = dev_accounts()[5].private_key
    return tmp_path


def test_a_second_start_records_no_second_onboarding(stage: Path, w3, monkeypatch: pytest.MonkeyPatch) -> None:
    custody, elsewhere = dev_accounts()[5], dev_accounts()[6]
    usdt = deploy_dev_token(w3, sender=dev_accounts()[0])
    mint(w3, usdt, custody.address, 1_000 * UNIT, sender=dev_accounts()[0])
    launch._record_custody_holdings({"USDT": usdt})
    assert selectors.ledger_balance(account="custody:USDT") == 1_000 * UNIT
    # The demo order funds the exchange: tokens leave the wallet, and the ledger says where they went.
    transfer(w3, usdt, elsewhere.address, 400 * UNIT, sender=custody)
    services.ledger_record(
        tx=ledger_transfer(
            "o1-sent", "custody_send", asset="USDT", amount=400 * UNIT, source="custody", target="transit:o1"
        )
    )
    before = list(LedgerTransaction.objects.values_list("key", flat=True))

    monkeypatch.setenv(launch.RUN_MARKER, "second")  # Ctrl-C, then `make demo` again
    launch._record_custody_holdings({"USDT": usdt})
    assert list(LedgerTransaction.objects.values_list("key", flat=True)) == before
    assert selectors.ledger_balance(account="custody:USDT") == 600 * UNIT  # what the wallet holds
    assert (stage / "bootstrap-second.done").exists()
    assert not (stage / "bootstrap-first.done").exists()


def test_a_database_of_another_chain_is_emptied_and_the_chain_reset(stage: Path, w3: Web3) -> None:
    token = deploy_dev_token(w3, sender=dev_accounts()[0])
    (stage / "devnet-chain.json").write_text(json.dumps({"token": token}))
    (stage / launch.EXCHANGE_STATE_FILE).write_text("{}")
    services.ledger_record(
        tx=ledger_transfer("seed", "deposit_credit", asset="USDT", amount=5, source="external:chain", target="custody")
    )
    launch._match_database_to_the_world()  # the same chain, the same exchange: everything resumes
    assert LedgerTransaction.objects.filter(key="seed").exists()
    assert (stage / "devnet-chain.json").exists()

    # The chain the database knew is gone (Anvil started without its state file): the contract is not there.
    w3.provider.make_request("anvil_reset", [])  # type: ignore[arg-type]
    for _ in range(3):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    launch._match_database_to_the_world()
    assert not LedgerTransaction.objects.exists()
    assert not (stage / "devnet-chain.json").exists()
    assert not (stage / launch.EXCHANGE_STATE_FILE).exists()
    assert w3.eth.block_number == 0  # the chain was reset with it


def test_a_database_that_names_no_chain_is_emptied(stage: Path) -> None:
    services.ledger_record(
        tx=ledger_transfer("seed", "deposit_credit", asset="USDT", amount=5, source="external:chain", target="custody")
    )
    launch._match_database_to_the_world()
    assert not LedgerTransaction.objects.exists()


def test_a_database_whose_exchange_forgot_its_accounts_is_emptied(stage: Path) -> None:
    launch._match_database_to_the_world()  # a first start: nothing to empty
    ExchangeAccount.objects.create(owner=user_with(), exchange="binance", label="demo", role="trading")
    launch._match_database_to_the_world()  # no exchange-state.json: the exchange knows none of it
    assert not ExchangeAccount.objects.exists()
