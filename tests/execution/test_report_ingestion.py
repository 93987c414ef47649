"""Booking signed reports: every asset the exchange reports is booked in its own base units (a fee in BNB, a base
custody does not know), repeatably and without ever raising; a report over the wire's size caps is refused
typed and counted, the reports before it are stored, and it leaves no ledger trace."""

from __future__ import annotations

import copy

import pytest

from attestation.models import ExecutorRecord
from execution import reports, selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import NON_CUSTODY_DECIMALS, transfer
from execution.errors import ReportRejected
from execution.models import Alert, ExchangeAccount, ExecutionReport, LedgerTransaction, MMOrder
from tests.execution.gate_stand_in import GateStandIn
from tests.factories import user_with
from tests.wire.builders import KEY, report
from wire.canonical import digest
from wire.reports import MAX_FILLS, SignedReport, sign_report

pytestmark = pytest.mark.django_db

URL = "http://executor.test"
USDT = 10**6


@pytest.fixture(autouse=True)
def _custody(settings, gate_stand_in: GateStandIn) -> None:
    gate_stand_in.vouch(KEY.public_hex, url=URL)  # KEY stands for an attested executor's key (conftest.py)
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }


def running_order(symbol: str = "MMT/USDT") -> MMOrder:
    """A running order with 1,000 USDT on its exchange account, its reports signed by KEY."""
    owner = user_with()
    account = ExchangeAccount.objects.create(owner=owner, exchange="binance", label="t", role="trading")
    ExecutorRecord.objects.get_or_create(url=URL)
    order = MMOrder.objects.create(
        owner=owner,
        exchange_account=account,
        symbol=symbol,
        funding_asset="USDT",
        funding_amount=1_000 * USDT,
        state=mm.State.RUNNING,
        job_id="mmo1-test",
        job_spec={"job_id": "mmo1-test"},
        executor_url=URL,
        executor_signing_key=KEY.public_hex,
    )
    services.ledger_record(
        tx=transfer(
            f"o{order.pk}-deposit-credited",
            "deposit_credit",
            asset="USDT",
            amount=1_000 * USDT,
            source="external:chain",
            target=f"exchange:a{account.pk}:free",
        )
    )
    return order


def fill(trade_id: str, ts_ms: int, *, side: str, amount: str, price: str, fee: str, fee_asset: str) -> dict:
    return {
        "ts_ms": ts_ms,
        "exchange_ts_ms": ts_ms,
        "trade_id": trade_id,
        "client_order_id": "c1",
        "exchange_order_id": "e1",
        "side": side,
        "price": price,
        "amount": amount,
        "fee": fee,
        "fee_asset": fee_asset,
        "liquidity": "maker",
    }


def doc_for(order: MMOrder, sequence: int, prev: SignedReport | None, fills: list[dict] | None = None) -> dict:
    doc = report(sequence, prev_digest=prev.digest if prev else None, job_id=order.job_id)
    doc["symbol"] = order.symbol
    doc["job_spec_digest"] = digest(order.job_spec)
    start = doc["window_start_ms"]
    doc["fills"] = [dict(f, ts_ms=start + 10 + i, exchange_ts_ms=start + 10 + i) for i, f in enumerate(fills or [])]
    return doc


def signed_anyway(doc: dict) -> SignedReport:
    """Signed by the job's key without the signer's own schema check: what a faulty or hostile executor sends."""
    d = digest(doc)
    return SignedReport(report=doc, digest=d, signature=KEY.sign(bytes.fromhex(d)))


def holdings_and_ledger(order: MMOrder) -> tuple[dict[str, int], int]:
    return selectors.order_holdings(order), LedgerTransaction.objects.count()


