"""Run the ASGI server (HTTP + WebSocket) after the preflight checks."""

from __future__ import annotations

from typing import Any

import uvicorn
from django.core.management.base import BaseCommand, CommandParser

from mrmarket import preflight


class Command(BaseCommand):
    help = "Serve HTTP and WebSocket with Uvicorn (mrmarket.asgi)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)

    def handle(self, *args: Any, host: str, port: int, workers: int, **options: Any) -> None:
        preflight.run()
        uvicorn.run(
            "mrmarket.asgi:application",
            host=host,
            port=port,
            workers=workers,
            lifespan="off",
            log_config=None,  # our logging config (JSON, correlation ids) stays in charge
            access_log=False,  # RequestContextMiddleware writes one line per request, with its request id
            proxy_headers=True,
            ws_ping_interval=20,
            ws_ping_timeout=20,
            # Live depth sends one frame to every open page a second: compressing each copy on its own cost more
            # than the frames' bytes (1,000 pages: p99 from about 100 to 150-270 ms, bench/bench_live_depth.py).
            ws_per_message_deflate=False,
        )
