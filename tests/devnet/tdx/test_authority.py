"""The dev quote authority issues real DCAP quotes that verify under its own root only, and the runtime stand-in
serves them over a unix socket the way EasyEnclave's runtime does."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from attestation.domain.quote import Reason, evaluate_policy, parse_quote_fields, verify_quote
from devnet.tdx.authority import OUT_OF_DATE_ADVISORIES, DevQuoteAuthority
from devnet.tdx.runtime import RuntimeStandIn, serve_runtime

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_800_000_000
DAY = 86_400
MRTD = bytes(range(48))
RTMRS = tuple(bytes([i + 1]) * 48 for i in range(4))
QE_REPORT_AT = 632 + 4 + 64 + 64 + 6  # signed part, length, signature, attestation key, cert data header


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture(scope="module")
def collateral(authority: DevQuoteAuthority) -> str:
    return authority.collateral_json(now=NOW)


def dev_verify(authority: DevQuoteAuthority, raw: bytes, collateral: str, now: int = NOW):
    return verify_quote(raw, collateral, now=now, root_ca_der=authority.root_ca_der)


def flipped(raw: bytes, at: int) -> bytes:
    out = bytearray(raw)
    out[at] ^= 0x01
    return bytes(out)


# --- verification under the dev root ------------------------------------------------------------------------


def test_up_to_date_quote_verifies_and_fields_parse_back(authority, collateral) -> None:
    raw = authority.quote(b"hello", mrtd=MRTD, rtmrs=RTMRS)
    verdict = dev_verify(authority, raw, collateral)
    assert verdict.ok, verdict.detail
    assert (verdict.tcb_status, verdict.advisory_ids, verdict.reason) == ("UpToDate", (), None)
    fields = parse_quote_fields(raw)
    assert verdict.fields == fields
    assert fields.mrtd == MRTD.hex()
    assert fields.rtmrs == tuple(r.hex() for r in RTMRS)
    assert fields.report_data == (b"hello" + bytes(59)).hex()
    assert fields.debug is False


def test_out_of_date_quote_verifies_with_its_status_and_advisories(authority, collateral) -> None:
    verdict = dev_verify(authority, authority.quote(bytes(64), mrtd=MRTD, tcb="OutOfDate"), collateral)
    assert verdict.ok, verdict.detail
    assert verdict.tcb_status == "OutOfDate"
    assert verdict.advisory_ids == tuple(OUT_OF_DATE_ADVISORIES)


def test_collateral_is_valid_for_any_now_within_the_certificates(authority) -> None:
    for now in (1_600_000_000, 2_400_000_000):
        raw = authority.quote(b"", mrtd=MRTD)
        assert dev_verify(authority, raw, authority.collateral_json(now=now), now=now).ok


def test_intel_root_refuses_a_dev_quote(authority, collateral) -> None:
    verdict = verify_quote(authority.quote(b"", mrtd=MRTD), collateral, now=NOW)  # root_ca_der=None: Intel's
    assert (verdict.ok, verdict.reason) == (False, Reason.UNTRUSTED_ROOT)


def test_another_authoritys_root_refuses_it(authority, collateral) -> None:
    other = DevQuoteAuthority.ephemeral()
    raw = authority.quote(b"", mrtd=MRTD)
    assert verify_quote(raw, collateral, now=NOW, root_ca_der=other.root_ca_der).reason == Reason.UNTRUSTED_ROOT
    # Even with collateral that chains to the other root, the quote's own PCK chain does not.
    verdict = verify_quote(raw, other.collateral_json(now=NOW), now=NOW, root_ca_der=other.root_ca_der)
    assert verdict.reason == Reason.UNTRUSTED_ROOT


@pytest.mark.parametrize(
    ("offset", "what"),
    [
        (600, "REPORTDATA, signed by the attestation key"),
        (200, "MRTD"),
        (640, "the quote signature itself"),
        (700, "the attestation key (QE report data no longer hashes it)"),
        (QE_REPORT_AT + 100, "the QE report, signed by the PCK key"),
        (QE_REPORT_AT + 384 + 10, "the QE report signature"),
    ],
)
def test_any_tampered_signed_byte_is_a_signature_failure(authority, collateral, offset: int, what: str) -> None:
    raw = authority.quote(b"payload", mrtd=MRTD)
    assert dev_verify(authority, raw, collateral).ok
    verdict = dev_verify(authority, flipped(raw, offset), collateral)
    assert (verdict.ok, verdict.reason) == (False, Reason.SIGNATURE_INVALID), (what, verdict.detail)


def test_expired_and_not_yet_valid_collateral_are_refused(authority, collateral) -> None:
    raw = authority.quote(b"", mrtd=MRTD)
    late = dev_verify(authority, raw, collateral, now=NOW + 31 * DAY)  # beyond nextUpdate
    early = dev_verify(authority, raw, collateral, now=NOW - 2 * DAY)  # before issueDate
    assert (late.reason, early.reason) == (Reason.COLLATERAL_EXPIRED, Reason.COLLATERAL_EXPIRED)


def test_debug_td_is_refused(authority, collateral) -> None:
    raw = authority.quote(b"", mrtd=MRTD, debug=True)
    assert parse_quote_fields(raw).debug is True
    # dcap-qvl 0.7.0 refuses debuggable TDs itself (after checking the signatures) ...
    verdict = dev_verify(authority, raw, collateral)
    assert (verdict.ok, verdict.reason, verdict.fields.debug) == (False, Reason.DEBUG_TD, True)
    # ... and the policy refuses one from any verifier that lets it through.
    good = dev_verify(authority, authority.quote(b"", mrtd=MRTD), collateral)
    as_debug = dataclasses.replace(good, fields=dataclasses.replace(good.fields, debug=True))
    refused = evaluate_policy(as_debug, expected_report_data=b"", allowed_tcb=frozenset({"UpToDate"}))
    assert refused.reason == Reason.DEBUG_TD
    allowed = evaluate_policy(as_debug, expected_report_data=b"", allowed_tcb=frozenset({"UpToDate"}), allow_debug=True)
    assert allowed.ok


def test_quotes_differ_only_in_the_ecdsa_signature(authority) -> None:
    a = authority.quote(b"same", mrtd=MRTD, rtmrs=RTMRS)
    b = authority.quote(b"same", mrtd=MRTD, rtmrs=RTMRS)
    signature = slice(636, 700)
    assert a[: signature.start] == b[: signature.start]
    assert a[signature.stop :] == b[signature.stop :]


@pytest.mark.parametrize(
    ("report_data", "kwargs", "match"),
    [
        (bytes(65), {"mrtd": MRTD}, "at most 64 bytes"),
        (b"", {"mrtd": MRTD[:47]}, "mrtd must be 48 bytes"),
        (b"", {"mrtd": MRTD, "rtmrs": RTMRS[:3]}, "four"),
        (b"", {"mrtd": MRTD, "tcb": "Revoked"}, "tcb must be one of"),
    ],
)
def test_bad_quote_requests_are_rejected(authority, report_data: bytes, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        authority.quote(report_data, **kwargs)


# --- persistence ---------------------------------------------------------------------------------------------


def test_load_or_create_reloads_the_same_root_and_keys(tmp_path: Path) -> None:
    state = tmp_path / "tdx"
    first = DevQuoteAuthority.load_or_create(state)
    second = DevQuoteAuthority.load_or_create(state)
    assert first.root_ca_der == second.root_ca_der
    # A quote from one process verifies with collateral from another sharing the directory.
    raw = first.quote(b"shared", mrtd=MRTD)
    assert verify_quote(raw, second.collateral_json(now=NOW), now=NOW, root_ca_der=second.root_ca_der).ok
    keys = sorted(state.glob("*_key.pem"))
    assert len(keys) == 5
    assert all(stat.S_IMODE(key.stat().st_mode) == 0o600 for key in keys)


def test_concurrent_load_or_create_agrees_on_one_root(tmp_path: Path) -> None:
    state = tmp_path / "tdx"
    with ThreadPoolExecutor(max_workers=4) as pool:
        roots = set(pool.map(lambda _: DevQuoteAuthority.load_or_create(state).root_ca_der, range(8)))
    assert len(roots) == 1


def test_cli_writes_root_quote_and_collateral_that_verify(tmp_path: Path) -> None:
    state, root, quote = tmp_path / "state", tmp_path / "root.der", tmp_path / "quote.bin"

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "devnet.tdx", *args, "--state", str(state)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    cli("root-ca", "--out", str(root))
    cli("quote", "--report-data", "ab" * 64, "--mrtd", MRTD.hex(), "--rtmr2", RTMRS[2].hex(), "--out", str(quote))
    collateral = cli("collateral", "--at", str(NOW))
    verdict = verify_quote(quote.read_bytes(), collateral, now=NOW, root_ca_der=root.read_bytes())
    assert verdict.ok, verdict.detail
    assert verdict.fields is not None
    assert verdict.fields.report_data == "ab" * 64
    assert verdict.fields.rtmrs[2] == RTMRS[2].hex()


# --- the runtime socket stand-in -----------------------------------------------------------------------------


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, request: dict | str) -> dict:
        line = request if isinstance(request, str) else json.dumps(request)
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()
        return json.loads(await asyncio.wait_for(self.reader.readline(), 10))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect(path: Path) -> Client:
    reader, writer = await asyncio.open_unix_connection(str(path))
    return Client(reader, writer)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_attest_round_trip_over_a_unix_socket(tmp_path: Path, authority, collateral) -> None:
    path = tmp_path / "agent.sock"
    server = await serve_runtime(path, authority, mrtd=MRTD, rtmrs=RTMRS)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        client = await connect(path)
        assert await client.call({"method": "health"}) == {"ok": True}
        report_data = bytes(range(64))
        reply = await client.call({"method": "attest", "report_data_b64": b64(report_data)})
        assert reply["ok"] is True
        assert (reply["attestation_type"], reply["quote_format"]) == ("tdx", "tdx")
        assert (reply["report_data_b64"], reply["report_data_len"]) == (b64(report_data), 64)
        verdict = dev_verify(authority, base64.b64decode(reply["quote_b64"]), collateral)
        assert verdict.ok, verdict.detail
        assert verdict.fields.report_data == report_data.hex()
        assert verdict.fields.mrtd == MRTD.hex()
        # The same connection carries further requests; a short report_data is zero-padded in the quote.
        reply = await client.call({"method": "attest", "report_data_b64": b64(b"nonce")})
        assert reply["report_data_len"] == 5
        assert parse_quote_fields(base64.b64decode(reply["quote_b64"])).report_data == (b"nonce" + bytes(59)).hex()
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_boot_token_is_required_on_every_request(tmp_path: Path, authority) -> None:
    path = tmp_path / "agent.sock"
    server = await serve_runtime(path, authority, mrtd=MRTD, token="boot-secret")
    try:
        client = await connect(path)
        unauthorized = {"ok": False, "error": "unauthorized"}
        assert await client.call({"method": "health"}) == unauthorized
        assert await client.call({"method": "attest", "report_data_b64": "", "token": "wrong"}) == unauthorized
        assert await client.call({"method": "health", "token": 7}) == unauthorized
        assert await client.call({"method": "health", "token": "boot-secret"}) == {"ok": True}
        reply = await client.call({"method": "attest", "report_data_b64": b64(b"x"), "token": "boot-secret"})
        assert reply["ok"] is True
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_requests_get_errors_and_the_connection_stays_usable(tmp_path: Path, authority) -> None:
    path = tmp_path / "agent.sock"
    server = await serve_runtime(path, authority, mrtd=MRTD)
    try:
        client = await connect(path)
        for request in (
            {"method": "deploy"},
            {"method": "attest", "report_data_b64": "not base64!"},
            {"method": "attest", "report_data_b64": b64(bytes(65))},
            {"method": "attest", "report_data_b64": 12},
            "this is not json",
            "[1, 2]",
        ):
            reply = await client.call(request)
            assert reply["ok"] is False, request
            assert isinstance(reply["error"], str)
            assert reply["error"]
        assert await client.call({"method": "health"}) == {"ok": True}
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


def test_handler_errors_name_the_problem(authority) -> None:
    handler = RuntimeStandIn(authority, mrtd=MRTD)
    assert "unknown method" in handler.handle({"method": "exec"})["error"]
    assert "base64" in handler.handle({"method": "attest", "report_data_b64": "%%"})["error"]
    assert "64" in handler.handle({"method": "attest", "report_data_b64": b64(bytes(65))})["error"]
    with pytest.raises(ValueError, match="48 bytes"):
        RuntimeStandIn(authority, mrtd=MRTD[:10])
