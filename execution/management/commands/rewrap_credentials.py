"""Re-wrap every stored exchange credential under the current master key (rotation without downtime)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from execution.accounts import credentials_rewrap_all


class Command(BaseCommand):
    help = (
        "Move every active exchange account's credentials to CREDENTIALS_MASTER_KEY_ID. Keep the previous key in "
        "CREDENTIALS_RETIRED_KEYS until this reports 0 left, then remove it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        moved = credentials_rewrap_all()
        self.stdout.write(f"re-wrapped {moved} account(s) under key id {settings.CREDENTIALS_MASTER_KEY_ID}")
