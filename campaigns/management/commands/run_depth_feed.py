"""Run one shard of the live-depth producer until SIGTERM or SIGINT (docs/api/live-depth.md)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.depth_feed import DepthFeed
from mrmarket import preflight


class Command(BaseCommand):
    help = "Publish live depth, at most a frame a second, for the markets of the running campaigns of one shard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shard", type=int, default=0, help="this process's shard, in [0, shards)")
        parser.add_argument("--shards", type=int, default=1, help="how many producer processes share the markets")

    def handle(self, *args: Any, shard: int, shards: int, **options: Any) -> None:
        if shards < 1 or not 0 <= shard < shards:
            raise CommandError("--shard must be in [0, --shards) and --shards at least 1")
        preflight.run()
        asyncio.run(_run(DepthFeed(shard=shard, shards=shards)))


async def _run(feed: DepthFeed) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, feed.stop)  # stop cleanly: streams cancelled, ccxt clients closed
    await feed.run()
