"""Request overhead of the Django side through its real ASGI stack (middleware, auth, logging, JSON).

Drives the ASGI application in-process (no sockets), so the figures measure our code and Django, not the
network. Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # measure the work, not the terminal


def main() -> None:
    from devnet.redis import EmbeddedRedis

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
    for name in ("mrmarket.request", "django.request"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()

    async def request(path: str) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), (b"x-request-id", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        status = 0
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def measure(path: str, n: int) -> list[float]:
        for _ in range(20):
            await request(path)  # warm-up
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            status = await request(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert status in (200, 401), status
        return times

    for name, path, n in (("healthz", "/healthz", 2000), ("api_me_anonymous", "/api/v1/me", 2000)):
        times = asyncio.run(measure(path, n))
        times.sort()
        print(f"BENCH http_{name}_p50 {statistics.median(times):.3f} ms")
        print(f"BENCH http_{name}_p99 {times[int(len(times) * 0.99) - 1]:.3f} ms")
        print(f"BENCH http_{name}_rate {1000 / statistics.mean(times):.0f} req/s")


if __name__ == "__main__":
    main()
