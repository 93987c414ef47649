"""The API mix `bench/bench_load.py` puts under load: locust runs this file headless in its own process (gevent
monkeypatches everything it imports, so nothing of Django or the bench is imported here).

What to ask comes from `LOAD_TARGETS`, a JSON file the bench writes after seeding: the campaigns' paths and the
operator's API token. Every user is anonymous for the public reads and carries the operator's token for the
authenticated ones, as a dashboard open in a browser does.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, between, task

with open(os.environ["LOAD_TARGETS"], encoding="utf-8") as f:
    TARGETS: dict[str, Any] = json.load(f)
CAMPAIGNS: list[str] = TARGETS["campaigns"]  # "<chain_id>/<address>"
TOKEN: str = TARGETS["token"]
AUTH = {"Authorization": f"Token {TOKEN}"}


class Visitor(FastHttpUser):
    # Think time: a person clicking, or a dashboard polling a few times a second across its widgets.
    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        self.rng = random.Random(os.environ.get("LOAD_SEED", "7") + str(id(self)))

    def _campaign(self) -> str:
        return self.rng.choice(CAMPAIGNS)

    @task(4)
    def campaign_list(self) -> None:
        self.client.get("/api/v1/campaigns/", name="GET /api/v1/campaigns/")

    @task(4)
    def campaign_detail(self) -> None:
        self.client.get(f"/api/v1/campaigns/{self._campaign()}", name="GET /api/v1/campaigns/{c}")

    @task(2)
    def campaign_page(self) -> None:
        self.client.get(f"/campaigns/{self._campaign()}/", name="GET /campaigns/{c}/ (public page, depth)")

    @task(1)
    def stability(self) -> None:
        self.client.get(f"/campaigns/{self._campaign()}/stability", name="GET /campaigns/{c}/stability")

    @task(2)
    def epochs(self) -> None:
        self.client.get(f"/api/v1/payouts/{self._campaign()}/epochs", name="GET /api/v1/payouts/{c}/epochs")

    @task(2)
    def operator_orders(self) -> None:
        self.client.get("/api/v1/execution/mm-orders", headers=AUTH, name="GET /api/v1/execution/mm-orders")

    @task(1)
    def me(self) -> None:
        self.client.get("/api/v1/me", headers=AUTH, name="GET /api/v1/me")
