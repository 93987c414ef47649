"""Print the public half of the credentials master key: the web process's CREDENTIALS_PUBLIC_KEY (ADR 0015)."""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Print CREDENTIALS_PUBLIC_KEY for the configured CREDENTIALS_MASTER_KEY (run where the master key is held). "
        "The web process is given this value instead of the master key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(base64.b64encode(settings.CREDENTIALS_PUBLIC_KEY).decode())
