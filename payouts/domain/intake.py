"""Report intake: a job's verified reports (`mrmarket.report/v1`) become the scoring engine's orders and fills.

Pure (no Django, no I/O). `normalize_job` reads one job's whole chain of reports, in sequence order from 0, and
derives each order's live intervals and the job's fills, each naming the digest of the report it came from;
`participant_inputs` merges the jobs of one participant into a scoring `Participant`. Live intervals run on the
exchange's own times (`exchange_ts_ms` of the placement, the close and each fill), which are what the exchange
confirms and the cross-check compares exactly; the executor's `ts_ms` only orders the stream (and stands in for an
exchange time the exchange did not give). Exchange confirmations are left None: asking the exchange is a separate
step. Every choice is listed in docs/scoring.md, "Report intake".
An inconsistent event stream raises `IntakeError`, whose `code` says what is wrong and `path` where
(`reports[2].fills[0].amount`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from payouts.domain.payout import ADDRESS_RE
from payouts.domain.scoring.inputs import Fill, Links, LiveInterval, Order, Participant, Side
from wire.reports import SignedReport

# IntakeError codes.
BAD_DIGESTS = "report_digests_invalid"  # the caller's digests do not match its reports
NO_REPORTS = "no_reports"
OUT_OF_SEQUENCE = "report_out_of_sequence"  # not the chain from 0 in order: gap, reorder, other job, broken link
MARKET_MISMATCH = "market_mismatch"  # reports or jobs of more than one exchange market
TIME_BACKWARDS = "time_backwards"
OUTSIDE_WINDOW = "outside_window"
NOT_PLACED = "order_not_placed"  # an event or a fill for an order the job never placed (before it)
PLACED_TWICE = "order_placed_twice"
ALREADY_CLOSED = "order_already_closed"
ORDER_MISMATCH = "order_mismatch"  # client and exchange order ids, or the side, disagree with the placement
BAD_ORDER = "order_invalid"
OVERFILLED = "fill_exceeds_remaining"
FILL_CONFLICT = "fill_conflict"  # one trade id reported twice with different facts
ORDER_REPEATED = "order_repeated"
FILL_REPEATED = "fill_repeated"
JOB_REPEATED = "job_repeated"
BAD_ADDRESS = "address_invalid"

_CLOSING = frozenset({"cancelled", "expired", "rejected"})


def _exchange_time(item: Mapping[str, Any]) -> int:
    """An order event's time on the exchange's clock, or the executor's when the exchange did not say."""
    at = item["exchange_ts_ms"]
    return int(item["ts_ms"] if at is None else at)