def test_a_fee_in_an_asset_custody_does_not_hold_is_booked_in_its_units_and_held() -> None:
    order = running_order()
    buy = fill("t1", 0, side="buy", amount="100", price="2", fee="0.0001234", fee_asset="BNB")
    r0 = sign_report(doc_for(order, 0, None, [buy]), KEY)
    assert reports.ingest_reports(order, [r0.as_json()]) == 1
    fee_units = 1234 * 10 ** (NON_CUSTODY_DECIMALS - 7)
    expected = {"MMT": 100 * 10**18, "USDT": (1_000 - 200) * USDT, "BNB": -fee_units}
    assert selectors.order_holdings(order) == expected
    account = order.exchange_account_id
    # The BNB the account already held, unknown to the ledger, is recognised under the account, then spent.
    assert selectors.ledger_balance(account=f"exchange:a{account}:free:BNB") == 0
    assert selectors.ledger_balance(account=f"external:unbooked:a{account}:BNB") == -fee_units
    assert selectors.ledger_balance(account="external:fees:BNB") == fee_units
    # The next beat, and a second fee in BNB, book once each and never raise.
    before = holdings_and_ledger(order)
    assert reports.ingest_reports(order, [r0.as_json()]) == 0
    assert holdings_and_ledger(order) == before
    sell = fill("t2", 0, side="sell", amount="50", price="2", fee="0.0001", fee_asset="BNB")
    r1 = sign_report(doc_for(order, 1, r0, [sell]), KEY)
    assert reports.ingest_reports(order, [r0.as_json(), r1.as_json()]) == 1
    assert selectors.order_holdings(order)["BNB"] == -fee_units - 10 ** (NON_CUSTODY_DECIMALS - 4)
    assert ExecutorRecord.objects.get(url=URL).reports_refused == 0


def test_a_bnb_balance_the_ledger_knows_pays_the_fee_without_any_recognition() -> None:
    order = running_order()
    account = order.exchange_account_id
    services.ledger_record(
        tx=transfer(
            f"a{account}-bnb",
            "deposit_credit",
            asset="BNB",
            amount=10**18,
            source="external:chain",
            target=f"exchange:a{account}:free",
        )
    )
    buy = fill("t1", 0, side="buy", amount="1", price="2", fee="0.5", fee_asset="BNB")
    reports.ingest_reports(order, [sign_report(doc_for(order, 0, None, [buy]), KEY).as_json()])
    assert selectors.order_holdings(order)["BNB"] == -(10**18) // 2
    assert selectors.ledger_balance(account=f"exchange:a{account}:free:BNB") == 10**18 // 2
    assert selectors.ledger_balance(account=f"external:unbooked:a{account}:BNB") == 0


def test_a_base_custody_does_not_know_is_booked_bought_and_sold() -> None:
    order = running_order("XYZ/USDT")
    fills = [
        fill("t1", 0, side="buy", amount="10.5", price="3", fee="0.01", fee_asset="XYZ"),
        fill("t2", 0, side="sell", amount="12", price="3", fee="0.036", fee_asset="USDT"),
    ]
    reports.ingest_reports(order, [sign_report(doc_for(order, 0, None, fills), KEY).as_json()])
    scale = 10**NON_CUSTODY_DECIMALS
    # Bought 10.5, paid 0.01 of it as fee, sold 12: 1.51 more than it bought, from what the account held.
    assert selectors.order_holdings(order) == {
        "XYZ": -151 * scale // 100,
        "USDT": 1_004_464 * USDT // 1000,  # 1,000 − 31.5 + 36 − 0.036
    }
    assert selectors.ledger_balance(account=f"exchange:a{order.exchange_account_id}:free:XYZ") == 0


def _refused(order: MMOrder, page: list[dict], code: str) -> ReportRejected:
    with pytest.raises(ReportRejected) as caught:
        reports.ingest_reports(order, page)
    assert caught.value.extra["reason_code"] == code
    return caught.value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "1" + "0" * 70),  # longer than any decimal the wire carries
        ("price", "0." + "0" * 62 + "1"),
        ("fee", "9" * 65),
    ],
)
def test_an_over_long_decimal_is_refused_typed_counted_and_does_not_wedge(field: str, value: str) -> None:
    order = running_order()
    good = fill("t1", 0, side="buy", amount="10", price="2", fee="0.01", fee_asset="MMT")
    r0 = sign_report(doc_for(order, 0, None, [good]), KEY)
    bad_doc = doc_for(order, 1, r0, [fill("t2", 0, side="buy", amount="1", price="2", fee="0", fee_asset="MMT")])
    bad_doc["fills"][0][field] = value
    bad = signed_anyway(bad_doc)
    for _beat in range(2):
        error = _refused(order, [r0.as_json(), bad.as_json()], "too_large")
        assert field in error.message
    # The report before it is stored and booked once; nothing of the refused one is.
    assert list(ExecutionReport.objects.filter(order=order).values_list("sequence", flat=True)) == [0]
    assert not LedgerTransaction.objects.filter(key__contains="-t2").exists()
    assert selectors.order_holdings(order)["MMT"] == 10 * 10**18 - 10**16
    record = ExecutorRecord.objects.get(url=URL)
    assert (record.reports_accepted, record.reports_refused) == (1, 2)
    assert Alert.objects.filter(kind="report_rejected", detail__code="too_large").exists()


