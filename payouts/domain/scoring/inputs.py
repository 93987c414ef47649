"""The inputs of one epoch of one campaign (docs/scoring.md, published artifact 1) as frozen dataclasses.

Two shapes are read: the bare epoch (`EpochInputs`: params, snapshots, participants), which is what the engine
scores, and the published document `mrmarket.oracle-inputs/v1` (`OracleInputs`), which wraps the same snapshots and
participants with the schema id, the campaign, the epoch and the digests of the source reports
(`docs/api/oracle-inputs-v1.schema.json`).

Parsed from and serialised to plain JSON-able dicts with no floats: prices, sizes and `min_order_quote` are decimal
strings read exactly (`fractions.Fraction`), `depth_weight` is "num/den" or a decimal string, times are integer
milliseconds, `epoch_budget` is an integer or a decimal-integer string (serialised as a string: canonical JSON per
RFC 8785 cannot carry integers above 2^53). A malformed document raises `ScoringInputError` naming the path of the
first bad value, e.g. `participants[1].orders[0].live[2].remaining`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Any, Literal

from payouts.domain.payout import ADDRESS_RE

Side = Literal["buy", "sell"]
_DECIMAL_RE = re.compile(r"(\d{1,40})(?:\.(\d{1,40}))?")
_RATIO_RE = re.compile(r"(\d{1,40})/(\d{1,40})")
_INT_STR_RE = re.compile(r"0|[1-9]\d{0,77}")
_MAX_ID = 128
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_HASH32_RE = re.compile(r"0x[0-9a-f]{64}")
INPUTS_SCHEMA = "mrmarket.oracle-inputs/v1"
VOLATILITY_WINDOW = 10  # samples in m_t, t included; also how many sample times before the epoch the inputs carry


class ScoringInputError(ValueError):
    """A malformed inputs document; `path` names the offending value."""

    code = "scoring_input_invalid"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@lru_cache(maxsize=65536)
def _parse_decimal(text: str) -> Fraction | None:
    m = _DECIMAL_RE.fullmatch(text)
    if m is None:
        return None
    whole, frac = m.group(1), m.group(2) or ""
    return Fraction(int(whole + frac), 10 ** len(frac))


def decimal_str(value: Fraction) -> str:
    """The shortest exact decimal string of a non-negative decimal rational (no exponent, no trailing zeros)."""
    den = value.denominator
    places = 0
    while den % 10 == 0 or den % 2 == 0 or den % 5 == 0:
        if den % 10 == 0:
            den //= 10
        elif den % 2 == 0:
            den //= 2
        else:
            den //= 5
        places += 1
    if den != 1:
        raise ValueError(f"{value} is not a decimal number")
    scaled = value.numerator * 10**places // value.denominator
    if places == 0:
        return str(scaled)
    text = str(scaled).rjust(places + 1, "0")
    whole, frac = text[:-places], text[-places:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def ratio_str(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


# --- reading helpers: each takes the value and its path ---------------------------------------------------------


def _obj(value: Any, path: str, keys: Sequence[str], optional: Sequence[str] = ()) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ScoringInputError(path, "must be an object")
    if len(value) == len(keys) and all(k in value for k in keys):
        return value
    missing = [k for k in keys if k not in value]
    if missing:
        raise ScoringInputError(f"{path}.{missing[0]}", "is missing")
    unknown = sorted(set(value) - set(keys) - set(optional))
    if unknown:
        raise ScoringInputError(f"{path}.{unknown[0]}", "is not a known field")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScoringInputError(path, "must be a list")
    return value


def _int(value: Any, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScoringInputError(path, "must be an integer")
    if value < minimum:
        raise ScoringInputError(path, f"must be at least {minimum}")
    return value


def _opt_int(value: Any, path: str) -> int | None:
    return None if value is None else _int(value, path)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScoringInputError(path, "must be true or false")
    return value


def _dec(value: Any, path: str, *, positive: bool = True) -> Fraction:
    parsed = _parse_decimal(value) if isinstance(value, str) else None
    if parsed is None:
        raise ScoringInputError(path, 'must be a decimal string such as "12.5"')
    if positive and parsed.numerator == 0:
        raise ScoringInputError(path, "must be positive")
    return parsed


def _ident(value: Any, path: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        raise ScoringInputError(path, f"must be a non-empty string of at most {_MAX_ID} characters")
    return value


def _side(value: Any, path: str) -> Side:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise ScoringInputError(path, 'must be "buy" or "sell"')


def _weight(value: Any, path: str) -> Fraction:
    if isinstance(value, str):
        m = _RATIO_RE.fullmatch(value)
        if m is not None:
            if int(m.group(2)) == 0:
                raise ScoringInputError(path, "has a zero denominator")
            result = Fraction(int(m.group(1)), int(m.group(2)))
        else:
            result = _dec(value, path, positive=False)
        if result > 1:
            raise ScoringInputError(path, "must be within [0, 1]")
        return result
    raise ScoringInputError(path, 'must be a string "num/den" or a decimal')


def _digest(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        raise ScoringInputError(path, "must be a SHA-256 digest in lower-case hex (64 characters)")
    return value


def _opt_digest(d: Mapping[str, Any], path: str) -> str | None:
    return _digest(d["report_digest"], f"{path}.report_digest") if "report_digest" in d else None


def _budget(value: Any, path: str) -> int:
    if isinstance(value, str) and _INT_STR_RE.fullmatch(value):
        return int(value)
    return _int(value, path)


# --- the model -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    epoch_index: int
    epoch_start_ms: int
    epoch_end_ms: int
    epoch_seconds: int
    sample_seconds: int
    max_spread_bps: int
    min_order_quote: Fraction
    min_rest_seconds: int
    single_side_divisor: int
    depth_weight: Fraction
    volatility_weighting: bool
    max_off_mid_trade_bps: int
    epoch_budget: int

    FIELDS = (
        "epoch_index",
        "epoch_start_ms",
        "epoch_end_ms",
        "epoch_seconds",
        "sample_seconds",
        "max_spread_bps",
        "min_order_quote",
        "min_rest_seconds",
        "single_side_divisor",
        "depth_weight",
        "volatility_weighting",
        "max_off_mid_trade_bps",
        "epoch_budget",
    )

    @property
    def sample_ms(self) -> int:
        return self.sample_seconds * 1000

    def sample_times(self) -> tuple[int, ...]:
        """The epoch start, then every `sample_seconds`, strictly before the epoch end."""
        return tuple(range(self.epoch_start_ms, self.epoch_end_ms, self.sample_ms))

    # The published document carries the epoch apart from the parameters: its keys there, by field.
    EPOCH_KEYS = {"epoch_index": "index", "epoch_start_ms": "start_ms", "epoch_end_ms": "end_ms"}

    def prior_sample_times(self) -> tuple[int, ...]:
        """The up to `VOLATILITY_WINDOW` sample times just before the epoch start, in time order: the tails of the
        earlier epochs, each `epoch_seconds` long and aligned to the campaign start (none for epoch 0)."""
        epoch_ms = self.epoch_seconds * 1000
        times: list[int] = []
        start = self.epoch_start_ms
        for _ in range(self.epoch_index):
            start -= epoch_ms
            times[:0] = range(start, start + epoch_ms, self.sample_ms)[-(VOLATILITY_WINDOW - len(times)) :]
            if len(times) == VOLATILITY_WINDOW:
                break
        return tuple(times)

    @classmethod
    def from_json(cls, value: Any, path: str) -> Params:
        d = _obj(value, path, cls.FIELDS)
        return cls._read(d, {k: f"{path}.{k}" for k in cls.FIELDS})

    @classmethod
    def from_epoch_and_parameters(cls, epoch: Any, parameters: Any, path: str) -> Params:
        """The published document's `epoch` (index, start_ms, end_ms) and `parameters` (every other field)."""
        e = _obj(epoch, f"{path}.epoch", tuple(cls.EPOCH_KEYS.values()))
        names = tuple(k for k in cls.FIELDS if k not in cls.EPOCH_KEYS)
        p = _obj(parameters, f"{path}.parameters", names)
        merged = {**{k: e[key] for k, key in cls.EPOCH_KEYS.items()}, **p}
        paths = {k: f"{path}.epoch.{key}" for k, key in cls.EPOCH_KEYS.items()}
        paths.update({k: f"{path}.parameters.{k}" for k in names})
        return cls._read(merged, paths)

    @classmethod
    def _read(cls, d: Mapping[str, Any], at: Mapping[str, str]) -> Params:
        start = _int(d["epoch_start_ms"], at["epoch_start_ms"])
        end = _int(d["epoch_end_ms"], at["epoch_end_ms"])
        if end <= start:
            raise ScoringInputError(at["epoch_end_ms"], "must be after the epoch start")
        epoch_seconds = _int(d["epoch_seconds"], at["epoch_seconds"], minimum=1)
        if end - start > epoch_seconds * 1000:
            raise ScoringInputError(at["epoch_end_ms"], "the epoch is longer than epoch_seconds")
        return cls(
            epoch_index=_int(d["epoch_index"], at["epoch_index"]),
            epoch_start_ms=start,
            epoch_end_ms=end,
            epoch_seconds=epoch_seconds,
            sample_seconds=_int(d["sample_seconds"], at["sample_seconds"], minimum=1),
            max_spread_bps=_int(d["max_spread_bps"], at["max_spread_bps"], minimum=1),
            min_order_quote=_dec(d["min_order_quote"], at["min_order_quote"], positive=False),
            min_rest_seconds=_int(d["min_rest_seconds"], at["min_rest_seconds"]),
            single_side_divisor=_int(d["single_side_divisor"], at["single_side_divisor"], minimum=1),
            depth_weight=_weight(d["depth_weight"], at["depth_weight"]),
            volatility_weighting=_bool(d["volatility_weighting"], at["volatility_weighting"]),
            max_off_mid_trade_bps=_int(d["max_off_mid_trade_bps"], at["max_off_mid_trade_bps"]),
            epoch_budget=_budget(d["epoch_budget"], at["epoch_budget"]),
        )

    def epoch_json(self) -> dict[str, Any]:
        return {"index": self.epoch_index, "start_ms": self.epoch_start_ms, "end_ms": self.epoch_end_ms}

    def parameters_json(self) -> dict[str, Any]:
        """Every field but the epoch's, in their canonical written form."""
        return {k: v for k, v in self.as_json().items() if k not in self.EPOCH_KEYS}

    def as_json(self) -> dict[str, Any]:
        return {
            "epoch_index": self.epoch_index,
            "epoch_start_ms": self.epoch_start_ms,
            "epoch_end_ms": self.epoch_end_ms,
            "epoch_seconds": self.epoch_seconds,
            "sample_seconds": self.sample_seconds,
            "max_spread_bps": self.max_spread_bps,
            "min_order_quote": decimal_str(self.min_order_quote),
            "min_rest_seconds": self.min_rest_seconds,
            "single_side_divisor": self.single_side_divisor,
            "depth_weight": ratio_str(self.depth_weight),
            "volatility_weighting": self.volatility_weighting,
            "max_off_mid_trade_bps": self.max_off_mid_trade_bps,
            "epoch_budget": str(self.epoch_budget),
        }


