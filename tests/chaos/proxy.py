"""A loopback TCP proxy whose link can be partitioned at run time: the partition tests put one between two parts
of the system (Django and an executor, an executor and the exchange) and break it mid-run.

Toxiproxy is not packaged in Debian bookworm (`apt-cache policy toxiproxy` lists nothing), so this is a small
asyncio proxy in a thread of its own, with the four behaviours the tests need:

- `pass`: bytes flow both ways;
- `blackhole`: bytes are read and dropped both ways, connections stay open (the far side goes silent: callers
  time out, as behind a firewall that drops packets); a connection opened meanwhile reaches nothing;
- `delay`: each chunk waits `delay_ms` before it is forwarded;
- `cut`: every open connection is closed, and new ones are closed as soon as they are accepted (as when a
  peer is down: callers see a reset at once).

Switching back to `pass` heals the link for new connections; a connection that lost bytes in a blackhole is
not repaired (TCP itself would not be), its owner times out and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from enum import StrEnum
from urllib.parse import urlsplit


class Mode(StrEnum):
    PASS = "pass"
    BLACKHOLE = "blackhole"
    DELAY = "delay"
    CUT = "cut"


class Proxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname, upstream_url
        assert parts.port, upstream_url
        self.scheme = parts.scheme or "http"
        self.upstream = (parts.hostname, parts.port)
        self.mode = Mode.PASS
        self.delay_ms = 0
        self.accepted = 0  # connections accepted, whatever became of them
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.set(Mode.CUT)
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set(self, mode: Mode, *, delay_ms: int = 0) -> None:
        """Switch the link; `cut` closes every open connection before it returns."""
        self.mode, self.delay_ms = mode, delay_ms
        if mode is Mode.CUT:
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode is Mode.CUT:
            client_writer.close()
            return
        self._writers.add(client_writer)
        if self.mode is Mode.BLACKHOLE:
            # Nothing behind the hole: what the caller sends is swallowed until it gives up or the link is cut.
            await self._pipe(client_reader, None)
            self._writers.discard(client_writer)
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._writers.discard(client_writer)
            client_writer.close()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer),
            self._pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
        try:
            while data := await reader.read(65536):
                if writer is None or self.mode is Mode.BLACKHOLE:
                    continue  # dropped
                if self.mode is Mode.DELAY and self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()


@contextlib.contextmanager
def proxied(upstream_url: str) -> Iterator[Proxy]:
    proxy = Proxy(upstream_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()
