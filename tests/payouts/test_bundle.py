"""The published inputs document (`mrmarket.oracle-inputs/v1`) and the results bundle (`mrmarket.results-bundle/v1`):
what each holds, their JSON Schemas against the fixtures and each malformed case, and the bundle's canonical bytes."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given

from payouts.audit.schemas import SchemaViolation, validate_bundle, validate_inputs
from payouts.domain.bundle import BUNDLE_SCHEMA, Software, bundle_bytes, bundle_digest, results_bundle
from payouts.domain.scoring.engine import score_epoch
from payouts.domain.scoring.inputs import EpochInputs, OracleInputs, ScoringInputError
from tests.payouts.bundle_fixtures import CAMPAIGN, REPORTS, envelope, rich_document
from tests.payouts.scoring_fixtures import BOOK, STEP, T0, A, B, C, document, fill, mid_book, order, participant
from tests.payouts.test_scoring_properties import FAST, epochs
from wire.canonical import canonical_bytes, digest
from wire.errors import CanonicalFormError

SOFTWARE = Software(version="0.1.0", commit="ab" * 20)
Mutation = Callable[[dict[str, Any]], object]


def worked_example() -> dict[str, Any]:
    """The reward model's worked example in one sample (A two-sided, B over-claiming, C a maker fill)."""
    return envelope(
        document(
            [
                participant(A, [order("a-b", "buy", "99.80", "2"), order("a-a", "sell", "100.30", "1")]),
                participant(B, [order("b-b", "buy", "99.95", "3")]),
                participant(C, [], [fill("c1", "buy", "100.00", "1.5", maker=True)]),
            ],
            books=[BOOK],
        )
    )


# --- the inputs document ---------------------------------------------------------------------------------------


def test_the_inputs_document_wraps_the_epoch_the_engine_scores() -> None:
    doc = rich_document()
    parsed = OracleInputs.from_json(doc)
    bare = {
        "params": {**doc["parameters"], **{f"epoch_{k}": v for k, v in doc["epoch"].items()}},
        "snapshots": doc["snapshots"],
        "participants": doc["participants"],
    }
    assert parsed.epoch == EpochInputs.from_json(bare)
    assert parsed.campaign.as_json() == CAMPAIGN
    assert parsed.source_reports == tuple(sorted(REPORTS))
    by_address = {p.address: p for p in parsed.epoch.participants}
    assert by_address[B].orders[0].report_digest == REPORTS[0]
    assert by_address[B].orders[1].report_digest is None
    assert by_address[B].fills[0].report_digest == REPORTS[1]


def test_the_inputs_document_round_trips_in_its_written_form() -> None:
    parsed = OracleInputs.from_json(rich_document())
    written = parsed.as_json()
    assert OracleInputs.from_json(written) == parsed
    assert written["parameters"]["depth_weight"] == "4/5"
    assert written["participants"][1]["orders"][0]["report_digest"] == REPORTS[0]
    assert "report_digest" not in written["participants"][1]["orders"][1]
    validate_inputs(written)
    canonical_bytes(written)


def test_the_schema_accepts_the_fixtures_documents() -> None:
    for doc in (rich_document(), worked_example(), envelope(document([]), source_reports=[])):
        validate_inputs(doc)
        OracleInputs.from_json(doc)


def test_the_published_form_carries_the_prior_snapshots_to_the_same_scores() -> None:
    # A later epoch: the moves reach back into the previous epoch's last samples (docs/scoring.md).
    honest = participant(A, orders=[order("b1", "buy", "99.80", "2"), order("a1", "sell", "100.20", "2")])
    bare = document([honest], prior_books=[mid_book("98.9", "99.1")], epoch_index=1)
    doc = envelope(bare, source_reports=[])
    validate_inputs(doc)
    published = OracleInputs.from_json(doc)
    assert published.epoch == EpochInputs.from_json(bare)
    assert len(published.epoch.prior_snapshots) == 1
    assert published.as_json()["prior_snapshots"] == bare["prior_snapshots"]
    assert score_epoch(published.epoch) == score_epoch(EpochInputs.from_json(bare))
    doc["prior_snapshots"][0]["t_ms"] += 1  # not a sample time of the previous epoch: refused
    with pytest.raises(ScoringInputError) as caught:
        OracleInputs.from_json(doc)
    assert caught.value.path == "inputs.prior_snapshots[0].t_ms"


