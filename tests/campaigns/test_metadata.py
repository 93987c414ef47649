"""Campaign metadata v1: the schema, the cross-field rules, the canonical hash, and the templates."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.metadata import MetadataError, canonical, metadata_hash, validate
from campaigns.domain.templates import TEMPLATES, build_metadata

TOKEN = {"address": "0x" + "ab" * 20, "symbol": "USDT", "decimals": 6}
START = 1_800_000_000


def good(template_id: str = "stable_depth", **overrides: object) -> dict:
    m = build_metadata(
        template_id=template_id,
        chain_id=31337,
        reward_token=TOKEN,
        exchange="binance",
        pair="MRM/USDT",
        start=START,
        end=START + 30 * 86_400,
        budget=30_000_000_000,
    )
    m.update(overrides)
    return m


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_every_template_builds_valid_metadata(template_id: str) -> None:
    m = good(template_id)
    validate(m)
    assert m["template"] == template_id
    assert m["scoring"] == TEMPLATES[template_id].scoring


def test_hash_is_sha256_of_the_canonical_form_and_ignores_key_order() -> None:
    m = good()
    shuffled = json.loads(json.dumps(m, sort_keys=True))
    assert metadata_hash(m) == hashlib.sha256(canonical(m)).digest() == metadata_hash(shuffled)
    assert canonical(m).startswith(b'{"budget":"30000000000","chain_id":31337,')
    changed = copy.deepcopy(m)
    changed["scoring"]["max_spread_bps"] = 51
    assert metadata_hash(changed) != metadata_hash(m)


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda m: m["scoring"].update(max_spread_bps=5000), "scoring.max_spread_bps", "greater than the maximum"),
        (lambda m: m.update(pair="mrm-usdt"), "pair", "does not match"),
        (lambda m: m.update(budget="12.5"), "budget", "does not match"),
        (lambda m: m.pop("budget"), "budget", "is a required property"),
        (lambda m: m.update(surprise=1), "surprise", "Additional properties"),
        (lambda m: m["reward_token"].update(address="0x123"), "reward_token.address", "does not match"),
        (lambda m: m.update(template="moon"), "template", "is not one of"),
        (lambda m: m["scoring"].update(depth_weight=0.8), "scoring.depth_weight", "is not of type 'string'"),
        (lambda m: m.update(end=START - 1), "end", "must be after start"),
        (lambda m: m.update(pair="USDT/USDT"), "pair", "base and quote must differ"),
        (lambda m: m["scoring"].update(sample_seconds=7 * 60), "scoring.sample_seconds", "must divide epoch_seconds"),
        (lambda m: m["scoring"].update(depth_weight="3/2"), "scoring.depth_weight", "within 0 and 1"),
        (lambda m: m.update(budget="29"), "budget", "at least one base unit per epoch"),
    ],
)
def test_errors_name_the_field(mutate, field: str, message: str) -> None:
    m = good()
    mutate(m)
    with pytest.raises(MetadataError) as err:
        validate(m)
    assert field in err.value.fields, err.value.fields
    assert message in err.value.fields[field]


def test_all_schema_errors_are_reported_at_once() -> None:
    m = good()
    m["scoring"]["max_spread_bps"] = 0
    m["exchange"] = "Binance!"
    with pytest.raises(MetadataError) as err:
        validate(m)
    assert {"scoring.max_spread_bps", "exchange"} <= set(err.value.fields)


def test_template_edits_stay_within_the_template_bounds() -> None:
    kwargs: dict[str, Any] = {
        "chain_id": 1,
        "reward_token": TOKEN,
        "exchange": "binance",
        "pair": "MRM/USDT",
        "start": START,
        "end": START + 86_400 * 7,
        "budget": 10**9,
    }
    m = build_metadata(template_id="stable_depth", scoring_overrides={"max_spread_bps": 80}, **kwargs)
    assert m["scoring"]["max_spread_bps"] == 80
    with pytest.raises(MetadataError, match=r"scoring.max_spread_bps: must be within \[10, 100\] for Stable depth"):
        build_metadata(template_id="stable_depth", scoring_overrides={"max_spread_bps": 300}, **kwargs)
    with pytest.raises(MetadataError, match=r"scoring\.spread: is not a scoring parameter"):
        build_metadata(template_id="stable_depth", scoring_overrides={"spread": 1}, **kwargs)
    with pytest.raises(MetadataError, match="template: unknown template 'moon'"):
        build_metadata(template_id="moon", **kwargs)


@given(st.sampled_from(sorted(TEMPLATES)), st.integers(1, 365), st.integers(1, 10**30))
def test_valid_inputs_always_hash(template_id: str, days: int, budget: int) -> None:
    epoch = TEMPLATES[template_id].epoch_seconds
    epochs = -(-days * 86_400 // epoch)
    m = build_metadata(
        template_id=template_id,
        chain_id=8453,
        reward_token=TOKEN,
        exchange="okx",
        pair="ABC/USDC",
        start=START,
        end=START + days * 86_400,
        budget=max(budget, epochs),
    )
    assert len(metadata_hash(m)) == 32


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda m: m.update(chain_id=31337.0), "chain_id", "floats are not allowed"),
        (lambda m: m["reward_token"].update(decimals=6.0), "reward_token.decimals", "floats are not allowed"),
        (lambda m: m.update(end=2**53), "end", "integer outside the I-JSON range"),
        (lambda m: m.update(chain_id=2**64), "chain_id", "integer outside the I-JSON range"),
    ],
)
def test_metadata_without_a_canonical_form_is_a_metadata_error(mutate, field: str, message: str) -> None:
    """Found by tests/fuzz/test_parsers.py: the schema's "integer" takes 31337.0 and nothing bounded chain_id, so
    such metadata validated and then had no hash (CanonicalFormError from `canonical`, not a MetadataError)."""
    m = good()
    mutate(m)
    with pytest.raises(MetadataError) as err:
        validate(m)
    assert message in err.value.fields[field]
