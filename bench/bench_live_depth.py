"""Live depth to 1,000 pages: one web process (`manage.py serve`, Uvicorn, as the demo runs it) on loopback, 1,000
WebSocket clients on one campaign's depth URL, and one frame a second for FRAMES seconds published from here through
`campaigns.live.frame_publish` (as the producer does), 50 levels a side. Every client's receipt of every frame is
timed from the frame's `created_ms`; a frame published that a client never received counts as dropped.

Targets (issue 15): p99 under 250 ms, nothing dropped. Runs on a throwaway SQLite database and the embedded Redis
(or REDIS_URL), like the other benches. Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 1_000
FRAMES = 20
CONNECT_AT_ONCE = 50  # handshakes in flight: a burst of 1,000 would only measure the listen backlog


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    from devnet.redis import EmbeddedRedis

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * CLIENTS:  # the clients' sockets here, and (inherited) the server's
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * CLIENTS), hard))
    with tempfile.TemporaryDirectory() as work:
        os.environ["DATABASE_URL"] = f"sqlite:///{work}/bench.sqlite3"
        redis = None
        if not os.environ.get("REDIS_URL"):
            redis = EmbeddedRedis().start()
            os.environ["REDIS_URL"] = redis.url
        try:
            run()
        finally:
            if redis is not None:
                redis.stop()


def run() -> None:
    import django

    django.setup()
    from datetime import timedelta

    from django.core.cache import cache
    from django.core.management import call_command
    from django.utils import timezone

    from campaigns.domain.depth import Market
    from campaigns.live import _cache_key
    from campaigns.models import Campaign

    call_command("migrate", verbosity=0)
    now = timezone.now()
    campaign = Campaign.objects.create(
        chain_id=31337,
        address="0x" + "be" * 20,
        factory="0x" + "fa" * 20,
        creator="0x" + "c0" * 20,
        token="0x" + "ab" * 20,
        recording_oracle="0x" + "01" * 20,
        reputation_oracle="0x" + "02" * 20,
        fee_recipient="0x" + "03" * 20,
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=1),
        epoch_seconds=3600,
        dispute_window_seconds=3600,
        budget=10**24,
        fee_bps=0,
        metadata_hash="0x" + "11" * 32,
        exchange="binance",
        pair="MMT/USDT",
        created_block=1,
        created_tx="0x" + "77" * 32,
        funded=True,
    )
    cache.delete(_cache_key(Market("binance", "MMT/USDT")))
    port = free_port()
    env = dict(os.environ, MRMARKET_PROCESS="web")
    argv = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(argv, cwd=ROOT, env=env)
    try:
        wait_ready(port)
        url = f"ws://127.0.0.1:{port}/ws/v1/campaigns/{campaign.chain_id}/{campaign.address}/depth"
        latencies, dropped = asyncio.run(measure(url, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    print(f"BENCH live_depth_1000_clients_p50_ms {p50:.1f} ms", flush=True)
    print(f"BENCH live_depth_1000_clients_p99_ms {p99:.1f} ms", flush=True)
    print(f"BENCH live_depth_1000_clients_dropped {dropped} frames", flush=True)


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web process did not start within 60 s")


async def measure(url: str, origin: str) -> tuple[list[float], int]:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Origin

    from campaigns.domain.depth import Market, depth_book, depth_frame
    from campaigns.live import frame_publish

    received: list[dict[int, float]] = [{} for _ in range(CLIENTS)]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    sockets: list[ClientConnection] = []

    async def client(k: int) -> None:
        async with gate:
            ws = await connect(url, origin=Origin(origin), max_queue=None, ping_interval=None)
        sockets.append(ws)
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                at = time.time() * 1000
                frame = json.loads(text)
                received[k][frame["seq"]] = at - frame["created_ms"]

    tasks = [asyncio.create_task(client(k)) for k in range(CLIENTS)]
    while len(sockets) < CLIENTS:
        await asyncio.sleep(0.1)
        failed = next((t for t in tasks if t.done() and t.exception() is not None), None)
        if failed is not None:
            raise SystemExit(f"a client could not connect: {failed.exception()!r}")
    print(f"{CLIENTS} clients connected", file=sys.stderr, flush=True)
    market = Market("binance", "MMT/USDT")
    bids = [[round(1.0 - i * 0.0005, 4), 100 + i] for i in range(60)]
    asks = [[round(1.0005 + i * 0.0005, 4), 100 + i] for i in range(60)]
    book = depth_book(bids=bids, asks=asks)
    # Warm-up frames (seq 0) until every client has one: each page has joined, nothing measured yet.
    deadline = time.monotonic() + 30
    while not all(0 in got for got in received):
        if time.monotonic() > deadline:
            raise SystemExit("not every client received the warm-up frame within 30 s")
        created = time.time_ns() // 1_000_000
        await frame_publish(depth_frame(market=market, seq=0, created_ms=created, exchange_ts_ms=None, book=book))
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    published = list(range(1, FRAMES + 1))
    for seq in published:
        created = time.time_ns() // 1_000_000
        await frame_publish(depth_frame(market=market, seq=seq, created_ms=created, exchange_ts_ms=None, book=book))
        await asyncio.sleep(1.0)
    await asyncio.sleep(2.0)  # the last frame's stragglers
    await asyncio.gather(*(ws.close() for ws in sockets))
    await asyncio.gather(*tasks)
    latencies = [ms for got in received for seq, ms in got.items() if seq in published]
    dropped = sum(1 for got in received for seq in published if seq not in got)
    return latencies, dropped


if __name__ == "__main__":
    main()