Level = tuple[Fraction, Fraction]  # (price, size)


def _levels(value: Any, path: str) -> tuple[Level, ...]:
    levels: list[Level] = []
    seen: set[tuple[int, int]] = set()  # (numerator, denominator): hashing a Fraction is slow
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise ScoringInputError(p, "must be a [price, size] pair")
        price, size = _dec(item[0], f"{p}[0]"), _dec(item[1], f"{p}[1]")
        key = (price.numerator, price.denominator)
        if key in seen:
            raise ScoringInputError(f"{p}[0]", "repeats a price of this side")
        seen.add(key)
        levels.append((price, size))
    return tuple(levels)


@dataclass(frozen=True)
class Book:
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @cached_property
    def mid(self) -> Fraction | None:
        """(best bid + best ask) / 2; None when a side is empty (the sample is then a gap)."""
        if not self.bids or not self.asks:
            return None
        return (max(p for p, _ in self.bids) + min(p for p, _ in self.asks)) / 2

    def size_at(self, side: Side, price: Fraction) -> Fraction | None:
        for p, s in self.bids if side == "buy" else self.asks:
            if p == price:
                return s
        return None

    @classmethod
    def from_json(cls, value: Any, path: str) -> Book:
        d = _obj(value, path, ("bids", "asks"))
        return cls(bids=_levels(d["bids"], f"{path}.bids"), asks=_levels(d["asks"], f"{path}.asks"))

    def as_json(self) -> dict[str, Any]:
        return {
            "bids": [[decimal_str(p), decimal_str(s)] for p, s in self.bids],
            "asks": [[decimal_str(p), decimal_str(s)] for p, s in self.asks],
        }


