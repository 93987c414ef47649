"""A request's parameters as Binance reads them, whatever carried them (a REST query/body, or the `params` of a
WebSocket API request): the same parsing, so both transports answer the same errors for the same input."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from devnet.exchange.domain.errors import ExchangeError

_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
MAX_LIMIT = 1000


@dataclass
class Params:
    params: dict[str, str]
    # New orders counted in this account's 10-second window by this request (Binance's X-MBX-ORDER-COUNT-10S).
    order_count: int | None = field(default=None, init=False)

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return value

    def decimal(self, name: str) -> Decimal | None:
        value = self.get(name)
        if value is None:
            return None
        if not _NUMBER.match(value):
            legal = "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'"
            raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal range is {legal}.")
        return Decimal(value)

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not value.lstrip("-").isdigit():
            raise ExchangeError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(value)

    def limit(self, default: int, maximum: int = MAX_LIMIT) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value < 1:
            raise ExchangeError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1'.")
        return min(value, maximum)

    def enum(self, name: str, kind: type[Any]) -> Any:
        value = self.get(name)
        if value is None:
            return None
        try:
            return kind(value.upper())
        except ValueError:
            known = {"side": (-1117, "Invalid side."), "type": (-1116, "Invalid orderType."),
                     "timeInForce": (-1115, "Invalid timeInForce.")}  # fmt: skip
            code, msg = known.get(name, (-1100, f"Illegal characters found in parameter '{name}'."))
            raise ExchangeError(code, msg) from None