@FAST
@given(epochs())
def test_the_schema_accepts_every_generated_epoch_and_the_engine_scores_it(bare: dict[str, Any]) -> None:
    doc = envelope(bare)
    validate_inputs(doc)
    validate_bundle(results_bundle(doc, software=SOFTWARE))


MALFORMED: list[tuple[Mutation, str]] = [
    (lambda d: d.update(schema="mrmarket.oracle-inputs/v2"), "inputs.schema"),
    (lambda d: d.update(params={}), "inputs.params"),
    (lambda d: d.pop("source_reports"), "inputs.source_reports"),
    (lambda d: d["campaign"].pop("metadata_hash"), "inputs.campaign.metadata_hash"),
    (lambda d: d["campaign"].update(metadata_hash="11" * 32), "inputs.campaign.metadata_hash"),
    (lambda d: d["campaign"].update(address="0x" + "C0" * 20), "inputs.campaign.address"),
    (lambda d: d["campaign"].update(chain_id=0), "inputs.campaign.chain_id"),
    (lambda d: d["epoch"].update(start_ms=str(T0)), "inputs.epoch.start_ms"),
    (lambda d: d["epoch"].update(end_ms=2**53), "inputs.epoch.end_ms"),
    (lambda d: d["parameters"].update(epoch_index=0), "inputs.parameters.epoch_index"),
    (lambda d: d["parameters"].pop("max_spread_bps"), "inputs.parameters.max_spread_bps"),
    (lambda d: d["parameters"].update(depth_weight="0.8x"), "inputs.parameters.depth_weight"),
    (lambda d: d["parameters"].update(epoch_budget="01"), "inputs.parameters.epoch_budget"),
    (lambda d: d["parameters"].update(volatility_weighting=1), "inputs.parameters.volatility_weighting"),
    (lambda d: d["parameters"].update(sample_seconds=0), "inputs.parameters.sample_seconds"),
    (lambda d: d["snapshots"][0].update(t_ms=-1), "inputs.snapshots[0].t_ms"),
    (lambda d: d["snapshots"][0]["book"]["bids"][0].pop(), "inputs.snapshots[0].book.bids[0]"),
    (lambda d: d["snapshots"][0]["book"]["bids"][1].__setitem__(1, "1e3"), "inputs.snapshots[0].book.bids[1][1]"),
    (lambda d: d["snapshots"][0]["book"]["asks"][0].__setitem__(1, "0.00"), "inputs.snapshots[0].book.asks[0][1]"),
    (lambda d: d["snapshots"][0]["book"].update(mid="100"), "inputs.snapshots[0].book.mid"),
    (lambda d: d["participants"][0].update(address=B.upper()), "inputs.participants[0].address"),
    (lambda d: d["participants"][0]["orders"][0].update(live=[]), "inputs.participants[0].orders[0].live"),
    (lambda d: d["participants"][0]["orders"][0].update(order_id=""), "inputs.participants[0].orders[0].order_id"),
    (lambda d: d["participants"][0]["orders"][0].update(side="bid"), "inputs.participants[0].orders[0].side"),
    (
        lambda d: d["participants"][0]["orders"][1]["live"][0].update(live_to_ms="later"),
        "inputs.participants[0].orders[1].live[0].live_to_ms",
    ),
    (
        lambda d: d["participants"][0]["orders"][0]["exchange"].update(closed_ms="now"),
        "inputs.participants[0].orders[0].exchange.closed_ms",
    ),
    (
        lambda d: d["participants"][0]["orders"][0].update(report_digest=REPORTS[0].upper()),
        "inputs.participants[0].orders[0].report_digest",
    ),
    (
        lambda d: d["participants"][0]["fills"][0]["exchange"].update(maker="yes"),
        "inputs.participants[0].fills[0].exchange.maker",
    ),
    (lambda d: d["participants"][0]["fills"][0].pop("ts_ms"), "inputs.participants[0].fills[0].ts_ms"),
    (lambda d: d["participants"][0]["links"].update(extra=[]), "inputs.participants[0].links.extra"),
    (
        lambda d: d["participants"][1]["links"]["deposit_addresses"].append(7),
        "inputs.participants[1].links.deposit_addresses[1]",
    ),
    (lambda d: d["source_reports"].append("00" * 31), "inputs.source_reports[3]"),
    (lambda d: d["source_reports"].append(d["source_reports"][0]), "inputs.source_reports"),
]


