"""Two orders funded at once against a custody balance that covers one: the reservation made with `fund` lets
exactly one sign; the other is refused with a typed error and changes nothing. PostgreSQL only — SQLite
serializes writers itself, so it cannot show the race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from execution import outbound, selectors
from execution.domain.ledger import asset_totals
from execution.errors import LedgerOverdraft
from execution.models import CustodyNonce, CustodyTransfer, LedgerTransaction, MMOrder
from tests.execution.test_funds import UNIT, account, dev_token, new_order, sim  # noqa: F401 (fixtures)
from tests.fixtures.threads import at_once
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")


def test_two_fundings_at_once_against_a_balance_for_one_sign_once(account, monkeypatch) -> None:  # noqa: F811
    first, second = new_order(account, amount=3_000 * UNIT), new_order(account, amount=3_000 * UNIT)
    finished = threading.Event()
    real = outbound._deposit_address

    def after_the_other(exchange_account, asset):
        # Whoever reaches signing waits until the other funding has finished: without a reservation both
        # would be here at once, past the balance check (the wait then times out and both sign).
        finished.wait(timeout=15)
        return real(exchange_account, asset)

    monkeypatch.setattr(outbound, "_deposit_address", after_the_other)

    def fund(order_id: int) -> Callable[[], Any]:
        def work() -> Any:
            try:
                return outbound.mm_order_fund(order_id=order_id)
            finally:
                finished.set()

        return work

    results = at_once([fund(first.pk), fund(second.pk)])
    signed = [r for r in results if isinstance(r, MMOrder)]
    refused = [r for r in results if isinstance(r, LedgerOverdraft)]
    assert len(signed) == 1, results
    assert len(refused) == 1, results
    assert refused[0].code == "ledger_overdraft"
    winner = signed[0]
    loser = second if winner.pk == first.pk else first
    assert list(CustodyTransfer.objects.values_list("order_id", flat=True)) == [winner.pk]  # one signed, one sent
    assert winner.state == "withdrawing_to_exchange"
    assert MMOrder.objects.get(pk=loser.pk).state == "created"
    assert not LedgerTransaction.objects.filter(key__startswith=f"o{loser.pk}-").exists()
    assert CustodyNonce.objects.get().next_nonce == CustodyTransfer.objects.get().nonce + 1
    assert selectors.ledger_balance(account="custody:USDT") == 2_000 * UNIT
    assert selectors.ledger_balance(account=f"transit:o{winner.pk}:USDT") == 3_000 * UNIT
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}


def test_two_beats_at_once_replace_an_overdue_transfer_once(account, w3, settings) -> None:  # noqa: F811
    settings.CUSTODY_GAS_BUMP_SECONDS = 60
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        order = outbound.mm_order_fund(order_id=new_order(account).pk)
        overdue = timezone.now() - timedelta(seconds=120)
        CustodyTransfer.objects.filter(order=order).update(signed_at=overdue)
        results = at_once([lambda: outbound.mm_order_track_deposit(order_id=order.pk)] * 2)
        assert all(isinstance(r, MMOrder) for r in results), results
        sent = CustodyTransfer.objects.get(order=order)
        assert sent.versions.count() == 2  # the original and one replacement
        assert w3.eth.get_transaction(sent.tx_hash)["nonce"] == sent.nonce
        w3.provider.make_request("evm_mine", [])
        assert outbound.mm_order_track_deposit(order_id=order.pk).state == "deposit_confirming"
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
