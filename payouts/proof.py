"""The oracle's side of "depth is real" (docs/proof.md): from the inputs of a scored epoch, how much of the market's
in-band depth the attested executors' orders account for, and what the oracle saw of each reporting identity — kept
with the preview for the proof page, and handed to the executor registry for its reputation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attestation.services import identity_observations_replace
from campaigns.models import Campaign
from execution.models import ExecutionReport
from payouts.domain.attested_depth import DepthAttribution, attribute_depth
from payouts.domain.scoring.inputs import OracleInputs
from payouts.models import ExternalReport


def report_keys(digests: Iterable[str]) -> dict[str, str]:
    """Report digest → the signing key that signed it, for the reports an inputs document names."""
    wanted = list(digests)
    keys: dict[str, str] = {}
    for model in (ExecutionReport, ExternalReport):
        for start in range(0, len(wanted), 500):
            rows = model.objects.filter(digest__in=wanted[start : start + 500]).values_list("digest", "signing_key")
            keys.update(rows)
    return keys


def epoch_attribution(*, campaign: Campaign, epoch: int, inputs: OracleInputs) -> dict[str, Any]:
    """Attribute the epoch's depth, record each identity's observations for this epoch (replacing earlier ones),
    and return the attribution as JSON for the preview."""
    attribution: DepthAttribution = attribute_depth(inputs.epoch, report_keys(inputs.source_reports))
    identity_observations_replace(
        source=f"{campaign.chain_id}:{campaign.address}:{epoch}",
        figures={k: v.as_json() for k, v in attribution.by_identity.items()},
    )
    return attribution.as_json()
