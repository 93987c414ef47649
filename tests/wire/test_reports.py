from __future__ import annotations

import copy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wire.builders import DELETE, KEY, OTHER_KEY, SPEC_DIGEST, WINDOW_MS, chain, mutated, report
from wire.errors import ChainError, DigestMismatch, SchemaError, SignatureError, TooLarge
from wire.reports import (
    MAX_FILLS,
    MAX_ORDER_EVENTS,
    SignedReport,
    empty_metrics,
    report_bytes,
    sign_report,
    verify_chain,
    verify_report,
)


def test_a_signed_report_verifies_and_round_trips() -> None:
    (signed,) = chain(1)
    verify_report(signed, signing_key=KEY.public_hex)
    again = SignedReport.from_json(signed.as_json())
    assert again == signed
    assert report_bytes(signed).startswith(b'{"digest":')


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("schema", "mrmarket.report/v0", "report.schema: must be one of"),
        ("sequence", -1, "report.sequence: must be ≥ 0"),
        ("fills.0.price", 0.995, "report.fills[0].price: must be a decimal string"),
        ("fills.0.price", "1e3", "report.fills[0].price: must be a decimal string"),
        ("fills.0.amount", "0", "report.fills[0].amount: must be > 0"),
        ("fills.0.liquidity", "both", "report.fills[0].liquidity: must be one of maker, taker"),
        ("fills.0.trade_id", DELETE, "report.fills[0]: missing trade_id"),
        ("metrics.extra", 1, "report.metrics: unknown extra"),
        ("book_samples.0.resting.0.side", "long", "report.book_samples[0].resting[0].side"),
        ("executor.measurement", "ab", "report.executor.measurement: does not match"),
        ("window_end_ms", 1_700_000_000_000, "window_end_ms must be after window_start_ms"),
        ("fills.0.ts_ms", 1_800_000_000_000, "report.fills[0].ts_ms: timestamp outside the report window"),
        ("order_events.0.exchange_ts_ms", "1700000000000", "report.order_events[0].exchange_ts_ms: must be an integer"),
        ("order_events.0.exchange_ts_ms", 1.5, "report.order_events[0].exchange_ts_ms: must be an integer"),
        ("order_events.0.exchange_ts_ms", True, "report.order_events[0].exchange_ts_ms: must be an integer"),
        ("order_events.0.exchange_ts_ms", -1, "report.order_events[0].exchange_ts_ms: must be ≥ 0"),
        ("order_events.0.exchange_ts_ms", DELETE, "report.order_events[0]: missing exchange_ts_ms"),
        ("prev_digest", "cd" * 32, "prev_digest is null exactly for sequence 0"),
        ("symbol", "mrm-usdt", "report.symbol: does not match"),
    ],
)
def test_schema_errors_name_the_field(path: str, value: object, where: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(where)):
        sign_report(mutated(report(), path, value), KEY)


def test_duplicate_trade_ids_are_refused() -> None:
    doc = report()
    doc["fills"].append(dict(doc["fills"][0], ts_ms=doc["fills"][0]["ts_ms"] + 1))
    with pytest.raises(SchemaError, match="a trade id appears twice"):
        sign_report(doc, KEY)


def test_a_report_signed_by_another_key_is_refused() -> None:
    forged = sign_report(report(key=OTHER_KEY), OTHER_KEY)
    with pytest.raises(SignatureError, match="another signing key than the attested one"):
        verify_report(forged, signing_key=KEY.public_hex)
    (genuine,) = chain(1)
    swapped = SignedReport(report=genuine.report, digest=genuine.digest, signature=forged.signature)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_report(swapped, signing_key=KEY.public_hex)


def test_an_edited_report_no_longer_matches_its_digest() -> None:
    (signed,) = chain(1)
    edited = SignedReport(
        report=mutated(signed.report, "fills.0.amount", "2550"), digest=signed.digest, signature=signed.signature
    )
    with pytest.raises(DigestMismatch):
        verify_report(edited, signing_key=KEY.public_hex)


def test_a_whole_chain_verifies_and_continues_from_a_checkpoint() -> None:
    reports = chain(5)
    assert verify_chain(reports, signing_key=KEY.public_hex, job_spec_digest=SPEC_DIGEST) == reports
    assert verify_chain(reports[3:], signing_key=KEY.public_hex, after=reports[2]) == reports[3:]