@pytest.mark.parametrize(("mutate", "path"), MALFORMED)
def test_the_schema_refuses_each_malformed_case_naming_its_path(mutate: Mutation, path: str) -> None:
    doc = rich_document()
    mutate(doc)
    with pytest.raises(SchemaViolation) as caught:
        validate_inputs(doc)
    assert caught.value.path == path
    # The engine refuses it too, on its own: the schema is a published description, not the only guard.
    with pytest.raises((ScoringInputError, CanonicalFormError)):
        results_bundle(doc, software=SOFTWARE)


CROSS_FIELD: list[tuple[Mutation, str]] = [
    (lambda d: d["epoch"].update(end_ms=d["epoch"]["start_ms"]), "inputs.epoch.end_ms"),
    (lambda d: d["epoch"].update(end_ms=d["epoch"]["end_ms"] + STEP), "inputs.epoch.end_ms"),
    (lambda d: d["parameters"].update(depth_weight="3/2"), "inputs.parameters.depth_weight"),
    (lambda d: d["snapshots"][1].update(t_ms=T0 + 1), "inputs.snapshots[1].t_ms"),
    (lambda d: d["snapshots"][1].update(t_ms=T0), "inputs.snapshots[1].t_ms"),
    (lambda d: d["snapshots"][0]["book"]["bids"][1].__setitem__(0, "99.950"), "inputs.snapshots[0].book.bids[1][0]"),
    (lambda d: d["participants"][0]["orders"][1].update(order_id="b1"), "inputs.participants[0].orders[1].order_id"),
    (
        lambda d: d["participants"][0]["orders"][1]["live"][1].update(live_from_ms=T0),
        "inputs.participants[0].orders[1].live[1].live_from_ms",
    ),
    (lambda d: d["participants"][1].update(address=B), "inputs.participants[1].address"),
    (
        lambda d: d["participants"][0]["fills"][1].update(report_digest="ee" * 32),
        "inputs.participants[0].fills[1].report_digest",
    ),
]


@pytest.mark.parametrize(("mutate", "path"), CROSS_FIELD)
def test_rules_a_schema_cannot_say_are_the_engines_refusals(mutate: Mutation, path: str) -> None:
    doc = rich_document()
    mutate(doc)
    validate_inputs(doc)
    with pytest.raises(ScoringInputError) as caught:
        results_bundle(doc, software=SOFTWARE)
    assert caught.value.path == path


# --- the results bundle ----------------------------------------------------------------------------------------


def test_the_bundle_holds_the_campaign_the_epoch_the_inputs_digest_and_the_scores() -> None:
    doc = worked_example()
    bundle = results_bundle(doc, software=SOFTWARE)
    scores = score_epoch(OracleInputs.from_json(doc).epoch)
    assert bundle["schema"] == BUNDLE_SCHEMA
    assert bundle["campaign"] == CAMPAIGN
    assert bundle["epoch"] == doc["epoch"]
    assert bundle["parameters"] == {**doc["parameters"], "epoch_budget": "1000"}
    assert bundle["inputs_digest"] == hashlib.sha256(canonical_bytes(doc)).hexdigest()
    assert bundle["software"] == {"version": "0.1.0", "commit": "ab" * 20}
    assert {k: bundle[k] for k in ("participants", "gaps", "groups", "volatility_median_ppm")} == scores.as_json()
    by_address = {p["address"]: p for p in bundle["participants"]}
    assert [p["address"] for p in bundle["participants"]] == [A, B, C]
    # The reward model's numbers for this one sample: D_A = 4914, D_B = 6013, V_C = 15000.
    assert (by_address[A]["depth"], by_address[B]["depth"], by_address[C]["volume"]) == ("4914", "6013", "15000")
    assert by_address[B]["flags"]["over_claimed"] == 1
    # λ × D_i / ΣD + (1 − λ) × V_i / ΣV, reduced.
    expected = [Fraction(4, 5) * Fraction(4914, 10927), Fraction(4, 5) * Fraction(6013, 10927), Fraction(1, 5)]
    assert [p["share"] for p in bundle["participants"]] == [f"{f.numerator}/{f.denominator}" for f in expected]
    assert [p["share"] for p in bundle["participants"]] == ["2808/7805", "3436/7805", "1/5"]
    validate_bundle(bundle)


