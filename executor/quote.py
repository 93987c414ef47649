"""Quote providers: how the executor asks its TD for a TDX quote over 64 bytes of REPORTDATA.

- `configfs-tsm`: the Linux kernel's TSM report interface (6.7+). Make an entry under
  `/sys/kernel/config/tsm/report/`, write REPORTDATA to `inblob`, read the quote from `outblob`. `provider`
  names the backend (`tdx_guest`); `generation` counts writes to the entry, so a changed count means another
  writer raced us and the read is retried.
- `easyenclave`: the EasyEnclave runtime (PID 1 of the TD) on its unix socket: one JSON request per line,
  `{"method": "attest", "report_data_b64": …, "token": …}` → `{"ok": true, "quote_b64": …, …}`.
- `none`: no TD; attestation answers "unavailable" and nothing that needs it can happen.

The quote is evidence, not a verdict: Django verifies it (signature chain, TCB, measurement, binding).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Protocol

MRTD_OFFSET = 184  # TDX quote v4: the TD report body starts after the 48-byte header; MRTD at 136 within it


class QuoteUnavailable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QuoteProvider(Protocol):
    name: str

    async def quote(self, report_data: bytes) -> bytes: ...


def mrtd_of(quote: bytes) -> str:
    if len(quote) < MRTD_OFFSET + 48:
        return ""
    return quote[MRTD_OFFSET : MRTD_OFFSET + 48].hex()


def _check_report_data(report_data: bytes) -> None:
    if len(report_data) > 64:
        raise QuoteUnavailable("REPORTDATA is at most 64 bytes")


class NoQuoteProvider:
    name = "none"

    async def quote(self, report_data: bytes) -> bytes:
        raise QuoteUnavailable("this executor runs outside a TD: no quote provider is configured")


class ConfigfsTsmProvider:
    name = "configfs-tsm"

    def __init__(self, root: Path = Path("/sys/kernel/config/tsm/report"), *, timeout_s: float = 30.0) -> None:
        self.root = root
        self.timeout_s = timeout_s

    async def quote(self, report_data: bytes) -> bytes:
        _check_report_data(report_data)
        return await asyncio.to_thread(self._quote, report_data.ljust(64, b"\0"))

    def _quote(self, report_data: bytes) -> bytes:
        if not self.root.is_dir():
            raise QuoteUnavailable(f"{self.root} is missing: no configfs-tsm in this kernel or not a TD")
        entry = self.root / f"mrmarket-{uuid.uuid4().hex[:12]}"
        try:
            entry.mkdir()
        except OSError as exc:
            raise QuoteUnavailable(f"cannot create a TSM report entry ({exc.strerror})") from None
        try:
            for _attempt in range(3):
                provider = self._wait_text(entry / "provider")
                if provider != "tdx_guest":
                    raise QuoteUnavailable(f"the TSM provider is {provider!r}, not tdx_guest")
                before = int(self._read_text(entry / "generation") or "0")
                (entry / "inblob").write_bytes(report_data)
                quote = self._read_outblob(entry)
                after = int(self._read_text(entry / "generation") or "0")
                if after == before + 1:
                    return quote
            raise QuoteUnavailable("another writer kept changing the TSM report entry")
        finally:
            with contextlib.suppress(OSError):
                entry.rmdir()

    def _read_text(self, path: Path) -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""

    def _wait_text(self, path: Path) -> str:
        """configfs creates an entry's attributes with it; tolerate them appearing a moment later."""
        deadline = time.monotonic() + min(self.timeout_s, 5.0)
        while not (text := self._read_text(path)):
            if time.monotonic() > deadline:
                raise QuoteUnavailable(f"{path.name} never appeared: not a configfs-tsm report entry")
            time.sleep(0.005)
        return text

    def _read_outblob(self, entry: Path) -> bytes:
        # The kernel blocks the read until the quote exists; wait for it the same way if it is not there yet.
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with open(entry / "outblob", "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                return data
            if time.monotonic() > deadline:
                raise QuoteUnavailable("the TSM report did not produce a quote in time")
            time.sleep(0.01)


class EasyEnclaveSocketProvider:
    name = "easyenclave"

    def __init__(self, socket_path: Path, *, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.socket_path = socket_path
        self._token = token
        self.timeout_s = timeout_s

    async def quote(self, report_data: bytes) -> bytes:
        _check_report_data(report_data)
        request: dict[str, str] = {"method": "attest", "report_data_b64": base64.b64encode(report_data).decode()}
        if self._token:
            request["token"] = self._token
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(os.fspath(self.socket_path), limit=1 << 20), self.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise QuoteUnavailable(f"the EasyEnclave runtime socket does not answer ({type(exc).__name__})") from None
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), self.timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            raise QuoteUnavailable(f"the EasyEnclave runtime did not answer ({type(exc).__name__})") from None
        finally:
            writer.close()
        try:
            answer = json.loads(line)
        except ValueError:
            raise QuoteUnavailable("the EasyEnclave runtime answered something that is not JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise QuoteUnavailable(f"the EasyEnclave runtime refused: {str(error)[:200]}")
        try:
            quote = base64.b64decode(answer["quote_b64"], validate=True)
        except (KeyError, ValueError, TypeError):
            raise QuoteUnavailable("the EasyEnclave runtime's answer has no valid quote_b64") from None
        echoed = answer.get("report_data_b64")
        if echoed is not None and base64.b64decode(echoed).rstrip(b"\0") != report_data.rstrip(b"\0"):
            raise QuoteUnavailable("the EasyEnclave runtime quoted other REPORTDATA than requested")
        return quote


def build_provider(name: str, *, tsm_path: Path, socket_path: Path, token: str | None) -> QuoteProvider:
    if name == "configfs-tsm":
        return ConfigfsTsmProvider(tsm_path)
    if name == "easyenclave":
        return EasyEnclaveSocketProvider(socket_path, token=token)
    return NoQuoteProvider()