def test_chain_breaks_are_each_named() -> None:
    r = chain(4)
    key = KEY.public_hex
    with pytest.raises(ChainError, match="gap: sequence 2 follows 0"):
        verify_chain([r[0], r[2]], signing_key=key)
    with pytest.raises(ChainError, match="starts at sequence 1"):
        verify_chain(r[1:], signing_key=key)
    with pytest.raises(ChainError, match="gap: sequence 1 follows 2"):
        verify_chain([r[2], r[1]], signing_key=key, after=r[1])
    relinked = sign_report(report(1, prev_digest="ee" * 32), KEY)
    with pytest.raises(ChainError, match="does not link to the digest of report 0"):
        verify_chain([r[0], relinked], signing_key=key)
    other_job = sign_report(report(1, prev_digest=r[0].digest, job_id="job-2"), KEY)
    with pytest.raises(ChainError, match="belongs to job job-2"):
        verify_chain([r[0], other_job], signing_key=key)
    with pytest.raises(ChainError, match="another job spec"):
        verify_chain(r, signing_key=key, job_spec_digest="00" * 32)


def shifted(doc: dict, by_ms: int) -> dict:
    """The same report moved in time, every timestamp with it (so it stays valid on its own)."""
    doc = copy.deepcopy(doc)
    doc["window_start_ms"] += by_ms
    doc["window_end_ms"] += by_ms
    for item in doc["order_events"] + doc["fills"] + doc["book_samples"]:
        item["ts_ms"] += by_ms
        if "exchange_ts_ms" in item:
            item["exchange_ts_ms"] += by_ms
    return doc


@pytest.mark.parametrize(("by_ms", "what"), [(1, "a gap"), (-1, "an overlap"), (WINDOW_MS, "a skipped window")])
def test_a_window_that_does_not_start_where_the_previous_ended_breaks_the_chain(by_ms: int, what: str) -> None:
    first = chain(1)[0]
    moved = shifted(report(1, prev_digest=first.digest), by_ms)
    second = sign_report(moved, KEY)
    verify_report(second, signing_key=KEY.public_hex)  # valid alone: only its place in the chain is wrong
    with pytest.raises(ChainError, match="report 1's window does not start where 0's ended"):
        verify_chain([first, second], signing_key=KEY.public_hex)
    with pytest.raises(ChainError, match="window does not start"):
        verify_chain([second], signing_key=KEY.public_hex, after=first)


def test_envelope_shape_is_checked() -> None:
    with pytest.raises(SchemaError, match="exactly report, digest and signature"):
        SignedReport.from_json({"report": {}, "digest": "00" * 32})
    with pytest.raises(SchemaError, match=r"envelope\.signature"):
        SignedReport.from_json({"report": {}, "digest": "00" * 32, "signature": "xyz"})


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.data())
def test_removing_or_swapping_any_report_breaks_the_chain(n: int, data) -> None:
    reports = chain(n + 1)
    i = data.draw(st.integers(min_value=0, max_value=n))
    without = reports[:i] + reports[i + 1 :]
    if i == n:  # dropping the last report leaves a valid (shorter) chain
        assert verify_chain(without, signing_key=KEY.public_hex) == without
    else:
        with pytest.raises(ChainError):
            verify_chain(without, signing_key=KEY.public_hex)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("fills.0.amount", "1" + "0" * 64, "report.fills[0].amount: longer than 64 characters"),
        ("fills.0.price", "0." + "0" * 62 + "1", "report.fills[0].price: longer than 64 characters"),
        ("metrics.pnl.realized", "-" + "9" * 64, "report.metrics.pnl.realized: longer than 64 characters"),
        ("fills.0.fee_asset", "B" * 300, "report.fills[0].fee_asset: longer than 256 characters"),
        ("metrics.inventory", {f"A{i}": "1" for i in range(65)}, "report.metrics.inventory: more than 64 entries"),
    ],
)
def test_over_long_values_are_refused_as_too_large(path: str, value: object, where: str) -> None:
    with pytest.raises(TooLarge, match=re.escape(where)) as err:
        sign_report(mutated(report(), path, value), KEY)
    assert err.value.code == "too_large"


def test_a_decimal_at_the_cap_is_accepted() -> None:
    sign_report(mutated(report(), "fills.0.amount", "1" * 60 + ".125"), KEY)


@pytest.mark.parametrize(("key", "cap"), [("fills", MAX_FILLS), ("order_events", MAX_ORDER_EVENTS)])
def test_too_many_fills_or_events_are_refused_as_too_large(key: str, cap: int) -> None:
    doc = report()
    doc[key] = [dict(doc[key][0], ts_ms=doc[key][0]["ts_ms"], trade_id=f"t{i}") for i in range(cap)]
    if key == "order_events":
        for item in doc[key]:
            del item["trade_id"]
    sign_report(doc, KEY)  # at the cap: fine
    doc[key].append(doc[key][-1])
    with pytest.raises(TooLarge, match=re.escape(f"report.{key}: more than {cap} items")):
        sign_report(doc, KEY)


