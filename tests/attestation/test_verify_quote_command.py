"""`manage.py verify_quote`: one JSON object out, exit 0 verified / 1 refused / 2 unusable input. No database."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from devnet.tdx.authority import DevQuoteAuthority
from tests.plugins.require import require
from wire.attestation import report_data

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(settings.BASE_DIR).parent / "shared" / "fixtures" / "tdx"
AT = 1_751_000_000
REAL_MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
KEYS = {"ok", "tcb_status", "advisory_ids", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "report_data", "debug"}


@pytest.fixture
def real_files() -> tuple[Path, Path]:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    return FIXTURES / "tdx_quote", FIXTURES / "tdx_quote_collateral.json"


def run(*args: str) -> tuple[int, dict]:
    """call_command, returning (exit code, the printed JSON)."""
    out = StringIO()
    try:
        call_command("verify_quote", *args, stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    return code, json.loads(lines[0])


def test_real_quote_verifies(real_files) -> None:
    quote, collateral = real_files
    code, result = run("--quote", str(quote), "--collateral", str(collateral), "--at", str(AT))
    assert code == 0
    assert result["ok"] is True
    assert set(result) == KEYS
    assert (result["tcb_status"], result["advisory_ids"], result["mrtd"]) == ("UpToDate", [], REAL_MRTD)
    assert result["rtmr3"] == "0" * 96
    assert result["debug"] is False


def test_refusal_prints_reason_and_exits_1(real_files) -> None:
    quote, collateral = real_files
    code, result = run("--quote", str(quote), "--collateral", str(collateral), "--at", "1760000000")
    assert code == 1
    assert (result["ok"], result["reason"]) == (False, "collateral_expired")
    assert "expired" in result["detail"].lower()
    assert result["mrtd"] == REAL_MRTD


def test_at_defaults_to_now(real_files) -> None:
    quote, collateral = real_files
    code, result = run("--quote", str(quote), "--collateral", str(collateral))
    assert (code, result["reason"]) == (1, "collateral_expired")  # the fixture's collateral expired in July 2025


def test_unreadable_file_exits_2_with_json(tmp_path: Path) -> None:
    code, result = run("--quote", str(tmp_path / "missing"), "--collateral", str(tmp_path / "missing.json"))
    assert code == 2
    assert (result["ok"], result["reason"]) == (False, "unreadable_input")
    assert "missing" in result["detail"]


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture
def binding() -> dict[str, str]:
    keys = ("nonce", "signing_key", "sealing_key", "runtime_config_digest")
    return {name: secrets.token_hex(32) for name in keys}


@pytest.fixture
def dev_files(tmp_path: Path, authority: DevQuoteAuthority, binding: dict[str, str]) -> list[str]:
    now = 1_800_000_000
    (tmp_path / "quote").write_bytes(authority.quote(report_data(**binding), mrtd=b"\x42" * 48))
    (tmp_path / "collateral.json").write_text(authority.collateral_json(now=now))
    (tmp_path / "root.der").write_bytes(authority.root_ca_der)
    return [
        *("--quote", str(tmp_path / "quote"), "--collateral", str(tmp_path / "collateral.json")),
        *("--root-ca", str(tmp_path / "root.der"), "--at", str(now)),
    ]


def test_dev_quote_verifies_under_its_root_and_binds_the_keys(dev_files, binding) -> None:
    args = ["--nonce", binding["nonce"], "--signing-key", binding["signing_key"]]
    args += ["--sealing-key", binding["sealing_key"], "--runtime-config-digest", binding["runtime_config_digest"]]
    code, result = run(*dev_files, *args)
    assert (code, result["ok"], result["mrtd"]) == (0, True, "42" * 48)
    assert result["report_data"] == report_data(**binding).hex()


def test_nonce_mismatch_is_refused(dev_files, binding) -> None:
    other_nonce = secrets.token_hex(32)
    args = ["--nonce", other_nonce, "--signing-key", binding["signing_key"], "--sealing-key", binding["sealing_key"]]
    args += ["--runtime-config-digest", binding["runtime_config_digest"]]
    code, result = run(*dev_files, *args)
    assert (code, result["ok"], result["reason"]) == (1, False, "report_data_mismatch")


def test_dev_quote_without_its_root_is_untrusted(dev_files) -> None:
    without_root = dev_files[:4] + dev_files[6:]
    code, result = run(*without_root)
    assert (code, result["reason"]) == (1, "untrusted_root")


def test_incomplete_or_bad_binding_arguments_exit_2(dev_files, binding) -> None:
    code, result = run(*dev_files, "--nonce", binding["nonce"])
    assert (code, result["reason"]) == (2, "invalid_arguments")
    args = ["--nonce", "zz", "--signing-key", binding["signing_key"], "--sealing-key", binding["sealing_key"]]
    code, result = run(*dev_files, *args)
    assert (code, result["reason"]) == (2, "invalid_arguments")


def test_exit_codes_through_manage_py(real_files, tmp_path: Path) -> None:
    quote, collateral = real_files
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mrmarket.settings.test"}

    def manage(*args: str) -> tuple[int, dict]:
        done = subprocess.run(
            [sys.executable, "manage.py", "verify_quote", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, json.loads(done.stdout)

    base = ["--quote", str(quote), "--collateral", str(collateral)]
    assert manage(*base, "--at", str(AT))[0] == 0
    code, result = manage(*base, "--at", "1760000000")
    assert (code, result["reason"]) == (1, "collateral_expired")
    code, result = manage("--quote", str(tmp_path / "nope"), "--collateral", str(collateral))
    assert (code, result["reason"]) == (2, "unreadable_input")
