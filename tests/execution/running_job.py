"""Helpers for tests that run an MM order's job (fixtures in conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from execution import accounts, jobs, services
from execution.executor_client import ExecutorClient
from execution.models import ExchangeAccount, ExecutionReport, LedgerTransaction, MMOrder


def wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.2)


def executor_reports(order: MMOrder) -> list[Any]:
    with ExecutorClient(order.executor_url) as client:
        return list(client.reports(order.job_id, after=None)["reports"])


def stop_and_check(order: MMOrder) -> MMOrder:
    """Stop the order's job through the services; then nothing rests on the exchange, every report is stored
    once and every fill in them is one ledger entry. Returns the order, released (`stopping`, no job)."""
    services.mm_order_stop(order_id=order.pk)
    wait(lambda: jobs.mm_order_wind_down(order_id=order.pk).job_id == "")
    stopped = MMOrder.objects.get(pk=order.pk)
    assert stopped.state == "stopping"
    account: ExchangeAccount = stopped.exchange_account
    creds = accounts.exchange_account_credentials(account=account)
    from django.conf import settings

    from devnet.exchange.fixtures import make_ccxt

    client = make_ccxt(settings.EXCHANGE_API_URLS["binance"], creds.api_key, creds.secret)
    assert client.fetch_open_orders("MMT/USDT") == []
    orders = client.fetch_orders("MMT/USDT", limit=1000)
    cids = [o["clientOrderId"] for o in orders]
    assert len(cids) == len(set(cids)), "a client order id reached the exchange twice"
    reports = list(ExecutionReport.objects.filter(order=stopped).order_by("sequence"))
    assert reports, "the final report is stored"
    assert [r.sequence for r in reports] == list(range(len(reports))), "reports are stored once, without gaps"
    fills = sum(r.fills for r in reports)
    assert LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count() == fills
    trades = client.fetch_my_trades("MMT/USDT", limit=1000)
    assert fills == len(trades), "every trade on the exchange is one booked fill"
    return stopped
