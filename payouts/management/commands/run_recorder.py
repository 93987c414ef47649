"""Run one shard of the market-data recorder until SIGTERM or SIGINT (docs/scoring.md, "Market-data recorder")."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mrmarket import preflight
from payouts.recorder import Recorder


class Command(BaseCommand):
    help = "Record the order books of the running campaigns of one shard at their sample times."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shard", type=int, default=0, help="this process's shard, in [0, shards)")
        parser.add_argument("--shards", type=int, default=1, help="how many recorder processes share the campaigns")

    def handle(self, *args: Any, shard: int, shards: int, **options: Any) -> None:
        if shards < 1 or not 0 <= shard < shards:
            raise CommandError("--shard must be in [0, --shards) and --shards at least 1")
        preflight.run()
        asyncio.run(_run(Recorder(shard=shard, shards=shards)))


async def _run(recorder: Recorder) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, recorder.stop)  # stop cleanly: samplers cancelled, ccxt clients closed
    await recorder.run()