@dataclass(frozen=True)
class Snapshot:
    """The oracle's own book at one sample time; `book` None is a gap."""

    t_ms: int
    book: Book | None

    @classmethod
    def from_json(cls, value: Any, path: str) -> Snapshot:
        d = _obj(value, path, ("t_ms", "book"))
        book = None if d["book"] is None else Book.from_json(d["book"], f"{path}.book")
        return cls(t_ms=_int(d["t_ms"], f"{path}.t_ms"), book=book)

    def as_json(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "book": None if self.book is None else self.book.as_json()}


@dataclass(frozen=True)
class LiveInterval:
    """A span in which the order rested with `remaining` size: [live_from_ms, live_to_ms), None = still live."""

    live_from_ms: int
    live_to_ms: int | None
    remaining: Fraction

    def contains(self, t_ms: int) -> bool:
        return self.live_from_ms <= t_ms and (self.live_to_ms is None or t_ms < self.live_to_ms)

    @classmethod
    def from_json(cls, value: Any, path: str) -> LiveInterval:
        d = _obj(value, path, ("live_from_ms", "live_to_ms", "remaining"))
        start = _int(d["live_from_ms"], f"{path}.live_from_ms")
        end = _opt_int(d["live_to_ms"], f"{path}.live_to_ms")
        if end is not None and end <= start:
            raise ScoringInputError(f"{path}.live_to_ms", "must be after live_from_ms")
        return cls(live_from_ms=start, live_to_ms=end, remaining=_dec(d["remaining"], f"{path}.remaining"))

    def as_json(self) -> dict[str, Any]:
        return {
            "live_from_ms": self.live_from_ms,
            "live_to_ms": self.live_to_ms,
            "remaining": decimal_str(self.remaining),
        }