def test_the_bundle_bytes_are_canonical_and_the_digest_is_their_sha256() -> None:
    bundle = results_bundle(rich_document(), software=SOFTWARE)
    data = bundle_bytes(bundle)
    assert data == canonical_bytes(json.loads(data))
    assert bundle_digest(bundle) == hashlib.sha256(data).hexdigest() == digest(bundle)
    assert bundle_digest(bundle) == bundle_digest(copy.deepcopy(bundle))


def test_key_order_does_not_matter_but_the_document_does() -> None:
    doc = rich_document()
    reordered = json.loads(json.dumps(doc, sort_keys=True))
    reordered["participants"].reverse()
    same_keys_reversed = {k: reordered[k] for k in reversed(list(reordered))}
    first = results_bundle(doc, software=SOFTWARE)
    again = results_bundle(same_keys_reversed, software=SOFTWARE)
    # The scores do not depend on the listing order; the inputs digest names the very document that was scored.
    assert {k: v for k, v in first.items() if k != "inputs_digest"} == {
        k: v for k, v in again.items() if k != "inputs_digest"
    }
    assert first["inputs_digest"] != again["inputs_digest"]
    shuffled_keys = json.loads(json.dumps(doc, sort_keys=True))
    assert bundle_bytes(results_bundle(shuffled_keys, software=SOFTWARE)) == bundle_bytes(first)


def test_the_software_version_is_part_of_the_bundle() -> None:
    doc = rich_document()
    other = Software(version="0.1.0", commit="unknown")
    assert bundle_digest(results_bundle(doc, software=other)) != bundle_digest(results_bundle(doc, software=SOFTWARE))
    validate_bundle(results_bundle(doc, software=other))


BAD_BUNDLES: list[tuple[Mutation, str]] = [
    (lambda b: b.pop("software"), "bundle.software"),
    (lambda b: b.update(inputs_digest="0x" + "00" * 32), "bundle.inputs_digest"),
    (lambda b: b["software"].update(commit="main"), "bundle.software.commit"),
    (lambda b: b["participants"][0].update(depth=4914), "bundle.participants[0].depth"),
    (lambda b: b["participants"][0].update(share="1/0"), "bundle.participants[0].share"),
    (lambda b: b["participants"][0].update(share="0.5"), "bundle.participants[0].share"),
    (lambda b: b["participants"][1]["flags"].pop("over_claimed"), "bundle.participants[1].flags.over_claimed"),
    (
        lambda b: b["participants"][1]["exclusions"][0].update(reason="spoof"),
        "bundle.participants[1].exclusions[0].reason",
    ),
    (lambda b: b["groups"].append([A]), "bundle.groups[1]"),
    (lambda b: b["parameters"].update(depth_weight="0.8"), "bundle.parameters.depth_weight"),
    (lambda b: b["epoch"].update(index=-1), "bundle.epoch.index"),
]


@pytest.mark.parametrize(("mutate", "path"), BAD_BUNDLES)
def test_the_bundle_schema_refuses_each_malformed_case(mutate: Mutation, path: str) -> None:
    bundle = results_bundle(rich_document(), software=SOFTWARE)
    validate_bundle(bundle)
    mutate(bundle)
    with pytest.raises(SchemaViolation) as caught:
        validate_bundle(bundle)
    assert caught.value.path == path
