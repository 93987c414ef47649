"""Exchange credentials in memory: a value object that never prints its secrets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from wire.redaction import register_secret


@dataclass(frozen=True)
class ExchangeCredentials:
    api_key: str
    secret: str = field(repr=False)
    password: str = field(default="", repr=False)  # some exchanges (OKX, KuCoin) need a passphrase

    def __post_init__(self) -> None:
        # This process now holds the plaintext: mask it in every log line and error text from here on.
        register_secret(self.secret, self.password)

    def to_bytes(self) -> bytes:
        return json.dumps({"api_key": self.api_key, "secret": self.secret, "password": self.password}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ExchangeCredentials:
        data = json.loads(raw)
        return cls(api_key=data["api_key"], secret=data["secret"], password=data.get("password", ""))

    @property
    def hint(self) -> str:
        return self.api_key[-4:]

    def __repr__(self) -> str:
        return f"ExchangeCredentials(api_key=…{self.hint})"
