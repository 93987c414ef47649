"""The oracles' public addresses, which new campaigns name: derived from the key where a process holds it, as
declared where it does not (the web process), refused when the two disagree, and a clear error when unknown."""

from __future__ import annotations

import pytest
from eth_account import Account

from mrmarket.config import ConfigError
from mrmarket.oracle_addresses import OracleAddressNotConfigured, oracle_address

KEY = "0x" + "42" * 32
ADDRESS = Account.from_key(KEY).address


def test_the_address_is_derived_from_the_key_where_it_is_held(settings) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = KEY
    settings.RECORDING_ORACLE_ADDRESS = ""
    assert oracle_address("recording") == ADDRESS


def test_the_web_process_knows_it_as_declared(settings) -> None:
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    settings.REPUTATION_ORACLE_ADDRESS = ADDRESS.lower()
    assert oracle_address("reputation") == ADDRESS


def test_a_declared_address_that_is_not_the_keys_is_refused(settings) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = KEY
    settings.RECORDING_ORACLE_ADDRESS = "0x" + "11" * 20
    with pytest.raises(
        ConfigError, match="RECORDING_ORACLE_ADDRESS is not the address of RECORDING_ORACLE_PRIVATE_KEY"
    ):
        oracle_address("recording")


def test_without_either_the_error_names_the_setting(settings) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = ""
    settings.RECORDING_ORACLE_ADDRESS = ""
    with pytest.raises(OracleAddressNotConfigured, match="RECORDING_ORACLE_ADDRESS"):
        oracle_address("recording")