@dataclass(frozen=True)
class OrderConfirmation:
    """What the exchange answered about an order, asked with the account's own key."""

    side: Side
    price: Fraction
    amount: Fraction
    created_ms: int
    closed_ms: int | None

    @classmethod
    def from_json(cls, value: Any, path: str) -> OrderConfirmation:
        d = _obj(value, path, ("side", "price", "amount", "created_ms", "closed_ms"))
        return cls(
            side=_side(d["side"], f"{path}.side"),
            price=_dec(d["price"], f"{path}.price"),
            amount=_dec(d["amount"], f"{path}.amount"),
            created_ms=_int(d["created_ms"], f"{path}.created_ms"),
            closed_ms=_opt_int(d["closed_ms"], f"{path}.closed_ms"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "price": decimal_str(self.price),
            "amount": decimal_str(self.amount),
            "created_ms": self.created_ms,
            "closed_ms": self.closed_ms,
        }


@dataclass(frozen=True)
class Order:
    """A reported resting order: its live intervals in time order, and the exchange's answer (None: no answer).
    `report_digest`, optional, names the source report it came from (one of the document's `source_reports`)."""

    order_id: str
    side: Side
    price: Fraction
    amount: Fraction
    live: tuple[LiveInterval, ...]
    exchange: OrderConfirmation | None
    report_digest: str | None = None

    @property
    def created_ms(self) -> int:
        return self.live[0].live_from_ms

    @property
    def closed_ms(self) -> int | None:
        return self.live[-1].live_to_ms

    @cached_property
    def confirmed(self) -> bool:
        """The exchange agrees on side, price, amount, creation time and close time (both None while open)."""
        x = self.exchange
        return (
            x is not None
            and x.side == self.side
            and x.price == self.price
            and x.amount == self.amount
            and x.created_ms == self.created_ms
            and x.closed_ms == self.closed_ms
        )

    def run_start(self, index: int) -> int:
        """When the order's continuous live run that includes interval `index` began."""
        while index > 0 and self.live[index - 1].live_to_ms == self.live[index].live_from_ms:
            index -= 1
        return self.live[index].live_from_ms

    @classmethod
    def from_json(cls, value: Any, path: str) -> Order:
        d = _obj(value, path, ("order_id", "side", "price", "amount", "live", "exchange"), ("report_digest",))
        live = tuple(
            LiveInterval.from_json(x, f"{path}.live[{i}]") for i, x in enumerate(_list(d["live"], f"{path}.live"))
        )
        if not live:
            raise ScoringInputError(f"{path}.live", "must list at least one interval")
        for i in range(1, len(live)):
            prev_end = live[i - 1].live_to_ms
            if prev_end is None or live[i].live_from_ms < prev_end:
                raise ScoringInputError(f"{path}.live[{i}].live_from_ms", "overlaps the previous interval")
        exchange = None if d["exchange"] is None else OrderConfirmation.from_json(d["exchange"], f"{path}.exchange")
        return cls(
            order_id=_ident(d["order_id"], f"{path}.order_id"),
            side=_side(d["side"], f"{path}.side"),
            price=_dec(d["price"], f"{path}.price"),
            amount=_dec(d["amount"], f"{path}.amount"),
            live=live,
            exchange=exchange,
            report_digest=_opt_digest(d, path),
        )

    def as_json(self) -> dict[str, Any]:
        out = {
            "order_id": self.order_id,
            "side": self.side,
            "price": decimal_str(self.price),
            "amount": decimal_str(self.amount),
            "live": [x.as_json() for x in self.live],
            "exchange": None if self.exchange is None else self.exchange.as_json(),
        }
        if self.report_digest is not None:
            out["report_digest"] = self.report_digest
        return out


@dataclass(frozen=True)
class FillConfirmation:
    """What the exchange's trade history for the account shows for the fill's trade."""

    trade_id: str
    side: Side
    price: Fraction
    amount: Fraction
    maker: bool

    @classmethod
    def from_json(cls, value: Any, path: str) -> FillConfirmation:
        d = _obj(value, path, ("trade_id", "side", "price", "amount", "maker"))
        return cls(
            trade_id=_ident(d["trade_id"], f"{path}.trade_id"),
            side=_side(d["side"], f"{path}.side"),
            price=_dec(d["price"], f"{path}.price"),
            amount=_dec(d["amount"], f"{path}.amount"),
            maker=_bool(d["maker"], f"{path}.maker"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "trade_id": self.trade_id,
            "side": self.side,
            "price": decimal_str(self.price),
            "amount": decimal_str(self.amount),
            "maker": self.maker,
        }


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_id: str
    side: Side
    price: Fraction
    amount: Fraction
    maker: bool
    ts_ms: int
    exchange: FillConfirmation | None
    report_digest: str | None = None  # the source report it came from, when given

    @cached_property
    def cents(self) -> int:
        """floor(price × amount × 100): the fill's notional in hundredths of a quote unit."""
        p, a = self.price, self.amount
        return p.numerator * a.numerator * 100 // (p.denominator * a.denominator)

    @cached_property
    def confirmed(self) -> bool:
        x = self.exchange
        return (
            x is not None
            and x.trade_id == self.trade_id
            and x.side == self.side
            and x.price == self.price
            and x.amount == self.amount
            and x.maker == self.maker
        )

    @classmethod
    def from_json(cls, value: Any, path: str) -> Fill:
        d = _obj(
            value,
            path,
            ("trade_id", "order_id", "side", "price", "amount", "maker", "ts_ms", "exchange"),
            ("report_digest",),
        )
        exchange = None if d["exchange"] is None else FillConfirmation.from_json(d["exchange"], f"{path}.exchange")
        return cls(
            trade_id=_ident(d["trade_id"], f"{path}.trade_id"),
            order_id=_ident(d["order_id"], f"{path}.order_id"),
            side=_side(d["side"], f"{path}.side"),
            price=_dec(d["price"], f"{path}.price"),
            amount=_dec(d["amount"], f"{path}.amount"),
            maker=_bool(d["maker"], f"{path}.maker"),
            ts_ms=_int(d["ts_ms"], f"{path}.ts_ms"),
            exchange=exchange,
            report_digest=_opt_digest(d, path),
        )

    def as_json(self) -> dict[str, Any]:
        out = {
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "side": self.side,
            "price": decimal_str(self.price),
            "amount": decimal_str(self.amount),
            "maker": self.maker,
            "ts_ms": self.ts_ms,
            "exchange": None if self.exchange is None else self.exchange.as_json(),
        }
        if self.report_digest is not None:
            out["report_digest"] = self.report_digest
        return out


def _keys(value: Any, path: str) -> tuple[str, ...]:
    return tuple(sorted({_ident(x, f"{path}[{i}]") for i, x in enumerate(_list(value, path))}))


@dataclass(frozen=True)
class Links:
    """Link keys: participants sharing a deposit address, or a withdrawal address, are linked."""

    deposit_addresses: tuple[str, ...] = ()
    withdrawal_addresses: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any, path: str) -> Links:
        d = _obj(value, path, ("deposit_addresses", "withdrawal_addresses"))
        return cls(
            deposit_addresses=_keys(d["deposit_addresses"], f"{path}.deposit_addresses"),
            withdrawal_addresses=_keys(d["withdrawal_addresses"], f"{path}.withdrawal_addresses"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "deposit_addresses": list(self.deposit_addresses),
            "withdrawal_addresses": list(self.withdrawal_addresses),
        }


@dataclass(frozen=True)
class Participant:
    address: str
    orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    links: Links

    @classmethod
    def from_json(cls, value: Any, path: str) -> Participant:
        d = _obj(value, path, ("address", "orders", "fills", "links"))
        address = d["address"]
        if not isinstance(address, str) or not ADDRESS_RE.fullmatch(address):
            raise ScoringInputError(f"{path}.address", "must be a lower-case 0x address")
        orders = tuple(
            Order.from_json(x, f"{path}.orders[{i}]") for i, x in enumerate(_list(d["orders"], f"{path}.orders"))
        )
        seen: set[str] = set()
        for i, o in enumerate(orders):
            if o.order_id in seen:
                raise ScoringInputError(f"{path}.orders[{i}].order_id", "repeats an order id")
            seen.add(o.order_id)
        fills = tuple(Fill.from_json(x, f"{path}.fills[{i}]") for i, x in enumerate(_list(d["fills"], f"{path}.fills")))
        seen_fills: set[tuple[str, str]] = set()  # one trade gives one account one fill per side: a repeat is a copy
        for i, f in enumerate(fills):
            if (f.trade_id, f.side) in seen_fills:
                raise ScoringInputError(f"{path}.fills[{i}].trade_id", "repeats a trade id on the same side")
            seen_fills.add((f.trade_id, f.side))
        return cls(address=address, orders=orders, fills=fills, links=Links.from_json(d["links"], f"{path}.links"))

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "orders": [o.as_json() for o in self.orders],
            "fills": [f.as_json() for f in self.fills],
            "links": self.links.as_json(),
        }


def _snapshots(value: Any, path: str, grid: tuple[int, ...], where: str) -> tuple[Snapshot, ...]:
    """Snapshots at distinct times of `grid`, sorted by time."""
    allowed = set(grid)
    snapshots: dict[int, Snapshot] = {}
    for i, x in enumerate(_list(value, path)):
        snap = Snapshot.from_json(x, f"{path}[{i}]")
        if snap.t_ms not in allowed:
            raise ScoringInputError(f"{path}[{i}].t_ms", f"is not {where}")
        if snap.t_ms in snapshots:
            raise ScoringInputError(f"{path}[{i}].t_ms", "repeats a sample time")
        snapshots[snap.t_ms] = snap
    return tuple(snapshots[t] for t in sorted(snapshots))


def _books_at(snapshots: Sequence[Snapshot], times: Sequence[int]) -> list[Book | None]:
    by_time = {s.t_ms: s.book for s in snapshots}
    books: list[Book | None] = []
    for t in times:
        book = by_time.get(t)
        books.append(book if book is not None and book.mid is not None else None)
    return books


@dataclass(frozen=True)
class EpochInputs:
    """One epoch of one campaign: parameters, the oracle's snapshots (sorted by time), the participants, and the
    oracle's snapshots at the sample times just before the epoch (`prior_snapshots`, optional; used only for the
    volatility moves and as a fill's reference mid, never scored)."""

    params: Params
    snapshots: tuple[Snapshot, ...]
    participants: tuple[Participant, ...]
    prior_snapshots: tuple[Snapshot, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> EpochInputs:
        d = _obj(value, "inputs", ("params", "snapshots", "participants"), optional=("prior_snapshots",))
        return cls.from_parts(
            Params.from_json(d["params"], "inputs.params"),
            d["snapshots"],
            d["participants"],
            d.get("prior_snapshots", []),
        )

    @classmethod
    def from_parts(
        cls, params: Params, snapshots_value: Any, participants_value: Any, prior_value: Any = None
    ) -> EpochInputs:
        """The snapshots, participants and prior snapshots of a document (read at `inputs.snapshots`,
        `inputs.participants`, `inputs.prior_snapshots`)."""
        snapshots = _snapshots(snapshots_value, "inputs.snapshots", params.sample_times(), "a sample time of the epoch")
        prior = _snapshots(
            [] if prior_value is None else prior_value,
            "inputs.prior_snapshots",
            params.prior_sample_times(),
            f"one of the {VOLATILITY_WINDOW} sample times before the epoch",
        )
        participants = tuple(
            Participant.from_json(x, f"inputs.participants[{i}]")
            for i, x in enumerate(_list(participants_value, "inputs.participants"))
        )
        seen: set[str] = set()
        for i, p in enumerate(participants):
            if p.address in seen:
                raise ScoringInputError(f"inputs.participants[{i}].address", "repeats a participant")
            seen.add(p.address)
        return cls(
            params=params,
            snapshots=snapshots,
            participants=tuple(sorted(participants, key=lambda p: p.address)),
            prior_snapshots=prior,
        )

    def as_json(self) -> dict[str, Any]:
        """`prior_snapshots` is written only when there are any (absent and empty read the same)."""
        out: dict[str, Any] = {
            "params": self.params.as_json(),
            "snapshots": [s.as_json() for s in self.snapshots],
            "participants": [p.as_json() for p in self.participants],
        }
        if self.prior_snapshots:
            out["prior_snapshots"] = [s.as_json() for s in self.prior_snapshots]
        return out

    def books(self) -> list[Book | None]:
        """The book at each sample time, in order; None where the oracle has no snapshot or the snapshot has no
        mid (an empty side)."""
        return _books_at(self.snapshots, self.params.sample_times())

    def prior_books(self) -> list[Book | None]:
        """Likewise at each of `Params.prior_sample_times`, in order."""
        return _books_at(self.prior_snapshots, self.params.prior_sample_times())


@dataclass(frozen=True)
class Campaign:
    """The campaign on chain: its escrow's chain and address, and the SHA-256 of its metadata (0x-prefixed)."""

    chain_id: int
    address: str
    metadata_hash: str

    @classmethod
    def from_json(cls, value: Any, path: str) -> Campaign:
        d = _obj(value, path, ("chain_id", "address", "metadata_hash"))
        address, metadata_hash = d["address"], d["metadata_hash"]
        if not isinstance(address, str) or not ADDRESS_RE.fullmatch(address):
            raise ScoringInputError(f"{path}.address", "must be a lower-case 0x address")
        if not isinstance(metadata_hash, str) or not _HASH32_RE.fullmatch(metadata_hash):
            raise ScoringInputError(f"{path}.metadata_hash", "must be 0x and 32 bytes of lower-case hex")
        return cls(
            chain_id=_int(d["chain_id"], f"{path}.chain_id", minimum=1), address=address, metadata_hash=metadata_hash
        )

    def as_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "address": self.address, "metadata_hash": self.metadata_hash}


@dataclass(frozen=True)
class OracleInputs:
    """The published inputs document `mrmarket.oracle-inputs/v1`: the campaign, the epoch to score, and the digests
    of every source report (sorted); an order's or fill's `report_digest` must be one of them."""

    campaign: Campaign
    epoch: EpochInputs
    source_reports: tuple[str, ...]

    FIELDS = ("schema", "campaign", "epoch", "parameters", "snapshots", "participants", "source_reports")

    @classmethod
    def from_json(cls, value: Any) -> OracleInputs:
        d = _obj(value, "inputs", cls.FIELDS, optional=("prior_snapshots",))
        if d["schema"] != INPUTS_SCHEMA:
            raise ScoringInputError("inputs.schema", f'must be "{INPUTS_SCHEMA}"')
        campaign = Campaign.from_json(d["campaign"], "inputs.campaign")
        params = Params.from_epoch_and_parameters(d["epoch"], d["parameters"], "inputs")
        reports: set[str] = set()
        for i, x in enumerate(_list(d["source_reports"], "inputs.source_reports")):
            if _digest(x, f"inputs.source_reports[{i}]") in reports:
                raise ScoringInputError(f"inputs.source_reports[{i}]", "repeats a report digest")
            reports.add(x)
        epoch = EpochInputs.from_parts(params, d["snapshots"], d["participants"], d.get("prior_snapshots", []))
        cls._check_report_digests(d["participants"], reports)
        return cls(campaign=campaign, epoch=epoch, source_reports=tuple(sorted(reports)))

    @staticmethod
    def _check_report_digests(participants: list[Any], reports: set[str]) -> None:
        # Paths follow the document's own order (the parsed participants are sorted by address).
        for i, p in enumerate(participants):
            for kind in ("orders", "fills"):
                for k, item in enumerate(p[kind]):
                    if "report_digest" in item and item["report_digest"] not in reports:
                        raise ScoringInputError(
                            f"inputs.participants[{i}].{kind}[{k}].report_digest", "is not among source_reports"
                        )

    def as_json(self) -> dict[str, Any]:
        inner = self.epoch.as_json()
        out = {
            "schema": INPUTS_SCHEMA,
            "campaign": self.campaign.as_json(),
            "epoch": self.epoch.params.epoch_json(),
            "parameters": self.epoch.params.parameters_json(),
            "snapshots": inner["snapshots"],
            "participants": inner["participants"],
            "source_reports": list(self.source_reports),
        }
        if "prior_snapshots" in inner:
            out["prior_snapshots"] = inner["prior_snapshots"]
        return out
