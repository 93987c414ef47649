"""Epoch arithmetic of a campaign escrow and the state machine of one epoch's close. Pure.

The arithmetic mirrors `contracts/src/Campaign.sol` exactly (`_epochCount`, `_epochEnd`, `_epochBudget` and the fee
check of `publishPayout`), so the oracle never computes an epoch or a budget the contract would refuse:
epochs are aligned to the campaign start, the last one ends at the campaign end, each epoch's budget is
budget // count with the remainder in the last, and a payout of `total` costs `total + total × fee_bps // 10000`.

One epoch's close (docs/scoring.md, "Epoch close") moves through
collecting → closing → stored → recorded, or → failed with a reason; `close_transition` is the only way a
state changes, and a step that was already taken is refused as such (a retry is never a second step).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

FEE_DENOMINATOR = 10_000


@dataclass(frozen=True)
class CampaignTerms:
    """What the escrow fixes at creation (seconds since the Unix epoch; token base units)."""

    start: int
    end: int
    epoch_seconds: int
    budget: int
    fee_bps: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end or self.epoch_seconds <= 0 or self.budget < 0:
            raise ValueError("campaign terms need start < end, a positive epoch length and a budget ≥ 0")
        if not 0 <= self.fee_bps <= FEE_DENOMINATOR:
            raise ValueError("fee_bps must be within [0, 10000]")

    @property
    def epoch_count(self) -> int:
        return -(-(self.end - self.start) // self.epoch_seconds)

    def _check(self, epoch: int) -> None:
        if not 0 <= epoch < self.epoch_count:
            raise ValueError(f"epoch {epoch} is not an epoch of this campaign (0 … {self.epoch_count - 1})")

    def epoch_bounds(self, epoch: int) -> tuple[int, int]:
        """[start, end) of an epoch in seconds; the last epoch ends at the campaign end."""
        self._check(epoch)
        start = self.start + epoch * self.epoch_seconds
        return start, min(start + self.epoch_seconds, self.end)

    def epoch_at(self, t: int) -> int | None:
        """The epoch running at time t, None outside the campaign."""
        if not self.start <= t < self.end:
            return None
        return (t - self.start) // self.epoch_seconds

    def epoch_gross_budget(self, epoch: int) -> int:
        """The contract's `epochBudget(epoch)`: what the epoch may spend, its fee included."""
        self._check(epoch)
        each = self.budget // self.epoch_count
        return self.budget - each * (self.epoch_count - 1) if epoch == self.epoch_count - 1 else each

    def fee_on(self, total: int) -> int:
        return total * self.fee_bps // FEE_DENOMINATOR

    def epoch_payable(self, epoch: int) -> int:
        """The largest total the participants can be paid: the largest T with T + fee(T) ≤ the epoch's budget."""
        gross = self.epoch_gross_budget(epoch)
        total = gross * FEE_DENOMINATOR // (FEE_DENOMINATOR + self.fee_bps)
        # fee(T) floors, so T may sit a few units below the largest fitting total: step up while the next fits.
        while total + 1 + self.fee_on(total + 1) <= gross:
            total += 1
        return total

    def closable_epochs(self, now: int, grace_seconds: int) -> range:
        """Epochs whose end plus the grace for late reports has passed by `now`."""
        count = 0
        while count < self.epoch_count and self.epoch_bounds(count)[1] + grace_seconds <= now:
            count += 1
        return range(count)


class CloseState(StrEnum):
    COLLECTING = "collecting"  # the epoch runs, or its grace for late reports does
    CLOSING = "closing"  # inputs being built (reports, the oracle's snapshots, the exchange's confirmations)
    STORED = "stored"  # inputs and bundle stored; recordResults being sent
    RECORDED = "recorded"  # the bundle's digest is on chain (tx hash, block)
    FAILED = "failed"  # cannot go on without a person (reason recorded)


class CloseEvent(StrEnum):
    GRACE_OVER = "grace_over"
    STORED = "stored"
    RECORDED = "recorded"
    FAILED = "failed"
    RETRY = "retry"  # an operator sends a failed close back to closing


TRANSITIONS: dict[tuple[CloseState, CloseEvent], CloseState] = {
    (CloseState.COLLECTING, CloseEvent.GRACE_OVER): CloseState.CLOSING,
    (CloseState.CLOSING, CloseEvent.STORED): CloseState.STORED,
    (CloseState.CLOSING, CloseEvent.FAILED): CloseState.FAILED,
    (CloseState.STORED, CloseEvent.RECORDED): CloseState.RECORDED,
    (CloseState.STORED, CloseEvent.FAILED): CloseState.FAILED,
    (CloseState.FAILED, CloseEvent.RETRY): CloseState.CLOSING,
}
TERMINAL = frozenset({CloseState.RECORDED})


class IllegalCloseTransition(ValueError):
    def __init__(self, state: CloseState, event: CloseEvent) -> None:
        super().__init__(f"an epoch close in state {state.value} cannot take {event.value}")
        self.state = state
        self.event = event


def close_transition(state: CloseState, event: CloseEvent) -> CloseState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalCloseTransition(state, event) from None
