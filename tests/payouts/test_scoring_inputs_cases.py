"""The scoring inputs document (payouts/domain/scoring/inputs.py, docs/scoring.md, published artifact 1) on small
hand-built values: the exact path and message of each malformed value, the exact parsed values, the decimal and
ratio strings written back, the sample grids of Params and the books at sample times.

Fast and pure (no database, no Hypothesis): the mutation run (tests/reliability/mutation.py) uses these for
inputs.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from payouts.domain.scoring.inputs import (
    Book,
    EpochInputs,
    OracleInputs,
    Params,
    ScoringInputError,
    Snapshot,
    _books_at,
    decimal_str,
    ratio_str,
)
from tests.payouts.scoring_fixtures import BEFORE, BOOK, STEP, T0, A, B, document, fill, order, params, participant

DIGEST = "ab" * 32
OTHER = "cd" * 32
HASH = "0x" + "ef" * 32
Doc = dict[str, Any]


def problem(doc: Any, reader: Callable[[Any], object] = EpochInputs.from_json) -> tuple[str, str]:
    with pytest.raises(ScoringInputError) as caught:
        reader(doc)
    assert str(caught.value) == f"{caught.value.path}: {caught.value.problem}"
    return caught.value.path, caught.value.problem


def base() -> Doc:
    return document([participant(A, [order("b1", "buy", "99.8", "2")], [fill("t1", "buy", "99.8", "1", maker=True)])])


def published(doc: Doc | None = None) -> Doc:
    """The `mrmarket.oracle-inputs/v1` form of an epoch document."""
    d = base() if doc is None else doc
    p = dict(d["params"])
    out: Doc = {
        "schema": "mrmarket.oracle-inputs/v1",
        "campaign": {"chain_id": 1, "address": B, "metadata_hash": HASH},
        "epoch": {"index": p.pop("epoch_index"), "start_ms": p.pop("epoch_start_ms"), "end_ms": p.pop("epoch_end_ms")},
        "parameters": p,
        "snapshots": d["snapshots"],
        "participants": d["participants"],
        "source_reports": [OTHER, DIGEST],
    }
    if "prior_snapshots" in d:
        out["prior_snapshots"] = d["prior_snapshots"]
    return copy.deepcopy(out)


# --- decimal and ratio strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(0), "0"),
        (Fraction(12), "12"),
        (Fraction(25, 2), "12.5"),
        (Fraction(1, 8), "0.125"),
        (Fraction(3, 1000), "0.003"),
        (Fraction(1, 20), "0.05"),
        (Fraction(1, 5), "0.2"),
        (Fraction(1, 2), "0.5"),
        (Fraction(1000), "1000"),
        (Fraction(100001, 10), "10000.1"),
        (Fraction(1, 1024), "0.0009765625"),
        (Fraction(1, 125), "0.008"),
        (Fraction(7, 40), "0.175"),
        (Fraction(1, 10**40), "0." + "0" * 39 + "1"),  # exact past a float's precision
        (Fraction(7, 5**40), "0.0000000000000000000000000007696581394432"),
    ],
)
def test_decimal_str_writes_the_shortest_exact_decimal(value: Fraction, text: str) -> None:
    assert decimal_str(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 3), "1/3"),
        (Fraction(7, 30), "7/30"),
        (Fraction(1, 11), "1/11"),
        (Fraction(1, 22), "1/22"),
        (Fraction(3, 7), "3/7"),
        (Fraction(1, 33), "1/33"),
        (Fraction(1, 2 * (2**60 + 1)), f"1/{2 * (2**60 + 1)}"),  # a float would round the odd factor to 2^60
        (Fraction(1, 5 * (2**60 + 1)), f"1/{5 * (2**60 + 1)}"),
    ],
)
def test_decimal_str_refuses_a_rational_that_is_not_decimal(value: Fraction, text: str) -> None:
    with pytest.raises(ValueError, match=f"^{text} is not a decimal number$"):
        decimal_str(value)


def test_ratio_str_writes_num_over_den() -> None:
    assert ratio_str(Fraction(4, 5)) == "4/5"
    assert ratio_str(Fraction(0)) == "0/1"


def test_a_scoring_input_error_carries_path_problem_and_message() -> None:
    err = ScoringInputError("inputs.x", "is missing")
    assert (str(err), err.path, err.problem) == ("inputs.x: is missing", "inputs.x", "is missing")
    assert err.code == "scoring_input_invalid"


# --- parsed values -----------------------------------------------------------------------------------------------


def test_the_epoch_document_is_read_to_exact_values() -> None:
    doc = base()
    doc["params"].update(min_order_quote="0.5", depth_weight="0.25", epoch_budget="123456789012345678901234567890")
    doc["participants"][0]["links"] = {"deposit_addresses": ["z", "d", "z"], "withdrawal_addresses": ["w"]}
    doc["snapshots"][2]["book"] = None
    got = EpochInputs.from_json(doc)
    p = got.params
    assert p == Params(
        epoch_index=0,
        epoch_start_ms=T0,
        epoch_end_ms=T0 + 3 * STEP,
        epoch_seconds=180,
        sample_seconds=60,
        max_spread_bps=100,
        min_order_quote=Fraction(1, 2),
        min_rest_seconds=30,
        single_side_divisor=3,
        depth_weight=Fraction(1, 4),
        volatility_weighting=False,
        max_off_mid_trade_bps=200,
        epoch_budget=123456789012345678901234567890,
    )
    assert got.snapshots[0] == Snapshot(
        t_ms=T0,
        book=Book(
            bids=((Fraction("99.95"), Fraction(2)), (Fraction("99.9"), Fraction(10)), (Fraction("99.8"), Fraction(10))),
            asks=(
                (Fraction("100.05"), Fraction(5)),
                (Fraction("100.1"), Fraction(10)),
                (Fraction("100.3"), Fraction(10)),
            ),
        ),
    )
    assert got.snapshots[2] == Snapshot(t_ms=T0 + 2 * STEP, book=None)
    (a,) = got.participants
    (o,) = a.orders
    assert (o.order_id, o.side, o.price, o.amount, o.report_digest) == ("b1", "buy", Fraction("99.8"), 2, None)
    assert [(x.live_from_ms, x.live_to_ms, x.remaining) for x in o.live] == [(BEFORE, None, 2)]
    assert o.exchange is not None
    assert (o.exchange.side, o.exchange.price, o.exchange.amount) == ("buy", Fraction("99.8"), 2)
    assert (o.exchange.created_ms, o.exchange.closed_ms) == (BEFORE, None)
    assert o.confirmed
    (f,) = a.fills
    assert (f.trade_id, f.order_id, f.side, f.price, f.amount, f.maker, f.ts_ms) == (
        "t1", "o-t1", "buy", Fraction("99.8"), 1, True, T0 + 1000,
    )  # fmt: skip
    assert f.exchange is not None
    assert (f.exchange.trade_id, f.exchange.side, f.exchange.price, f.exchange.amount, f.exchange.maker) == (
        "t1", "buy", Fraction("99.8"), 1, True,
    )  # fmt: skip
    assert f.confirmed
    assert f.cents == 9980
    assert (a.links.deposit_addresses, a.links.withdrawal_addresses) == (("d", "z"), ("w",))
    assert got.prior_snapshots == ()


def test_the_epoch_document_writes_back_its_canonical_form() -> None:
    doc = base()
    doc["params"].update(min_order_quote="0.50", depth_weight="0.8", epoch_budget=7)
    doc["participants"][0]["orders"][0]["report_digest"] = DIGEST
    doc["participants"][0]["fills"][0]["report_digest"] = DIGEST
    doc["participants"][0]["orders"][0]["live"] = [
        {"live_from_ms": BEFORE, "live_to_ms": T0, "remaining": "2.0"},
        {"live_from_ms": T0, "live_to_ms": None, "remaining": "1.50"},
    ]
    doc["participants"][0]["orders"][0]["exchange"]["closed_ms"] = None
    doc["snapshots"][1]["book"] = {"bids": [["1.10", "3"]], "asks": []}
    out = EpochInputs.from_json(doc).as_json()
    assert out["params"]["min_order_quote"] == "0.5"
    assert out["params"]["depth_weight"] == "4/5"
    assert out["params"]["epoch_budget"] == "7"
    assert out["snapshots"][1] == {"t_ms": T0 + STEP, "book": {"bids": [["1.1", "3"]], "asks": []}}
    assert out["participants"][0]["orders"][0] == {
        "order_id": "b1",
        "side": "buy",
        "price": "99.8",
        "amount": "2",
        "live": [
            {"live_from_ms": BEFORE, "live_to_ms": T0, "remaining": "2"},
            {"live_from_ms": T0, "live_to_ms": None, "remaining": "1.5"},
        ],
        "exchange": {"side": "buy", "price": "99.8", "amount": "2", "created_ms": BEFORE, "closed_ms": None},
        "report_digest": DIGEST,
    }
    assert out["participants"][0]["fills"][0] == {
        "trade_id": "t1",
        "order_id": "o-t1",
        "side": "buy",
        "price": "99.8",
        "amount": "1",
        "maker": True,
        "ts_ms": T0 + 1000,
        "exchange": {"trade_id": "t1", "side": "buy", "price": "99.8", "amount": "1", "maker": True},
        "report_digest": DIGEST,
    }
    assert "prior_snapshots" not in out
    assert EpochInputs.from_json(out).as_json() == out


def test_the_published_document_reads_and_writes_the_same_epoch() -> None:
    doc = base()
    doc["participants"][0]["orders"][0]["report_digest"] = DIGEST
    pub = published(doc)
    got = OracleInputs.from_json(pub)
    assert got.epoch == EpochInputs.from_json(doc)
    assert (got.campaign.chain_id, got.campaign.address, got.campaign.metadata_hash) == (1, B, HASH)
    assert got.source_reports == (DIGEST, OTHER)
    out = got.as_json()
    assert out == {**pub, "source_reports": [DIGEST, OTHER], "parameters": got.epoch.params.parameters_json()}
    assert out["epoch"] == {"index": 0, "start_ms": T0, "end_ms": T0 + 3 * STEP}
    assert out["parameters"]["epoch_budget"] == "1000"
    assert "epoch_index" not in out["parameters"]
    assert "prior_snapshots" not in out


def test_the_published_document_carries_prior_snapshots() -> None:
    doc = document([], epoch_index=2, prior_books=[BOOK, None])
    got = OracleInputs.from_json(published(doc))
    assert [s.t_ms for s in got.epoch.prior_snapshots] == [T0 - 2 * STEP, T0 - STEP]
    assert got.as_json()["prior_snapshots"] == [
        {"t_ms": T0 - 2 * STEP, "book": BOOK},
        {"t_ms": T0 - STEP, "book": None},
    ]
    assert EpochInputs.from_json(doc).as_json()["prior_snapshots"] == got.as_json()["prior_snapshots"]


def test_participants_are_sorted_by_address_and_snapshots_by_time() -> None:
    doc = document([participant(B), participant(A)])
    doc["snapshots"].reverse()
    got = EpochInputs.from_json(doc)
    assert [p.address for p in got.participants] == [A, B]
    assert [s.t_ms for s in got.snapshots] == [T0, T0 + STEP, T0 + 2 * STEP]


# --- Params: grids and bounds ------------------------------------------------------------------------------------


def grid(**over: Any) -> Params:
    return Params.from_json(params(**over), "p")


def test_sample_times_start_at_the_epoch_start_and_stop_before_its_end() -> None:
    p = grid(epoch_end_ms=T0 + 150_000, sample_seconds=60)
    assert p.sample_ms == 60_000
    assert p.sample_times() == (T0, T0 + 60_000, T0 + 120_000)
    assert grid(epoch_end_ms=T0 + 120_000, epoch_seconds=120).sample_times() == (T0, T0 + 60_000)


def test_prior_sample_times_are_the_tails_of_the_earlier_epochs() -> None:
    assert grid(epoch_index=0).prior_sample_times() == ()
    # epoch 1 of 3 samples: its predecessor's three samples
    assert grid(epoch_index=1).prior_sample_times() == (T0 - 180_000, T0 - 120_000, T0 - 60_000)
    # epoch 5 of 3 samples: ten samples from four earlier epochs, the oldest cut to its last one
    assert grid(epoch_index=5).prior_sample_times() == tuple(T0 - k * 60_000 for k in range(10, 0, -1))
    # epoch 3 of 3 samples: only nine exist
    assert grid(epoch_index=3).prior_sample_times() == tuple(T0 - k * 60_000 for k in range(9, 0, -1))


def test_prior_sample_times_of_a_short_last_epoch_use_the_full_epoch_length() -> None:
    # epochs of 180 s, this one cut to 120 s: the earlier ones are still 180 s long, aligned to the campaign start
    p = grid(epoch_index=1, epoch_end_ms=T0 + 120_000, epoch_seconds=180, sample_seconds=120)
    assert p.prior_sample_times() == (T0 - 180_000, T0 - 60_000)
    # twelve 60 s epochs of one sample each: the window stops at ten
    one = grid(epoch_index=12, epoch_end_ms=T0 + 60_000, epoch_seconds=60)
    assert one.prior_sample_times() == tuple(T0 - k * 60_000 for k in range(10, 0, -1))


def test_an_epoch_as_long_as_epoch_seconds_is_allowed() -> None:
    assert grid(epoch_end_ms=T0 + 180_000, epoch_seconds=180).epoch_end_ms == T0 + 180_000
    assert grid(epoch_end_ms=T0 + 1, epoch_seconds=1, sample_seconds=1).sample_times() == (T0,)


@pytest.mark.parametrize(
    ("over", "path", "message"),
    [
        ({"epoch_end_ms": T0}, "p.epoch_end_ms", "must be after the epoch start"),
        ({"epoch_end_ms": T0 - 1}, "p.epoch_end_ms", "must be after the epoch start"),
        ({"epoch_end_ms": T0 + 180_001}, "p.epoch_end_ms", "the epoch is longer than epoch_seconds"),
        ({"epoch_seconds": 0}, "p.epoch_seconds", "must be at least 1"),
        ({"epoch_start_ms": -1}, "p.epoch_start_ms", "must be at least 0"),
        ({"epoch_start_ms": True}, "p.epoch_start_ms", "must be an integer"),
        ({"epoch_end_ms": "1"}, "p.epoch_end_ms", "must be an integer"),
        ({"epoch_index": -1}, "p.epoch_index", "must be at least 0"),
        ({"epoch_index": 1.0}, "p.epoch_index", "must be an integer"),
        ({"sample_seconds": 0}, "p.sample_seconds", "must be at least 1"),
        ({"max_spread_bps": 0}, "p.max_spread_bps", "must be at least 1"),
        ({"min_order_quote": "-1"}, "p.min_order_quote", 'must be a decimal string such as "12.5"'),
        ({"min_order_quote": 50}, "p.min_order_quote", 'must be a decimal string such as "12.5"'),
        ({"min_rest_seconds": -1}, "p.min_rest_seconds", "must be at least 0"),
        ({"single_side_divisor": 0}, "p.single_side_divisor", "must be at least 1"),
        ({"depth_weight": "1/0"}, "p.depth_weight", "has a zero denominator"),
        ({"depth_weight": "5/4"}, "p.depth_weight", "must be within [0, 1]"),
        ({"depth_weight": "1.01"}, "p.depth_weight", "must be within [0, 1]"),
        ({"depth_weight": "-1/2"}, "p.depth_weight", 'must be a decimal string such as "12.5"'),
        ({"depth_weight": 1}, "p.depth_weight", 'must be a string "num/den" or a decimal'),
        ({"volatility_weighting": 1}, "p.volatility_weighting", "must be true or false"),
        ({"max_off_mid_trade_bps": -1}, "p.max_off_mid_trade_bps", "must be at least 0"),
        ({"epoch_budget": "01"}, "p.epoch_budget", "must be an integer"),
        ({"epoch_budget": "-1"}, "p.epoch_budget", "must be an integer"),
        ({"epoch_budget": -1}, "p.epoch_budget", "must be at least 0"),
        ({"epoch_budget": "1" + "0" * 78}, "p.epoch_budget", "must be an integer"),
        ({"epoch_budget": True}, "p.epoch_budget", "must be an integer"),
    ],
)
def test_a_bad_parameter_names_its_path_and_problem(over: Doc, path: str, message: str) -> None:
    assert problem(params(**over), lambda d: Params.from_json(d, "p")) == (path, message)


@pytest.mark.parametrize(
    ("over", "attr", "value"),
    [
        ({"epoch_start_ms": 0, "epoch_end_ms": 60_000}, "epoch_start_ms", 0),
        ({"min_rest_seconds": 0}, "min_rest_seconds", 0),
        ({"max_off_mid_trade_bps": 0}, "max_off_mid_trade_bps", 0),
        ({"min_order_quote": "0"}, "min_order_quote", 0),
        ({"depth_weight": "0/7"}, "depth_weight", 0),
        ({"depth_weight": "0.0"}, "depth_weight", 0),
        ({"depth_weight": "1"}, "depth_weight", 1),
        ({"depth_weight": "3/3"}, "depth_weight", 1),
        ({"epoch_budget": "0"}, "epoch_budget", 0),
        ({"epoch_budget": "9" * 78}, "epoch_budget", int("9" * 78)),
        ({"epoch_budget": 0}, "epoch_budget", 0),
        ({"single_side_divisor": 1}, "single_side_divisor", 1),
        ({"max_spread_bps": 1}, "max_spread_bps", 1),
        ({"volatility_weighting": True}, "volatility_weighting", True),
    ],
)
def test_a_parameter_at_its_bound_is_read(over: Doc, attr: str, value: object) -> None:
    assert getattr(grid(**over), attr) == value


def test_params_name_a_missing_or_unknown_field() -> None:
    renamed = params()
    renamed["sample_secs"] = renamed.pop("sample_seconds")  # as many keys as the fields, one of them wrong
    assert problem(renamed, lambda d: Params.from_json(d, "p")) == ("p.sample_seconds", "is missing")
    p = params()
    del p["sample_seconds"]
    assert problem(p, lambda d: Params.from_json(d, "p")) == ("p.sample_seconds", "is missing")
    assert problem({**params(), "extra": 1, "zz": 2}, lambda d: Params.from_json(d, "p")) == (
        "p.extra",
        "is not a known field",
    )
    assert problem([], lambda d: Params.from_json(d, "p")) == ("p", "must be an object")


# --- the epoch document: each bad value -------------------------------------------------------------------------

BAD_DECIMAL = 'must be a decimal string such as "12.5"'
P0 = "inputs.participants[0]"


def _set(path: list[Any], value: object) -> Callable[[Doc], None]:
    def apply(d: Doc) -> None:
        target: Any = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


def _add_second_order(d: Doc) -> None:
    d["participants"][0]["orders"].append(copy.deepcopy(d["participants"][0]["orders"][0]))


def _add_second_fill(side: str) -> Callable[[Doc], None]:
    def apply(d: Doc) -> None:
        extra = copy.deepcopy(d["participants"][0]["fills"][0])
        extra.update(side=side, order_id="other")
        d["participants"][0]["fills"].append(extra)

    return apply


def _live(*intervals: tuple[int, int | None]) -> Callable[[Doc], None]:
    return _set(
        ["participants", 0, "orders", 0, "live"],
        [{"live_from_ms": a, "live_to_ms": b, "remaining": "1"} for a, b in intervals],
    )


SNAP = ["snapshots", 0]
BIDS = ["snapshots", 0, "book", "bids"]
ORD = ["participants", 0, "orders", 0]
FIL = ["participants", 0, "fills", 0]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (_set(["participants", 0], []), P0, "must be an object"),
        (lambda d: d["participants"][0].pop("links"), f"{P0}.links", "is missing"),
        (_set(FIL, 3), f"{P0}.fills[0]", "must be an object"),
        (lambda d: d["participants"][0]["fills"][0].pop("maker"), f"{P0}.fills[0].maker", "is missing"),
        (_set(ORD, "o"), f"{P0}.orders[0]", "must be an object"),
        (lambda d: d["participants"][0]["orders"][0].pop("live"), f"{P0}.orders[0].live", "is missing"),
        (lambda d: d["snapshots"][0].pop("book"), "inputs.snapshots[0].book", "is missing"),
        (lambda d: d["snapshots"][0]["book"].pop("asks"), "inputs.snapshots[0].book.asks", "is missing"),
        (
            lambda d: d["participants"][0]["orders"][0]["live"][0].pop("remaining"),
            f"{P0}.orders[0].live[0].remaining",
            "is missing",
        ),
        (
            lambda d: d["participants"][0]["orders"][0]["exchange"].pop("closed_ms"),
            f"{P0}.orders[0].exchange.closed_ms",
            "is missing",
        ),
        (
            lambda d: d["participants"][0]["fills"][0]["exchange"].pop("trade_id"),
            f"{P0}.fills[0].exchange.trade_id",
            "is missing",
        ),
        (
            lambda d: d["participants"][0]["links"].pop("deposit_addresses"),
            f"{P0}.links.deposit_addresses",
            "is missing",
        ),
        (lambda d: d["params"].pop("epoch_budget"), "inputs.params.epoch_budget", "is missing"),
        (_set(["params"], None), "inputs.params", "must be an object"),
        (lambda d: d.update(extra=1), "inputs.extra", "is not a known field"),
        (lambda d: d.pop("participants"), "inputs.participants", "is missing"),
        (_set(["snapshots"], {}), "inputs.snapshots", "must be a list"),
        (_set(["participants"], None), "inputs.participants", "must be a list"),
        (_set(SNAP, []), "inputs.snapshots[0]", "must be an object"),
        (_set([*SNAP, "t_ms"], T0 + 1), "inputs.snapshots[0].t_ms", "is not a sample time of the epoch"),
        (_set([*SNAP, "t_ms"], T0 + 3 * STEP), "inputs.snapshots[0].t_ms", "is not a sample time of the epoch"),
        (_set(["snapshots", 1, "t_ms"], T0), "inputs.snapshots[1].t_ms", "repeats a sample time"),
        (_set([*SNAP, "t_ms"], "x"), "inputs.snapshots[0].t_ms", "must be an integer"),
        (_set([*SNAP, "book"], []), "inputs.snapshots[0].book", "must be an object"),
        (_set([*SNAP, "book", "asks"], "x"), "inputs.snapshots[0].book.asks", "must be a list"),
        (_set([*BIDS, 1], ["1"]), "inputs.snapshots[0].book.bids[1]", "must be a [price, size] pair"),
        (_set([*BIDS, 1], ("1", "2")), "inputs.snapshots[0].book.bids[1]", "must be a [price, size] pair"),
        (_set([*BIDS, 1], ["1", "2", "3"]), "inputs.snapshots[0].book.bids[1]", "must be a [price, size] pair"),
        (_set([*BIDS, 1, 0], "1e2"), "inputs.snapshots[0].book.bids[1][0]", BAD_DECIMAL),
        (_set([*BIDS, 1, 0], "0"), "inputs.snapshots[0].book.bids[1][0]", "must be positive"),
        (_set([*BIDS, 1, 1], "0.0"), "inputs.snapshots[0].book.bids[1][1]", "must be positive"),
        (_set([*BIDS, 2, 0], "99.950"), "inputs.snapshots[0].book.bids[2][0]", "repeats a price of this side"),
        (_set(["participants", 1], participant(A)), "inputs.participants[1].address", "repeats a participant"),
        (_set(["participants", 0, "address"], "0x12"), f"{P0}.address", "must be a lower-case 0x address"),
        (_set(["participants", 0, "address"], 5), f"{P0}.address", "must be a lower-case 0x address"),
        (_set(["participants", 0, "orders"], {}), f"{P0}.orders", "must be a list"),
        (_set(["participants", 0, "fills"], "x"), f"{P0}.fills", "must be a list"),
        (_set(["participants", 0, "links"], []), f"{P0}.links", "must be an object"),
        (
            _set(["participants", 0, "links", "deposit_addresses"], "d"),
            f"{P0}.links.deposit_addresses",
            "must be a list",
        ),
        (
            # As many fields as it should have, none of them the right one.
            _set(["participants", 0, "links"], {"a": [], "b": []}),
            f"{P0}.links.deposit_addresses",
            "is missing",
        ),
        (
            _set(["participants", 0, "links", "withdrawal_addresses"], ["w", ""]),
            f"{P0}.links.withdrawal_addresses[1]",
            "must be a non-empty string of at most 128 characters",
        ),
        (_add_second_order, f"{P0}.orders[1].order_id", "repeats an order id"),
        (_add_second_fill("buy"), f"{P0}.fills[1].trade_id", "repeats a trade id on the same side"),
        (
            _set([*ORD, "order_id"], ""),
            f"{P0}.orders[0].order_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (
            _set([*ORD, "order_id"], "x" * 129),
            f"{P0}.orders[0].order_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (
            _set([*ORD, "order_id"], 7),
            f"{P0}.orders[0].order_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (_set([*ORD, "side"], "BUY"), f"{P0}.orders[0].side", 'must be "buy" or "sell"'),
        (_set([*ORD, "price"], "0"), f"{P0}.orders[0].price", "must be positive"),
        (_set([*ORD, "amount"], "2."), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "amount"], ".5"), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "amount"], "1" * 41), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "amount"], "1." + "1" * 41), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "amount"], " 1"), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "amount"], "1 "), f"{P0}.orders[0].amount", BAD_DECIMAL),
        (_set([*ORD, "live"], []), f"{P0}.orders[0].live", "must list at least one interval"),
        (_set([*ORD, "live"], None), f"{P0}.orders[0].live", "must be a list"),
        (_set([*ORD, "live", 0], 1), f"{P0}.orders[0].live[0]", "must be an object"),
        (_set([*ORD, "live", 0, "live_from_ms"], -1), f"{P0}.orders[0].live[0].live_from_ms", "must be at least 0"),
        (
            _set([*ORD, "live", 0, "live_to_ms"], BEFORE),
            f"{P0}.orders[0].live[0].live_to_ms",
            "must be after live_from_ms",
        ),
        (_set([*ORD, "live", 0, "live_to_ms"], "1"), f"{P0}.orders[0].live[0].live_to_ms", "must be an integer"),
        (_set([*ORD, "live", 0, "remaining"], "0"), f"{P0}.orders[0].live[0].remaining", "must be positive"),
        (_live((0, None), (5, None)), f"{P0}.orders[0].live[1].live_from_ms", "overlaps the previous interval"),
        (_live((0, 10), (9, None)), f"{P0}.orders[0].live[1].live_from_ms", "overlaps the previous interval"),
        (
            _live((0, 10), (10, 20), (15, None)),
            f"{P0}.orders[0].live[2].live_from_ms",
            "overlaps the previous interval",
        ),
        (_set([*ORD, "exchange"], []), f"{P0}.orders[0].exchange", "must be an object"),
        (_set([*ORD, "exchange", "side"], "x"), f"{P0}.orders[0].exchange.side", 'must be "buy" or "sell"'),
        (_set([*ORD, "exchange", "price"], "0"), f"{P0}.orders[0].exchange.price", "must be positive"),
        (_set([*ORD, "exchange", "amount"], 2), f"{P0}.orders[0].exchange.amount", BAD_DECIMAL),
        (_set([*ORD, "exchange", "created_ms"], None), f"{P0}.orders[0].exchange.created_ms", "must be an integer"),
        (_set([*ORD, "exchange", "closed_ms"], -1), f"{P0}.orders[0].exchange.closed_ms", "must be at least 0"),
        (
            _set([*ORD, "report_digest"], "AB" * 32),
            f"{P0}.orders[0].report_digest",
            "must be a SHA-256 digest in lower-case hex (64 characters)",
        ),
        (_set([*ORD, "extra"], 1), f"{P0}.orders[0].extra", "is not a known field"),
        (
            _set([*FIL, "trade_id"], ""),
            f"{P0}.fills[0].trade_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (
            _set([*FIL, "order_id"], None),
            f"{P0}.fills[0].order_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (_set([*FIL, "side"], None), f"{P0}.fills[0].side", 'must be "buy" or "sell"'),
        (_set([*FIL, "price"], "1,5"), f"{P0}.fills[0].price", BAD_DECIMAL),
        (_set([*FIL, "amount"], "0"), f"{P0}.fills[0].amount", "must be positive"),
        (_set([*FIL, "maker"], 0), f"{P0}.fills[0].maker", "must be true or false"),
        (_set([*FIL, "ts_ms"], -5), f"{P0}.fills[0].ts_ms", "must be at least 0"),
        (
            _set([*FIL, "report_digest"], DIGEST[:-1]),
            f"{P0}.fills[0].report_digest",
            "must be a SHA-256 digest in lower-case hex (64 characters)",
        ),
        (_set([*FIL, "exchange"], "x"), f"{P0}.fills[0].exchange", "must be an object"),
        (
            _set([*FIL, "exchange", "trade_id"], "x" * 129),
            f"{P0}.fills[0].exchange.trade_id",
            "must be a non-empty string of at most 128 characters",
        ),
        (_set([*FIL, "exchange", "side"], "sel"), f"{P0}.fills[0].exchange.side", 'must be "buy" or "sell"'),
        (_set([*FIL, "exchange", "price"], "0"), f"{P0}.fills[0].exchange.price", "must be positive"),
        (_set([*FIL, "exchange", "amount"], "-1"), f"{P0}.fills[0].exchange.amount", BAD_DECIMAL),
        (_set([*FIL, "exchange", "maker"], None), f"{P0}.fills[0].exchange.maker", "must be true or false"),
    ],
)
def test_a_bad_value_names_its_path_and_problem(mutate: Callable[[Doc], None], path: str, message: str) -> None:
    doc = base()
    if path.startswith("inputs.participants[1]"):
        doc["participants"].append(participant(B))
    mutate(doc)
    assert problem(doc) == (path, message)


def test_a_document_that_is_not_an_object_is_named_as_the_inputs() -> None:
    assert problem([]) == ("inputs", "must be an object")
    assert problem("x", OracleInputs.from_json) == ("inputs", "must be an object")


def test_an_unanswered_order_or_fill_writes_a_null_exchange() -> None:
    doc = base()
    doc["participants"][0]["orders"][0]["exchange"] = None
    doc["participants"][0]["fills"][0]["exchange"] = None
    out = EpochInputs.from_json(doc).as_json()["participants"][0]
    assert (out["orders"][0]["exchange"], out["fills"][0]["exchange"]) == (None, None)


def test_values_at_their_bounds_are_read() -> None:
    doc = base()
    _set([*ORD, "order_id"], "x" * 128)(doc)
    _add_second_fill("sell")(doc)  # the same trade on the other side is the counterparty's fill, not a copy
    _live((0, 10), (10, None))(doc)
    doc["participants"][0]["orders"][0]["exchange"] = None
    doc["participants"][0]["fills"][0]["exchange"] = None
    _set([*FIL, "ts_ms"], 0)(doc)
    _set([*BIDS, 0], ["0." + "0" * 39 + "1", "1" * 40])(doc)
    got = EpochInputs.from_json(doc)
    (a,) = got.participants
    assert a.orders[0].order_id == "x" * 128
    assert [(x.live_from_ms, x.live_to_ms) for x in a.orders[0].live] == [(0, 10), (10, None)]
    assert a.orders[0].exchange is None
    assert not a.orders[0].confirmed
    assert [f.side for f in a.fills] == ["buy", "sell"]
    assert a.fills[0].exchange is None
    assert not a.fills[0].confirmed
    assert a.fills[0].ts_ms == 0
    assert got.snapshots[0].book is not None
    assert got.snapshots[0].book.bids[0] == (Fraction(1, 10**40), int("1" * 40))


@pytest.mark.parametrize(
    ("field", "value"),
    [("side", "sell"), ("price", "99.9"), ("amount", "3"), ("created_ms", BEFORE + 1), ("closed_ms", T0)],
)
def test_an_order_is_confirmed_only_when_the_exchange_agrees_on_every_field(field: str, value: object) -> None:
    doc = base()
    doc["participants"][0]["orders"][0]["exchange"][field] = value
    assert not EpochInputs.from_json(doc).participants[0].orders[0].confirmed


@pytest.mark.parametrize(
    ("field", "value"), [("trade_id", "t2"), ("side", "sell"), ("price", "99.9"), ("amount", "2"), ("maker", False)]
)
def test_a_fill_is_confirmed_only_when_the_exchange_agrees_on_every_field(field: str, value: object) -> None:
    doc = base()
    doc["participants"][0]["fills"][0]["exchange"][field] = value
    assert not EpochInputs.from_json(doc).participants[0].fills[0].confirmed


def test_a_fill_notional_is_floored_to_cents() -> None:
    doc = base()
    _set([*FIL, "price"], "0.333")(doc)
    _set([*FIL, "amount"], "0.07")(doc)  # 0.02331 → 2 cents
    _set([*FIL, "exchange"], None)(doc)
    assert EpochInputs.from_json(doc).participants[0].fills[0].cents == 2


def test_an_order_knows_its_run_start_and_lifetime() -> None:
    doc = base()
    _live((0, 10), (10, 20), (25, 30), (30, None))(doc)
    o = EpochInputs.from_json(doc).participants[0].orders[0]
    assert (o.created_ms, o.closed_ms) == (0, None)
    assert [o.run_start(i) for i in range(4)] == [0, 0, 25, 25]
    assert [o.live[1].contains(t) for t in (9, 10, 19, 20)] == [False, True, True, False]
    assert [o.live[3].contains(t) for t in (29, 30, 10**15)] == [False, True, True]
    _live((0, 10))(doc)
    assert EpochInputs.from_json(doc).participants[0].orders[0].closed_ms == 10


# --- the published document: each bad value ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (_set(["schema"], "mrmarket.oracle-inputs/v2"), "inputs.schema", 'must be "mrmarket.oracle-inputs/v1"'),
        (lambda d: d.pop("source_reports"), "inputs.source_reports", "is missing"),
        (_set(["campaign"], None), "inputs.campaign", "must be an object"),
        (lambda d: d["campaign"].pop("chain_id"), "inputs.campaign.chain_id", "is missing"),
        (_set(["epoch"], 1), "inputs.epoch", "must be an object"),
        (_set(["parameters"], 1), "inputs.parameters", "must be an object"),
        (lambda d: d["parameters"].pop("depth_weight"), "inputs.parameters.depth_weight", "is missing"),
        (_set(["campaign", "address"], B.upper()), "inputs.campaign.address", "must be a lower-case 0x address"),
        (_set(["campaign", "address"], None), "inputs.campaign.address", "must be a lower-case 0x address"),
        (
            _set(["campaign", "metadata_hash"], "ef" * 32),
            "inputs.campaign.metadata_hash",
            "must be 0x and 32 bytes of lower-case hex",
        ),
        (
            _set(["campaign", "metadata_hash"], 1),
            "inputs.campaign.metadata_hash",
            "must be 0x and 32 bytes of lower-case hex",
        ),
        (_set(["campaign", "chain_id"], 0), "inputs.campaign.chain_id", "must be at least 1"),
        (_set(["epoch", "end_ms"], T0), "inputs.epoch.end_ms", "must be after the epoch start"),
        (_set(["epoch", "index"], -1), "inputs.epoch.index", "must be at least 0"),
        (_set(["epoch", "start_ms"], None), "inputs.epoch.start_ms", "must be an integer"),
        (lambda d: d["epoch"].pop("index"), "inputs.epoch.index", "is missing"),
        (lambda d: d["epoch"].update(epoch_index=0), "inputs.epoch.epoch_index", "is not a known field"),
        (lambda d: d["parameters"].update(epoch_index=0), "inputs.parameters.epoch_index", "is not a known field"),
        (_set(["parameters", "sample_seconds"], 0), "inputs.parameters.sample_seconds", "must be at least 1"),
        (_set(["parameters", "epoch_seconds"], 179), "inputs.epoch.end_ms", "the epoch is longer than epoch_seconds"),
        (_set(["source_reports"], {}), "inputs.source_reports", "must be a list"),
        (
            _set(["source_reports", 1], "x"),
            "inputs.source_reports[1]",
            "must be a SHA-256 digest in lower-case hex (64 characters)",
        ),
        (_set(["source_reports", 1], OTHER), "inputs.source_reports[1]", "repeats a report digest"),
        (_set([*FIL, "report_digest"], "12" * 32), f"{P0}.fills[0].report_digest", "is not among source_reports"),
        (_set([*ORD, "report_digest"], "12" * 32), f"{P0}.orders[0].report_digest", "is not among source_reports"),
    ],
)
def test_a_bad_published_value_names_its_path_and_problem(
    mutate: Callable[[Doc], None], path: str, message: str
) -> None:
    doc = published()
    mutate(doc)
    assert problem(doc, OracleInputs.from_json) == (path, message)


def test_an_unknown_report_digest_is_named_at_its_place_in_the_document() -> None:
    doc = published(document([participant(B), participant(A, [order("o", "buy", "99.8", "1")])]))
    doc["participants"][1]["orders"][0]["report_digest"] = "12" * 32
    assert problem(doc, OracleInputs.from_json) == (
        "inputs.participants[1].orders[0].report_digest",
        "is not among source_reports",
    )


# --- prior snapshots ---------------------------------------------------------------------------------------------


def test_prior_snapshots_must_be_at_the_sample_times_before_the_epoch() -> None:
    doc = document([], epoch_index=1, prior_books=[BOOK])
    doc["prior_snapshots"][0]["t_ms"] = T0
    assert problem(doc) == (
        "inputs.prior_snapshots[0].t_ms",
        "is not one of the 10 sample times before the epoch",
    )
    doc = document([], prior_books=[BOOK])  # epoch 0 has no sample time before it
    assert problem(doc)[0] == "inputs.prior_snapshots[0].t_ms"
    doc = document([], epoch_index=1, prior_books=[BOOK, BOOK])
    doc["prior_snapshots"][1]["t_ms"] = doc["prior_snapshots"][0]["t_ms"]
    assert problem(doc) == ("inputs.prior_snapshots[1].t_ms", "repeats a sample time")
    doc = document([], epoch_index=1)
    doc["prior_snapshots"] = None
    assert EpochInputs.from_json(doc).prior_snapshots == ()
    assert EpochInputs.from_parts(grid(epoch_index=1), [], []).prior_snapshots == ()


# --- books at sample times ---------------------------------------------------------------------------------------


def test_books_at_sample_times_are_none_for_a_gap_a_missing_snapshot_or_an_empty_side() -> None:
    one_sided = {"bids": [["99", "1"]], "asks": []}
    no_bids = {"bids": [], "asks": [["101", "1"]]}
    doc = document([], books=[BOOK, None, one_sided, no_bids, BOOK], epoch_index=1, prior_books=[None, BOOK])
    del doc["snapshots"][4]
    got = EpochInputs.from_json(doc)
    books = got.books()
    assert [b is None for b in books] == [False, True, True, True, True]
    assert books[0] == got.snapshots[0].book
    prior = got.prior_books()
    assert len(prior) == 5  # the five sample times of epoch 0
    assert [b is None for b in prior] == [True, True, True, True, False]
    assert prior[4] == got.prior_snapshots[1].book


def test_books_at_picks_each_time_and_keeps_the_order_of_the_times() -> None:
    x = Book(bids=((Fraction(99), Fraction(1)),), asks=((Fraction(101), Fraction(1)),))
    y = Book(bids=((Fraction(98), Fraction(1)),), asks=((Fraction(100), Fraction(1)),))
    snaps = [Snapshot(10, x), Snapshot(20, y), Snapshot(30, None)]
    assert _books_at(snaps, [20, 10, 30, 40, 20]) == [y, x, None, None, y]
    assert _books_at([], []) == []


def test_a_book_mid_and_sizes() -> None:
    book = Book.from_json(BOOK, "b")
    assert book.mid == 100
    assert Book.from_json({"bids": [["1", "1"], ["3", "1"]], "asks": [["6", "1"], ["5", "2"]]}, "b").mid == 4
    assert book.size_at("buy", Fraction("99.9")) == 10
    assert book.size_at("buy", Fraction("99.95")) == 2
    assert book.size_at("sell", Fraction("100.05")) == 5
    assert book.size_at("buy", Fraction("100.05")) is None
    assert book.size_at("sell", Fraction("99.95")) is None
    assert book.as_json() == BOOK