def test_an_order_event_without_the_exchange_time_carries_null() -> None:
    # The exchange did not say when: null, never a made-up time and never a missing key.
    doc = mutated(report(), "order_events.0.exchange_ts_ms", None)
    assert sign_report(doc, KEY).report["order_events"][0]["exchange_ts_ms"] is None


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda e: e.pop("signature"), "envelope", "an envelope has exactly report, digest and signature"),
        (lambda e: e.update(extra=1), "envelope", "an envelope has exactly report, digest and signature"),
        (lambda e: e.update(digest="AB" * 32), "envelope.digest", "must be 32 bytes of lower-case hex"),
        (lambda e: e.update(signature="ab" * 32), "envelope.signature", "must be 64 bytes of lower-case hex"),
    ],
)
def test_a_malformed_envelope_is_refused_naming_the_field(change, path: str, message: str) -> None:
    (signed,) = chain(1)
    envelope = copy.deepcopy(signed.as_json())
    change(envelope)
    with pytest.raises(SchemaError) as refused:
        SignedReport.from_json(envelope)
    assert (refused.value.path, refused.value.message) == (path, message)
    assert SignedReport.from_json(signed.as_json()) == signed


def test_the_refusals_of_one_report_name_the_field_and_both_digests() -> None:
    forged = sign_report(report(key=OTHER_KEY), OTHER_KEY)
    with pytest.raises(SignatureError) as other_key:
        verify_report(forged, signing_key=KEY.public_hex)
    assert other_key.value.path == "report.executor.signing_key"
    assert other_key.value.message == "report names another signing key than the attested one"
    (signed,) = chain(1)
    edited = mutated(signed.report, "fills.0.amount", "2550")
    with pytest.raises(DigestMismatch) as mismatch:
        verify_report(SignedReport(edited, signed.digest, signed.signature), signing_key=KEY.public_hex)
    assert str(mismatch.value) == (
        f"digest {signed.digest} does not match the report's canonical form ({sign_report(edited, KEY).digest})"
    )


def _with_fill_before_the_first(doc: dict) -> dict:
    doc["fills"].append(dict(doc["fills"][0], trade_id="t-earlier", ts_ms=doc["fills"][0]["ts_ms"] - 1))
    return doc


def _with_repeated_trade_id(doc: dict) -> dict:
    doc["fills"].append(dict(doc["fills"][0], ts_ms=doc["fills"][0]["ts_ms"] + 1))
    return doc


@pytest.mark.parametrize(
    ("build", "path", "message"),
    [
        (
            lambda: mutated(report(), "window_end_ms", 1_700_000_000_000),
            "report.window_end_ms",
            "window_end_ms must be after window_start_ms",
        ),
        (
            lambda: mutated(report(), "prev_digest", "cd" * 32),
            "report.prev_digest",
            "prev_digest is null exactly for sequence 0",
        ),
        (
            # The window is [start, end): a fill at the end belongs to the next report.
            lambda: mutated(report(), "fills.0.ts_ms", 1_700_000_010_000),
            "report.fills[0].ts_ms",
            "timestamp outside the report window",
        ),
        (lambda: _with_fill_before_the_first(report()), "report.fills[1].ts_ms", "timestamps must not go backwards"),
        (lambda: _with_repeated_trade_id(report()), "report.fills", "a trade id appears twice"),
    ],
)
def test_the_rules_beyond_the_schema_name_their_field_exactly(build, path: str, message: str) -> None:
    with pytest.raises(SchemaError) as refused:
        sign_report(build(), KEY)
    assert (refused.value.path, refused.value.message) == (path, message)


def test_the_last_millisecond_of_the_window_is_inside_it() -> None:
    signed = sign_report(mutated(report(), "fills.0.ts_ms", 1_700_000_009_999), KEY)
    verify_report(signed, signing_key=KEY.public_hex)


def test_a_report_is_signed_only_by_the_key_it_names() -> None:
    with pytest.raises(SchemaError) as refused:
        sign_report(report(key=OTHER_KEY), KEY)
    assert (refused.value.path, refused.value.message) == (
        "report.executor",
        "executor.signing_key is not the key signing the report",
    )


def test_the_metrics_of_a_report_with_nothing_in_it_are_all_zero() -> None:
    assert empty_metrics() == {
        "uptime_ms": 0,
        "two_sided_ms": 0,
        "depth_quote": {"1pct": "0", "2pct": "0", "5pct": "0"},
        "spread_bps": None,
        "inventory": {},
        "pnl": {"realized": "0", "unrealized": "0", "fees": "0"},
    }
