"""Django's logs: secret-named fields at any depth, and every secret the process holds (an exchange secret it
decrypted, its own keys), are masked in every line, rendered tracebacks included."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.observability.logging import get_logger
from wire.redaction import redact_text

CANARY = "canary-django-secret-77c1f0e2"


def test_nested_secret_fields_are_redacted(json_logs) -> None:
    get_logger("t").info(
        "probe", request={"headers": {"Authorization": "Token abc", "accept": "json"}}, keys=[{"api_key": "k1"}]
    )
    (line,) = json_logs.events("probe")
    assert line["request"] == {"headers": {"Authorization": "[redacted]", "accept": "json"}}
    assert line["keys"] == [{"api_key": "[redacted]"}]


def test_a_held_exchange_secret_is_masked_everywhere(json_logs) -> None:
    ExchangeCredentials(api_key="key-1", secret=CANARY)  # holding it in memory registers it
    log = get_logger("mrmarket.exchanges.client")
    try:
        raise RuntimeError(f"binance said: bad signature made with {CANARY}")
    except RuntimeError:
        log.exception("exchange_failed", context={"note": f"retrying with {CANARY}"})
        logging.getLogger("ccxt.base").exception("raw %s", CANARY)
    lines = json_logs.lines
    assert lines
    for line in lines:
        assert CANARY not in str(line)
    (structured,) = json_logs.events("exchange_failed")
    assert structured["context"] == {"note": "retrying with [redacted]"}
    assert "bad signature made with [redacted]" in structured["exception"]
    (plain,) = json_logs.events("raw [redacted]")
    assert "bad signature made with [redacted]" in plain["exception"]


@pytest.mark.parametrize("name", ["SECRET_KEY", "CONTROLLER_SIGNING_KEY", "CUSTODY_PRIVATE_KEY"])
def test_the_configured_secrets_are_registered(name: str) -> None:
    value = getattr(settings, name)
    assert value
    assert redact_text(f"<{value}>") == "<[redacted]>"
