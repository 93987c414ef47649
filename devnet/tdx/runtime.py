"""A stand-in for EasyEnclave's enclave runtime socket (design 3, docs/easyenclave.md), quoting with a dev CA.

EasyEnclave's runtime (PID 1 in the TD) serves a JSON API on a unix socket; the executor asks it for quotes.
This server speaks the subset the executor uses, one JSON object per line in each direction (a connection may
carry several requests):

    {"method": "health"}                                  → {"ok": true}
    {"method": "attest", "report_data_b64": "<≤ 64 bytes>"} → {"ok": true, "attestation_type": "tdx",
                                                              "quote_format": "tdx", "quote_b64": "...",
                                                              "report_data_b64": "...", "report_data_len": N}
    anything wrong                                        → {"ok": false, "error": "..."}

With a boot token configured every request must carry `"token"`, else `{"ok": false, "error": "unauthorized"}`.
The quotes are real DCAP quotes under the dev authority's root (devnet/tdx/authority.py) for the TD
measurements given at start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devnet.tdx.authority import DevQuoteAuthority

log = logging.getLogger(__name__)

MAX_REPORT_DATA = 64
MAX_LINE = 64 * 1024
ZERO_RTMRS: tuple[bytes, ...] = (b"\0" * 48,) * 4


class RuntimeStandIn:
    """The request handler: `handle` maps one request object to one response object."""

    def __init__(
        self,
        authority: DevQuoteAuthority,
        *,
        mrtd: bytes,
        rtmrs: Sequence[bytes] = ZERO_RTMRS,
        token: str | None = None,
    ) -> None:
        if len(mrtd) != 48 or len(rtmrs) != 4 or any(len(r) != 48 for r in rtmrs):
            raise ValueError("mrtd and the four rtmrs must be 48 bytes each")
        self.authority = authority
        self.mrtd = bytes(mrtd)
        self.rtmrs = tuple(bytes(r) for r in rtmrs)
        self.token = token

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"ok": False, "error": "request must be a JSON object"}
        if self.token is not None:
            given = request.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.token.encode()):
                return {"ok": False, "error": "unauthorized"}
        method = request.get("method")
        if method == "health":
            return {"ok": True}
        if method == "attest":
            return self._attest(request)
        return {"ok": False, "error": f"unknown method: {method!r}"}

    def _attest(self, request: dict[str, Any]) -> dict[str, Any]:
        encoded = request.get("report_data_b64", "")
        if not isinstance(encoded, str):
            return {"ok": False, "error": "report_data_b64 must be a string"}
        try:
            report_data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return {"ok": False, "error": "report_data_b64 is not valid base64"}
        if len(report_data) > MAX_REPORT_DATA:
            return {"ok": False, "error": f"report_data is {len(report_data)} bytes, at most {MAX_REPORT_DATA}"}
        quote = self.authority.quote(report_data, mrtd=self.mrtd, rtmrs=self.rtmrs)
        return {
            "ok": True,
            "attestation_type": "tdx",
            "quote_format": "tdx",
            "quote_b64": base64.b64encode(quote).decode(),
            "report_data_b64": base64.b64encode(report_data).decode(),
            "report_data_len": len(report_data),
        }

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the stream limit: answer once and hang up
                    await _send(writer, {"ok": False, "error": f"request line longer than {MAX_LINE} bytes"})
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    response: dict[str, Any] = {"ok": False, "error": "request is not valid JSON"}
                else:
                    response = self.handle(request)
                await _send(writer, response)
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                await writer.wait_closed()


async def _send(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
    writer.write(json.dumps(response).encode() + b"\n")
    await writer.drain()


async def serve_runtime(
    socket_path: Path,
    authority: DevQuoteAuthority,
    *,
    mrtd: bytes,
    rtmrs: Sequence[bytes] = ZERO_RTMRS,
    token: str | None = None,
) -> asyncio.AbstractServer:
    """Listen on `socket_path` (replacing a stale socket file; mode 0600) and serve until the server is closed."""
    handler = RuntimeStandIn(authority, mrtd=mrtd, rtmrs=rtmrs, token=token)
    socket_path = Path(socket_path)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    server = await asyncio.start_unix_server(handler.connection, path=str(socket_path), limit=MAX_LINE)
    os.chmod(socket_path, 0o600)
    log.info("tdx_runtime_listening", extra={"socket": str(socket_path), "mrtd": handler.mrtd.hex()})
    return server
