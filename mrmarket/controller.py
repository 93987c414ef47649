"""The controller key: the Ed25519 key Django signs executor job control with (ADR 0011), and whose public half
an executor must attest it obeys. Loaded from `CONTROLLER_SIGNING_KEY` (the prod profile validates it at start)."""

from __future__ import annotations

from django.conf import settings

from mrmarket.errors import ControllerNotConfigured
from wire.keys import SigningKey


def controller_key() -> SigningKey:
    seed = settings.CONTROLLER_SIGNING_KEY
    if not seed:
        raise ControllerNotConfigured("CONTROLLER_SIGNING_KEY is not set: Django cannot sign requests to executors")
    return SigningKey.from_seed(bytes.fromhex(seed))