class IntakeError(ValueError):
    """An event stream the intake cannot turn into orders and fills; `path` names the offending value."""

    def __init__(self, code: str, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.code = code
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class NormalizedJob:
    """One job's orders (in placement order) and fills (in order of first appearance), with the job's market and
    the digests of all its reports (in sequence order: the `source_reports` they come from)."""

    job_id: str
    exchange: str
    symbol: str
    orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    source_reports: tuple[str, ...]


@dataclass
class _Tracked:
    """An order while the stream is read."""

    order_id: str
    client_order_id: str
    exchange_order_id: str | None
    side: Side
    price: Fraction | None  # None: placed without a limit price, it never rests
    amount: Fraction
    placed_ms: int  # the exchange's creation time (the executor's when the exchange gave none)
    path: str
    report_digest: str
    closed_ms: int | None = None
    filled: Fraction = Fraction(0)
    splits: list[tuple[int, Fraction]] = field(default_factory=list)  # (when its size dropped, by how much)


def _pairs(
    reports: Iterable[SignedReport | Mapping[str, Any]], report_digests: Sequence[str] | None
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """(report, digest) one at a time: a report is never held longer than it takes to read its events."""
    if report_digests is None:
        for i, r in enumerate(reports):
            if not isinstance(r, SignedReport):
                raise IntakeError(BAD_DIGESTS, f"reports[{i}]", "a bare report needs its digest in report_digests")
            yield r.report, r.digest
        return
    given = list(reports)  # digests given apart (bare reports): the two lists must agree first
    if len(report_digests) != len(given):
        raise IntakeError(BAD_DIGESTS, "report_digests", "must give one digest per report")
    for i, r in enumerate(given):
        if isinstance(r, SignedReport) and r.digest != report_digests[i]:
            raise IntakeError(BAD_DIGESTS, f"report_digests[{i}]", "is not the digest of its signed report")
    for r, d in zip(given, report_digests, strict=True):
        yield (r.report if isinstance(r, SignedReport) else r), d


def _check_link(i: int, doc: Mapping[str, Any], prev: tuple[Mapping[str, Any], str] | None) -> None:
    """Report i continues the chain from 0: its sequence, job, link to the previous digest, window and market."""
    at = f"reports[{i}]"
    if doc["sequence"] != i:
        raise IntakeError(
            OUT_OF_SEQUENCE,
            f"{at}.sequence",
            f"is {doc['sequence']}, expected {i}: the chain from 0, in order",
        )
    if prev is None:
        return
    before, before_digest = prev
    if doc["job_id"] != before["job_id"]:
        raise IntakeError(OUT_OF_SEQUENCE, f"{at}.job_id", f"belongs to job {doc['job_id']}, not {before['job_id']}")
    if doc["prev_digest"] != before_digest:
        raise IntakeError(OUT_OF_SEQUENCE, f"{at}.prev_digest", "does not link to the previous report's digest")
    if doc["window_start_ms"] != before["window_end_ms"]:
        raise IntakeError(OUT_OF_SEQUENCE, f"{at}.window_start_ms", "does not start where the previous one ended")
    for key in ("exchange", "symbol"):
        if doc[key] != before[key]:
            raise IntakeError(MARKET_MISMATCH, f"{at}.{key}", f"is {doc[key]}, the job's is {before[key]}")


def _report_items(i: int, doc: Mapping[str, Any], last: dict[str, int]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """(list, item index, item) of one report's order events and fills, in time order: by `ts_ms`, an order
    event before a fill at the same millisecond, each list in its own order. `last` carries each list's latest
    time across reports (time never goes backwards along the chain)."""
    start, end = doc["window_start_ms"], doc["window_end_ms"]
    items: list[tuple[int, int, int, str, Mapping[str, Any]]] = []
    for rank, key in enumerate(("order_events", "fills")):
        for k, item in enumerate(doc[key]):
            ts, at = item["ts_ms"], f"reports[{i}].{key}[{k}].ts_ms"
            if ts < last[key]:
                raise IntakeError(TIME_BACKWARDS, at, f"{ts} is before the previous {key} entry ({last[key]})")
            if not start <= ts < end:
                raise IntakeError(OUTSIDE_WINDOW, at, f"{ts} is outside the report window [{start}, {end})")
            last[key] = ts
            items.append((ts, rank, k, key, item))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    return [(key, k, item) for _, _, k, key, item in items]


class _Orders:
    """The job's orders by client order id and by exchange order id."""

    def __init__(self) -> None:
        self.placed: list[_Tracked] = []
        self.by_client: dict[str, _Tracked] = {}
        self.by_exchange: dict[str, _Tracked] = {}

    def place(self, item: Mapping[str, Any], path: str, report_digest: str) -> None:
        cid, eid = item["client_order_id"], item["exchange_order_id"]
        if cid in self.by_client or (eid is not None and eid in self.by_exchange):
            raise IntakeError(PLACED_TWICE, f"{path}.client_order_id", "places an order the job already placed")
        amount = Fraction(item["amount"])
        if amount == 0:
            raise IntakeError(BAD_ORDER, f"{path}.amount", "a placed order has a positive amount")
        order = _Tracked(
            order_id=cid if eid is None else eid,
            client_order_id=cid,
            exchange_order_id=eid,
            side=item["side"],
            price=None if item["price"] is None else Fraction(item["price"]),
            amount=amount,
            placed_ms=_exchange_time(item),
            path=path,
            report_digest=report_digest,
        )
        self.placed.append(order)
        self.by_client[cid] = order
        if eid is not None:
            self.by_exchange[eid] = order

    def find(self, item: Mapping[str, Any], path: str) -> _Tracked | None:
        """The order an event or a fill names: by its exchange order id when known, else by its client order id;
        the other id, and the side, must then be the order's."""
        cid, eid = item["client_order_id"], item["exchange_order_id"]
        order = self.by_exchange.get(eid) if eid is not None else None
        if order is None:
            order = self.by_client.get(cid)
        if order is None:
            return None
        if order.client_order_id != cid:
            raise IntakeError(ORDER_MISMATCH, f"{path}.client_order_id", f"order {order.order_id} has another one")
        if eid is not None:
            if order.exchange_order_id is None:
                order.exchange_order_id = eid  # learned after the placement; the order keeps its id
                self.by_exchange[eid] = order
            elif order.exchange_order_id != eid:
                raise IntakeError(ORDER_MISMATCH, f"{path}.exchange_order_id", f"order {cid} has another one")
        if item["side"] != order.side:
            raise IntakeError(ORDER_MISMATCH, f"{path}.side", f"order {order.order_id} is a {order.side}")
        return order


def _intervals(order: _Tracked) -> tuple[LiveInterval, ...]:
    """Live from the placement; each fill's time ends the interval and starts one with the smaller size (back to
    back, so the rest clock runs on); the closing event, or the fill that leaves nothing, ends the last one. Empty
    when the order never rested for a positive time."""
    live_from, remaining, closed = order.placed_ms, order.amount, order.closed_ms
    out: list[LiveInterval] = []
    for at, amount in sorted(order.splits, key=lambda s: s[0]):  # stable: reported order at one time
        if closed is not None and at >= closed:
            break  # a fill after the close leaves the live intervals as they were
        if at > live_from:
            out.append(LiveInterval(live_from_ms=live_from, live_to_ms=at, remaining=remaining))
            live_from = at
        remaining -= amount
        if remaining == 0:
            closed = at  # filled in full
            break
    if closed is None:
        out.append(LiveInterval(live_from_ms=live_from, live_to_ms=None, remaining=remaining))
    elif closed > live_from:
        out.append(LiveInterval(live_from_ms=live_from, live_to_ms=closed, remaining=remaining))
    return tuple(out)


def _fill_facts(item: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must agree when one trade is reported twice: all but when the executor learned of it."""
    return (
        item["exchange_ts_ms"],
        item["client_order_id"],
        item["exchange_order_id"],
        item["side"],
        Fraction(item["price"]),
        Fraction(item["amount"]),
        Fraction(item["fee"]),
        item["fee_asset"],
        item["liquidity"],
    )


def normalize_job(
    reports: Iterable[SignedReport | Mapping[str, Any]], *, report_digests: Sequence[str] | None = None
) -> NormalizedJob:
    """One job's orders and fills from its verified reports, the whole chain from sequence 0 in order.

    `report_digests` gives each report's digest; it may be left out when every report is a `SignedReport` (its
    own digest is used). The reports are taken as verified (`wire.reports.verify_chain`); the checks here are
    those of the event stream across reports, and the chain order again (cheap, and this may be called apart).
    Reports are read one at a time from the iterable (a generator over stored rows holds one report at a time):
    only the job's order and fill state is kept."""
    orders = _Orders()
    fills: dict[str, Fill] = {}
    facts: dict[str, tuple[Any, ...]] = {}
    digests: list[str] = []
    first: Mapping[str, Any] | None = None
    prev: tuple[Mapping[str, Any], str] | None = None
    last = {"order_events": -1, "fills": -1}
    for i, (doc, digest) in enumerate(_pairs(reports, report_digests)):
        _check_link(i, doc, prev)
        first = doc if first is None else first
        prev = (doc, digest)
        digests.append(digest)
        for key, k, item in _report_items(i, doc, last):
            path = f"reports[{i}].{key}[{k}]"
            if key == "order_events":
                _event(orders, item, path, digest)
            else:
                _fill(orders, fills, facts, item, path, digest)
    if first is None:
        raise IntakeError(NO_REPORTS, "reports", "a job's intake needs its reports")
    return NormalizedJob(
        job_id=first["job_id"],
        exchange=first["exchange"],
        symbol=first["symbol"],
        orders=_orders_out(orders.placed),
        fills=tuple(fills.values()),
        source_reports=tuple(digests),
    )


def _fill(
    orders: _Orders,
    fills: dict[str, Fill],
    facts: dict[str, tuple[Any, ...]],
    item: Mapping[str, Any],
    path: str,
    report_digest: str,
) -> None:
    trade_id = item["trade_id"]
    if trade_id in facts:
        if facts[trade_id] != _fill_facts(item):
            raise IntakeError(FILL_CONFLICT, f"{path}.trade_id", f"trade {trade_id} was reported otherwise")
        return  # the same trade reported again: one fill, from the report it first appeared in
    order = orders.find(item, path)
    if order is None:
        raise IntakeError(NOT_PLACED, f"{path}.client_order_id", "fills an order the job has not placed")
    amount = Fraction(item["amount"])
    if order.filled + amount > order.amount:
        raise IntakeError(OVERFILLED, f"{path}.amount", f"is more than order {order.order_id} has left")
    order.filled += amount
    # The size drops at the exchange's trade time, on the same clock as the placement and the close; never
    # before the order was live on the exchange.
    order.splits.append((max(item["exchange_ts_ms"], order.placed_ms), amount))
    facts[trade_id] = _fill_facts(item)
    fills[trade_id] = Fill(
        trade_id=trade_id,
        order_id=order.order_id,
        side=order.side,
        price=Fraction(item["price"]),
        amount=amount,
        maker=item["liquidity"] == "maker",
        ts_ms=item["exchange_ts_ms"],
        exchange=None,
        report_digest=report_digest,
    )


def _event(orders: _Orders, item: Mapping[str, Any], path: str, report_digest: str) -> None:
    event = item["event"]
    if event == "placed":
        orders.place(item, path, report_digest)
        return
    order = orders.find(item, path)
    if order is None:
        if event == "rejected":
            return  # refused at creation: it never rested, nothing is kept
        raise IntakeError(NOT_PLACED, f"{path}.client_order_id", f"is {event} but the job has not placed it")
    if event == "filled":
        return  # the executor's echo of one fill; sizes come from the fills, which carry trade ids
    if event in _CLOSING:
        if order.closed_ms is not None:
            raise IntakeError(ALREADY_CLOSED, f"{path}.event", f"order {order.order_id} was closed before")
        closed = _exchange_time(item)
        if closed < order.placed_ms:
            raise IntakeError(
                TIME_BACKWARDS, f"{path}.exchange_ts_ms", f"closes order {order.order_id} before it was placed"
            )
        order.closed_ms = closed


def _orders_out(placed: Sequence[_Tracked]) -> tuple[Order, ...]:
    out: list[Order] = []
    seen: set[str] = set()
    for t in placed:
        if t.order_id in seen:
            raise IntakeError(ORDER_REPEATED, f"{t.path}.exchange_order_id", f"order id {t.order_id} is taken")
        seen.add(t.order_id)
        live = _intervals(t)
        if t.price is None or not live:
            continue  # never rested: no depth; its fills are kept
        out.append(
            Order(
                order_id=t.order_id,
                side=t.side,
                price=t.price,
                amount=t.amount,
                live=live,
                exchange=None,
                report_digest=t.report_digest,
            )
        )
    return tuple(out)


def participant_inputs(jobs: Sequence[NormalizedJob], *, address: str, links: Links) -> Participant:
    """One participant's scoring input from its jobs (one per exchange account, all on the campaign's market):
    orders sorted by (creation, order id), fills by (time, trade id, side); exchange answers still None."""
    if not ADDRESS_RE.fullmatch(address):
        raise IntakeError(BAD_ADDRESS, "address", "must be a lower-case 0x address")
    orders: dict[str, Order] = {}
    fills: dict[tuple[str, str], Fill] = {}
    job_ids: set[str] = set()
    for j, job in enumerate(jobs):
        if job.job_id in job_ids:
            raise IntakeError(JOB_REPEATED, f"jobs[{j}].job_id", f"job {job.job_id} is given twice")
        job_ids.add(job.job_id)
        for key in ("exchange", "symbol"):
            if getattr(job, key) != getattr(jobs[0], key):
                raise IntakeError(MARKET_MISMATCH, f"jobs[{j}].{key}", "is not the market of the other jobs")
        for k, order in enumerate(job.orders):
            if order.order_id in orders:
                raise IntakeError(ORDER_REPEATED, f"jobs[{j}].orders[{k}].order_id", "is an order of another job")
            orders[order.order_id] = order
        for k, f in enumerate(job.fills):
            if (f.trade_id, f.side) in fills:
                raise IntakeError(FILL_REPEATED, f"jobs[{j}].fills[{k}].trade_id", "is a fill of another job")
            fills[(f.trade_id, f.side)] = f
    return Participant(
        address=address,
        orders=tuple(sorted(orders.values(), key=lambda o: (o.created_ms, o.order_id))),
        fills=tuple(sorted(fills.values(), key=lambda f: (f.ts_ms, f.trade_id, f.side))),
        links=links,
    )


def order_as_of(order: Order, end_ms: int) -> Order:
    """The order and the exchange's answer about it as they stood at `end_ms` (the epoch's end): intervals from
    then on dropped, and a close at or after it — in the reports or on the exchange — written as still open. What
    happens after the epoch cannot be scored in it, and a close reported only in a report not yet pulled, or asked
    of the exchange after the epoch, must not make an order of the epoch disagree with the exchange."""
    live = [iv for iv in order.live if iv.live_from_ms < end_ms]
    if not live:
        raise ValueError(f"order {order.order_id} was not live before {end_ms}")
    last = live[-1]
    if last.live_to_ms is not None and last.live_to_ms >= end_ms:
        live[-1] = LiveInterval(live_from_ms=last.live_from_ms, live_to_ms=None, remaining=last.remaining)
    answer = order.exchange
    if answer is not None and answer.closed_ms is not None and answer.closed_ms >= end_ms:
        answer = replace(answer, closed_ms=None)
    return replace(order, live=tuple(live), exchange=answer)
