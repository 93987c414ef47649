"""Fixtures of the chaos matrix: an RPC proxy in front of the module's Anvil (`tests/chaos/rpc_proxy.py`), which
product code reaches through CHAIN_RPC_URL. Everything else comes from the fixtures of the flows under test
(tests/execution, tests/payouts), imported by each matrix module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devnet.chain import Anvil
from tests.chaos.rpc_proxy import RpcProxy, rpc_proxy


@pytest.fixture(scope="module")
def proxy(anvil: Anvil) -> Iterator[RpcProxy]:
    with rpc_proxy(anvil.url) as running:
        yield running


@pytest.fixture
def node(proxy: RpcProxy) -> Iterator[RpcProxy]:
    """The proxy, healthy at the start and the end of each test."""
    proxy.reset()
    try:
        yield proxy
    finally:
        proxy.clear()
