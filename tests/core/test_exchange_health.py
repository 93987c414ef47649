"""The status page's exchanges component: each configured exchange answers through ccxt, or says why not."""

from __future__ import annotations

import pytest

from devnet.exchange.fixtures import run_exchange
from devnet.ports import free_port
from mrmarket import health

pytestmark = pytest.mark.django_db


def test_no_exchange_is_not_configured(settings) -> None:
    settings.EXCHANGE_API_URLS = {}
    (result,) = health.run_checks(["exchanges"])
    assert (result.state, result.detail) == ("not_configured", "no exchange configured or enrolled yet")


def test_a_configured_exchange_answers(settings) -> None:
    with run_exchange() as sim:
        settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
        (result,) = health.run_checks(["exchanges"])
    assert (result.state, result.detail) == ("ok", "binance answering")


def test_an_unreachable_exchange_fails_with_its_reason(settings) -> None:
    settings.EXCHANGE_API_URLS = {"binance": f"http://127.0.0.1:{free_port()}"}
    (result,) = health.run_checks(["exchanges"])
    assert result.state == "fail"
    assert result.detail.startswith("binance: NetworkError: binance GET http://127.0.0.1:")
