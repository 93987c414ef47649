"""Identity and evidence: `/v1/attestation` binds the nonce and both public keys into REPORTDATA, through each
quote provider, tested against faithful imitations of their interfaces: a directory laid out and behaving
like configfs-tsm, and a unix socket speaking the EasyEnclave runtime's JSON."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from executor.api.app import create_app
from executor.config import Config
from executor.identity import Identity
from executor.quote import (
    ConfigfsTsmProvider,
    EasyEnclaveSocketProvider,
    NoQuoteProvider,
    QuoteProvider,
    QuoteUnavailable,
    mrtd_of,
)
from wire.attestation import report_data, runtime_config_digest

MRTD = bytes(range(48))


def fake_quote(data: bytes) -> bytes:
    """A quote-shaped blob: header, MRTD at 184, REPORTDATA at 568 (what the providers relay, not verify)."""
    quote = bytearray(700)
    quote[0:2] = (4).to_bytes(2, "little")
    quote[184:232] = MRTD
    quote[568:632] = data.ljust(64, b"\0")
    return bytes(quote)


class TsmImitation:
    """A configfs-tsm report directory: a new entry gets `provider` and `generation`; writing `inblob` bumps
    the generation and produces `outblob` (as the kernel does, from the TD's REPORTDATA)."""

    def __init__(self, root: Path, provider: str = "tdx_guest") -> None:
        self.root, self.provider = root, provider
        self._stop = threading.Event()
        self._seen: dict[Path, bytes] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in list(self.root.iterdir()) if self.root.exists() else []:
                # The provider removes its entry once it has read the quote, at any moment of this pass (as with
                # the kernel's configfs, a removed entry is simply gone): skip it rather than race its removal.
                with contextlib.suppress(FileNotFoundError):
                    self._serve(entry)
            time.sleep(0.002)

    def _serve(self, entry: Path) -> None:
        if not (entry / "provider").exists():
            (entry / "provider").write_text(self.provider + "\n")
            (entry / "generation").write_text("0\n")
        inblob = entry / "inblob"
        if inblob.exists():
            data = inblob.read_bytes()
            if self._seen.get(entry) != data and len(data) == 64:
                self._seen[entry] = data
                generation = int((entry / "generation").read_text())
                (entry / "generation").write_text(f"{generation + 1}\n")
                (entry / "outblob").write_bytes(fake_quote(data))

    def __enter__(self) -> TsmImitation:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(2)


def _rmdir_with_files(entry: Path) -> None:
    for f in entry.iterdir():
        f.unlink()


@pytest.fixture
def tsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    # configfs removes an entry's attribute files with the directory; a plain directory needs them removed first.
    original = Path.rmdir

    def rmdir(self: Path) -> None:
        if self.parent == root:
            _rmdir_with_files(self)
        original(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)
    with TsmImitation(root):
        yield root


async def test_configfs_tsm_provider_round_trip(tsm: Path) -> None:
    provider = ConfigfsTsmProvider(tsm, timeout_s=5)
    data = bytes(range(64))
    quote = await provider.quote(data)
    assert quote[568:632] == data
    assert mrtd_of(quote) == MRTD.hex()
    assert list(tsm.iterdir()) == []  # the entry is removed after use


async def test_configfs_tsm_refuses_another_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "report"
    root.mkdir()
    monkeypatch.setattr(Path, "rmdir", lambda self: None)
    with TsmImitation(root, provider="sev_guest"), pytest.raises(QuoteUnavailable, match="sev_guest"):
        await ConfigfsTsmProvider(root, timeout_s=2).quote(bytes(64))


async def test_configfs_tsm_missing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(QuoteUnavailable, match="missing"):
        await ConfigfsTsmProvider(tmp_path / "absent").quote(bytes(64))


class RuntimeImitation:
    """The EasyEnclave runtime's socket: one JSON request per line, `attest` answered with a quote."""

    def __init__(self, path: Path, token: str | None = None) -> None:
        self.path, self.token = path, token
        self.requests: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            self.requests.append(request)
            if self.token and request.get("token") != self.token:
                answer = {"ok": False, "error": "unauthorized"}
            elif request.get("method") != "attest":
                answer = {"ok": False, "error": f"unknown method {request.get('method')}"}
            else:
                data = base64.b64decode(request["report_data_b64"])
                answer = {
                    "ok": True,
                    "attestation_type": "tdx",
                    "quote_format": "tdx",
                    "quote_b64": base64.b64encode(fake_quote(data)).decode(),
                    "report_data_b64": request["report_data_b64"],
                    "report_data_len": len(data),
                }
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        writer.close()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[RuntimeImitation]:
    imitation = RuntimeImitation(tmp_path / "agent.sock", token="boot-token")
    server = await asyncio.start_unix_server(imitation.handle, path=str(imitation.path))
    async with server:
        yield imitation


async def test_easyenclave_socket_provider_round_trip(runtime: RuntimeImitation) -> None:
    provider = EasyEnclaveSocketProvider(runtime.path, token="boot-token")
    data = b"\x07" * 64
    quote = await provider.quote(data)
    assert quote[568:632] == data
    assert runtime.requests[-1]["token"] == "boot-token"


async def test_easyenclave_socket_refusals(runtime: RuntimeImitation, tmp_path: Path) -> None:
    with pytest.raises(QuoteUnavailable, match="unauthorized"):
        await EasyEnclaveSocketProvider(runtime.path, token="wrong").quote(bytes(64))
    with pytest.raises(QuoteUnavailable, match="does not answer"):
        await EasyEnclaveSocketProvider(tmp_path / "nothing.sock").quote(bytes(64))
    with pytest.raises(QuoteUnavailable, match="at most 64"):
        await EasyEnclaveSocketProvider(runtime.path, token="boot-token").quote(bytes(65))


async def _client(provider: QuoteProvider) -> tuple[TestClient, Identity]:
    identity = Identity.generate()
    client = TestClient(TestServer(create_app(Config(), identity=identity, provider=provider)))
    await client.start_server()
    return client, identity


@pytest.mark.parametrize("kind", ["tsm", "socket"])
async def test_attestation_binds_nonce_and_both_keys(
    kind: str, tsm: Path, runtime: RuntimeImitation, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider: QuoteProvider = (
        ConfigfsTsmProvider(tsm, timeout_s=5)
        if kind == "tsm"
        else EasyEnclaveSocketProvider(runtime.path, token="boot-token")
    )
    client, identity = await _client(provider)
    try:
        nonce = "ab" * 32
        response = await client.get(f"/v1/attestation?nonce={nonce}")
        assert response.status == 200
        body = await response.json()
        assert body["runtime_config"] == Config().runtime_config(quote_provider=provider.name)
        expected = report_data(
            nonce=nonce,
            signing_key=identity.signing.public_hex,
            sealing_key=identity.sealing.public_hex,
            runtime_config_digest=runtime_config_digest(body["runtime_config"]),
        )
        quote = base64.b64decode(body["quote_b64"])
        assert quote[568:632] == expected
        assert body["report_data"] == expected.hex()
        assert body["signing_key"] == identity.signing.public_hex
        assert body["sealing_key"] == identity.sealing.public_hex
        assert body["provider"] == provider.name
    finally:
        await client.close()


async def test_attestation_errors() -> None:
    client, _ = await _client(NoQuoteProvider())
    try:
        bad = await client.get("/v1/attestation?nonce=xyz")
        assert bad.status == 422
        assert (await bad.json())["error"]["code"] == "invalid_nonce"
        none = await client.get("/v1/attestation?nonce=" + "00" * 32)
        assert none.status == 503
        assert (await none.json())["error"]["code"] == "attestation_unavailable"
    finally:
        await client.close()
