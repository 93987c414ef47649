"""The Django side's web3 connection (CHAIN_RPC_URL), with a timeout and the correlation id on every call."""

from __future__ import annotations

from django.conf import settings
from web3 import Web3

from mrmarket.config import ConfigError
from mrmarket.http import outbound_headers


def get_web3(*, timeout: float | None = None) -> Web3:
    if not settings.CHAIN_RPC_URL:
        raise ConfigError("CHAIN_RPC_URL is not set")
    # Headers given here replace web3's own, so the JSON content type must be restated.
    headers = {"Content-Type": "application/json", **outbound_headers()}
    kwargs = {"timeout": timeout or settings.OUTBOUND_HTTP_TIMEOUT_SECONDS, "headers": headers}
    return Web3(Web3.HTTPProvider(settings.CHAIN_RPC_URL, request_kwargs=kwargs))