def test_an_amount_beyond_what_the_ledger_holds_is_refused_typed_with_nothing_booked() -> None:
    order = running_order()
    huge = fill("t1", 0, side="buy", amount="9" * 60, price="1", fee="0", fee_asset="MMT")  # 10^78 base units
    before = holdings_and_ledger(order)
    _refused(order, [signed_anyway(doc_for(order, 0, None, [huge])).as_json()], "too_large")
    assert holdings_and_ledger(order) == before
    assert not ExecutionReport.objects.exists()


def test_too_many_fills_are_refused_typed_and_counted_with_nothing_booked() -> None:
    order = running_order()
    many = [
        fill(f"t{i}", 0, side="buy", amount="0.1", price="1", fee="0", fee_asset="MMT") for i in range(MAX_FILLS + 1)
    ]
    doc = doc_for(order, 0, None, many)
    before = holdings_and_ledger(order)
    error = _refused(order, [signed_anyway(doc).as_json()], "too_large")
    assert f"more than {MAX_FILLS} items" in error.message
    assert holdings_and_ledger(order) == before
    assert not ExecutionReport.objects.exists()
    assert ExecutorRecord.objects.get(url=URL).reports_refused == 1
    # The refused report left no trace in the chain: a report 0 within the caps is still taken as its start.
    fits = copy.deepcopy(doc)
    fits["fills"] = fits["fills"][:3]
    assert reports.ingest_reports(order, [sign_report(fits, KEY).as_json()]) == 1


def test_a_report_spending_custody_funds_the_ledger_does_not_show_is_refused_typed_not_raised() -> None:
    order = running_order()
    good = fill("t1", 0, side="buy", amount="10", price="2", fee="0", fee_asset="USDT")
    r0 = sign_report(doc_for(order, 0, None, [good]), KEY)
    overspend = fill("t2", 0, side="buy", amount="1000", price="2", fee="0", fee_asset="USDT")  # 2,000 of 980 USDT
    r1 = sign_report(doc_for(order, 1, r0, [overspend]), KEY)
    for _beat in range(2):
        error = _refused(order, [r0.as_json(), r1.as_json()], "ledger_overdraft")
        assert "exchange:a" in error.message
    assert list(ExecutionReport.objects.filter(order=order).values_list("sequence", flat=True)) == [0]
    assert selectors.order_holdings(order)["USDT"] == 980 * USDT
    assert not LedgerTransaction.objects.filter(key__contains="-t2").exists()
    assert Alert.objects.filter(kind="report_unbookable", detail__code="ledger_overdraft").count() == 1
    record = ExecutorRecord.objects.get(url=URL)
    assert (record.reports_accepted, record.reports_refused) == (1, 2)


def test_spending_all_it_holds_is_booked_when_rounding_up_would_overdraw_by_one_unit() -> None:
    order = running_order()
    # 1 MMT at 1000.0000001 USDT costs 1000.0000001: rounded up (what leaves the account) that is one base unit
    # more than the 1,000 USDT the ledger holds, though the exchange held (and spent) exactly what it shows.
    spend_all = fill("t1", 0, side="buy", amount="1", price="1000.0000001", fee="0", fee_asset="USDT")
    r0 = sign_report(doc_for(order, 0, None, [spend_all]), KEY)
    assert reports.ingest_reports(order, [r0.as_json()]) == 1
    assert selectors.order_holdings(order) == {"MMT": 10**18}  # every USDT unit spent, none overdrawn
    assert LedgerTransaction.objects.get(key=f"o{order.pk}-fill-t1").memo == "rounded"
    # A real shortfall (more than the unit rounding adds) is still refused.
    overspend = fill("t2", 0, side="buy", amount="1", price="0.000002", fee="0", fee_asset="USDT")
    r1 = sign_report(doc_for(order, 1, r0, [overspend]), KEY)
    _refused(order, [r0.as_json(), r1.as_json()], "ledger_overdraft")
