"""The Django side's web3 connection: reaches the chain, carries the correlation id, says when unset."""

from __future__ import annotations

import pytest

from mrmarket.chain import get_web3
from mrmarket.config import ConfigError
from mrmarket.observability import context


@pytest.mark.chain
def test_get_web3_talks_to_the_chain(settings, anvil) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    with context.bound(request_id="chain-call-1"):
        w3 = get_web3()
        assert w3.eth.chain_id == 31337
    headers = dict(w3.provider.get_request_kwargs()["headers"])  # type: ignore[attr-defined]
    assert headers["X-Request-ID"] == "chain-call-1"
    assert headers["Content-Type"] == "application/json"


def test_get_web3_without_an_rpc_url_names_the_setting(settings) -> None:
    settings.CHAIN_RPC_URL = ""
    with pytest.raises(ConfigError, match="CHAIN_RPC_URL is not set"):
        get_web3()
