"""The executor's configuration policy (ADR 0012): what the host may choose at runtime, what it may not, and the
runtime-configuration document that binds the trust-relevant choices into every quote."""

from __future__ import annotations

import json
from typing import Any

import pytest

from executor.config import Config, ConfigError
from wire.attestation import BindingError, runtime_config_digest

KEY = "ab" * 32


def env(**extra: str) -> dict[str, str]:
    return {"EXECUTOR_CONTROLLER_KEY": KEY, **extra}


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080", "http://api.binance.com", "ftp://api.binance.com", "api"])
def test_outside_dev_mode_exchange_apis_are_https_only(url: str) -> None:
    with pytest.raises(ConfigError, match="EXECUTOR_EXCHANGE_API_URLS"):
        Config.from_env(env(EXECUTOR_EXCHANGE_API_URLS=json.dumps({"binance": url})))
    with pytest.raises(ConfigError):
        Config(controller_key=KEY, exchange_api_urls={"binance": url})


def test_dev_mode_allows_http_and_says_so_in_the_runtime_config() -> None:
    urls = json.dumps({"binance": "http://127.0.0.1:9000/"})
    config = Config.from_env(env(EXECUTOR_EXCHANGE_API_URLS=urls, EXECUTOR_DEV="true"))
    doc = config.runtime_config()
    assert doc["dev"] is True
    assert doc["exchange_api_urls"] == {"binance": "http://127.0.0.1:9000"}


def test_the_runtime_config_names_what_the_host_chose_and_its_digest_changes_with_each() -> None:
    config = Config.from_env(env(EXECUTOR_EXCHANGE_API_URLS=json.dumps({"binance": "https://Testnet.Binance.vision/"})))
    doc = config.runtime_config()
    assert doc == {
        "schema": "mrmarket.executor.runtime/v1",
        "controller_key": KEY,
        "exchange_api_urls": {"binance": "https://testnet.binance.vision"},
        "quote_provider": "none",
        "dev": False,
    }
    base = runtime_config_digest(doc)
    bends: list[dict[str, Any]] = [
        {"controller_key": "cd" * 32},
        {"exchange_api_urls": {"binance": "https://evil.example"}},
        {"exchange_api_urls": {}},
        {"quote_provider": "configfs-tsm"},
        {"dev": True},
    ]
    for bent in bends:
        assert runtime_config_digest({**doc, **bent}) != base
    with pytest.raises(BindingError):
        runtime_config_digest({**doc, "exchange_api_urls": {"binance": "https://testnet.binance.vision/"}})
    with pytest.raises(BindingError):
        runtime_config_digest({**doc, "extra": 1})


def test_production_defaults_are_ccxts_own_urls() -> None:
    config = Config.from_env(env())
    assert config.exchange_api_urls == {}
    assert config.dev is False
    assert config.runtime_config()["exchange_api_urls"] == {}


def test_bad_dev_flag_is_refused() -> None:
    with pytest.raises(ConfigError, match="EXECUTOR_DEV"):
        Config.from_env(env(EXECUTOR_DEV="maybe"))


async def test_the_gateway_always_verifies_certificates() -> None:
    from executor.exchange import Gateway

    gateway = Gateway("binance", base_url="https://testnet.binance.vision")
    try:
        assert gateway.client.verify is True
        assert gateway.client.urls["api"]["public"].startswith("https://testnet.binance.vision/")
    finally:
        await gateway.close()
