"""Fixtures of the recorder's tests: the exchange simulator (its market running, as in tests/execution) and
campaigns on one of its markets, with their metadata documents."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import factory as fb
import pytest

from campaigns.models import Campaign, CampaignMetadata
from devnet.exchange.fixtures import RunningExchange
from tests.executor.harness import live_exchange

SYMBOL = "MMT/USDT"  # a market the simulator lists (devnet/exchange/config.py)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with live_exchange() as ex:
        yield ex


class CampaignFactory(fb.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    chain_id = 31337
    address = fb.Sequence(lambda n: f"0x{n + 0xC0FFEE:040x}")
    factory = "0x" + "fa" * 20
    creator = "0x" + "c0" * 20
    token = "0x" + "ab" * 20
    recording_oracle = "0x" + "01" * 20
    reputation_oracle = "0x" + "02" * 20
    fee_recipient = "0x" + "03" * 20
    epoch_seconds = 60
    dispute_window_seconds = 3600
    budget = 10**24
    fee_bps = 0
    exchange = "binance"
    pair = SYMBOL
    created_block = fb.Sequence(lambda n: n + 1)
    created_tx = "0x" + "77" * 32
    funded = True


def scoring(*, sample_seconds: int, max_spread_bps: int) -> dict[str, object]:
    return {
        "sample_seconds": sample_seconds,
        "max_spread_bps": max_spread_bps,
        "min_order_quote": "10",
        "min_rest_seconds": 0,
        "single_side_divisor": 3,
        "depth_weight": "1/2",
        "volatility_weighting": False,
        "max_off_mid_trade_bps": 100,
    }


def ms_datetime(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC)


@pytest.fixture
def make_campaign() -> Callable[..., Campaign]:
    """A campaign from `start_ms` to `end_ms` whose metadata document sets the sample period and the band.
    (Rows made directly: the schema's 10 s floor on sample_seconds would make every test minutes long.)"""

    def make(
        *, start_ms: int, end_ms: int, sample_seconds: int = 1, max_spread_bps: int = 40, **fields: object
    ) -> Campaign:
        params = scoring(sample_seconds=sample_seconds, max_spread_bps=max_spread_bps)
        document = {"version": 1, "scoring": params}
        digest = "0x" + hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()
        CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": document})
        return CampaignFactory.create(
            start=ms_datetime(start_ms), end=ms_datetime(end_ms), metadata_hash=digest, **fields
        )

    return make
