"""The recorder's pure rules: sample-time alignment, level trimming, staleness, exact level text, sharding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.recorder import (
    LevelError,
    decimal_text,
    is_stale,
    sample_time_at_or_after,
    sample_times,
    shard_of,
    stored_book,
    trim_book,
)

starts = st.integers(min_value=0, max_value=2**45)
periods = st.integers(min_value=1, max_value=3_600_000)


@given(start=starts, sample=periods, offset=st.integers(min_value=-(10**9), max_value=10**10))
def test_the_next_sample_time_is_the_first_aligned_one_not_before_now(start: int, sample: int, offset: int) -> None:
    now = start + offset
    t = sample_time_at_or_after(start_ms=start, sample_ms=sample, now_ms=now)
    assert (t - start) % sample == 0
    assert t >= start
    assert t >= now
    assert t == start or t - sample < now  # none is skipped


def test_alignment_is_to_the_campaign_start_not_the_clock() -> None:
    assert sample_time_at_or_after(start_ms=1_300, sample_ms=1_000, now_ms=5_000) == 5_300
    assert sample_time_at_or_after(start_ms=1_300, sample_ms=1_000, now_ms=5_300) == 5_300
    assert sample_time_at_or_after(start_ms=1_300, sample_ms=1_000, now_ms=5_301) == 6_300
    assert sample_time_at_or_after(start_ms=1_300, sample_ms=1_000, now_ms=0) == 1_300
    with pytest.raises(ValueError, match="positive"):
        sample_time_at_or_after(start_ms=0, sample_ms=0, now_ms=0)


@given(start=starts, sample=periods, a=st.integers(0, 10**8), n=st.integers(0, 100), jitter=st.integers(0, 10**7))
def test_sample_times_are_every_aligned_time_in_the_window(
    start: int, sample: int, a: int, n: int, jitter: int
) -> None:
    span = n * sample + jitter % sample
    times = sample_times(start_ms=start, sample_ms=sample, from_ms=start + a, until_ms=start + a + span)
    assert all(start + a <= t < start + a + span and (t - start) % sample == 0 for t in times)
    assert len(times) == len(range(-(-a // sample) * sample, a + span, sample))


def test_staleness_is_the_distance_from_the_sample_time_either_way() -> None:
    assert not is_stale(book_ms=10_000, t_ms=12_000, tolerance_ms=2_000)
    assert is_stale(book_ms=9_999, t_ms=12_000, tolerance_ms=2_000)
    assert not is_stale(book_ms=14_000, t_ms=12_000, tolerance_ms=2_000)
    assert is_stale(book_ms=14_001, t_ms=12_000, tolerance_ms=2_000)
    assert is_stale(book_ms=None, t_ms=12_000, tolerance_ms=2_000)


@given(
    digits=st.integers(min_value=1, max_value=10**15 - 1),
    places=st.integers(min_value=0, max_value=12),
)
def test_a_float_level_reads_back_as_the_exchanges_decimal(digits: int, places: int) -> None:
    exact = Decimal(digits).scaleb(-places)
    assert Decimal(decimal_text(float(exact))) == exact
    assert decimal_text(str(exact)) == decimal_text(float(exact))


@pytest.mark.parametrize(
    "bad", [float("inf"), float("nan"), -1.0, True, "abc", 0.1 + 0.2, 1 / 3], ids=lambda v: repr(v)
)
def test_a_level_that_is_not_an_exact_non_negative_decimal_is_refused(bad: object) -> None:
    with pytest.raises(LevelError):
        decimal_text(bad)  # type: ignore[arg-type]


def test_level_text_has_no_exponent_and_no_trailing_zeros() -> None:
    assert decimal_text(1e-05) == "0.00001"
    assert decimal_text("0.50000000") == "0.5"
    assert decimal_text(2000.0) == "2000"
    assert decimal_text(3) == "3"


prices = st.integers(min_value=1, max_value=20_000).map(lambda n: n / 10_000)
sizes = st.integers(min_value=0, max_value=10**6).map(lambda n: n / 10)
sides = st.lists(st.tuples(prices, sizes), max_size=30, unique_by=lambda lv: lv[0])


@given(bids=sides, asks=sides, spread=st.integers(5, 1000), margin=st.integers(0, 200))
def test_trimming_keeps_exactly_the_levels_in_the_band_best_first(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], spread: int, margin: int
) -> None:
    out = trim_book(bids=bids, asks=asks, max_spread_bps=spread, margin_bps=margin)
    live_bids = [(Fraction(decimal_text(p)), s) for p, s in bids if s > 0]
    live_asks = [(Fraction(decimal_text(p)), s) for p, s in asks if s > 0]
    if not live_bids or not live_asks:
        assert out.mid is None
        assert out.bids == ()
        assert out.asks == ()
        return
    mid = (max(p for p, _ in live_bids) + min(p for p, _ in live_asks)) / 2
    assert out.mid == mid
    band = mid * Fraction(spread + margin, 10_000)
    kept_bids = [Fraction(p) for p, _ in out.bids]
    kept_asks = [Fraction(p) for p, _ in out.asks]
    assert kept_bids == sorted((p for p, _ in live_bids if mid - p <= band), reverse=True)
    assert kept_asks == sorted(p for p, _ in live_asks if p - mid <= band)
    for p, s in out.bids + out.asks:
        assert Fraction(s) > 0
        assert decimal_text(p) == p
        assert decimal_text(s) == s


def test_a_trimmed_book_reads_back_as_the_engines_book() -> None:
    out = trim_book(
        bids=[[0.4999, 10.0], [0.49, 5.0], [0.45, 1.0]],
        asks=[[0.5001, 3.5], [0.51, 2.0], [0.6, 9.0]],
        max_spread_bps=150,
        margin_bps=50,
    )
    assert out.as_json() == {"bids": [["0.4999", "10"], ["0.49", "5"]], "asks": [["0.5001", "3.5"], ["0.51", "2"]]}
    book = stored_book(out.as_json())
    assert book.bids[0] == (Fraction(4999, 10_000), Fraction(10))
    assert book.mid == Fraction(1, 2)


def test_a_level_with_a_zero_price_is_refused() -> None:
    with pytest.raises(LevelError, match="positive"):
        trim_book(bids=[[0.0, 1.0]], asks=[[1.0, 1.0]], max_spread_bps=10, margin_bps=0)


addresses = st.integers(min_value=0, max_value=2**160 - 1).map(lambda n: f"0x{n:040x}")


@given(chain_id=st.integers(1, 2**32), address=addresses, shards=st.integers(1, 64))
def test_a_campaign_has_exactly_one_shard_whatever_the_address_case(chain_id: int, address: str, shards: int) -> None:
    k = shard_of(chain_id=chain_id, address=address, shards=shards)
    assert 0 <= k < shards
    assert shard_of(chain_id=chain_id, address=address.upper().replace("0X", "0x"), shards=shards) == k
    assert shard_of(chain_id=chain_id, address=address, shards=1) == 0


def test_the_shard_hash_is_stable_across_processes() -> None:
    # sha256("31337:0x00000000000000000000000000000000000000aa"), first 8 bytes: fixed, unlike Python's hash().
    assert [shard_of(chain_id=31337, address="0x" + "0" * 38 + "aa", shards=n) for n in (2, 3, 7)] == [
        shard_of(chain_id=31337, address="0x" + "0" * 38 + "AA", shards=n) for n in (2, 3, 7)
    ]
    with pytest.raises(ValueError, match="at least 1"):
        shard_of(chain_id=1, address="0x" + "0" * 40, shards=0)
