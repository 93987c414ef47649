"""The reputation oracle's payment of one epoch: its state machine, and the plan of the batches that push the
manifest's leaves to everyone (docs/scoring.md, "Payout"). Pure: no Django, no I/O.

One epoch's payout moves through

    pending ──publish_signed──▶ publishing ──published──▶ distributing ──paid──▶ paid
       │  ╲                         │                          ▲
       │   ╲──adopted (the chain already holds our root)───────┘
       ├──nothing_to_pay──▶ empty           (nobody scored: nothing is published, the budget stays refundable)
       └──failed──▶ failed ◀──failed── publishing               (the chain refuses it: a person decides)
                    failed ──retry──▶ pending

`payout_transition` is the only way a state changes. A batch is a contiguous range of leaf indices paid by one
`distribute` call (or one leaf paid by `claim`, for an amount too large for distribute's packed word); it is
planned only over leaves that are neither paid (by a mined batch or by the participant's own claim) nor in a
batch still in flight, so the oracle never asks the chain to pay a leaf twice — the escrow's bitmap is the last
line of defence, not the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# distribute packs each leaf as `account << 96 | amount`: larger amounts must be paid by claim.
AMOUNT_BITS = 96
DISTRIBUTE_AMOUNT_LIMIT = 1 << AMOUNT_BITS


class PayoutState(StrEnum):
    PENDING = "pending"  # the manifest is known, publishPayout not yet signed
    PUBLISHING = "publishing"  # publishPayout signed and stored (then broadcast), not yet mined
    DISTRIBUTING = "distributing"  # the root is on chain: batches push the leaves nobody has claimed
    PAID = "paid"  # every leaf paid, by a batch or by its own claim
    EMPTY = "empty"  # nobody is paid: nothing to publish
    FAILED = "failed"  # the chain refused the publication; a person decides (reason recorded)


class PayoutEvent(StrEnum):
    PUBLISH_SIGNED = "publish_signed"
    PUBLISHED = "published"
    ADOPTED = "adopted"  # the escrow already holds this root (published by us before a crash, or by anyone)
    PAID = "paid"
    NOTHING_TO_PAY = "nothing_to_pay"
    FAILED = "failed"
    RETRY = "retry"


TRANSITIONS: dict[tuple[PayoutState, PayoutEvent], PayoutState] = {
    (PayoutState.PENDING, PayoutEvent.PUBLISH_SIGNED): PayoutState.PUBLISHING,
    (PayoutState.PENDING, PayoutEvent.ADOPTED): PayoutState.DISTRIBUTING,
    (PayoutState.PENDING, PayoutEvent.NOTHING_TO_PAY): PayoutState.EMPTY,
    (PayoutState.PENDING, PayoutEvent.FAILED): PayoutState.FAILED,
    (PayoutState.PUBLISHING, PayoutEvent.PUBLISHED): PayoutState.DISTRIBUTING,
    (PayoutState.PUBLISHING, PayoutEvent.ADOPTED): PayoutState.DISTRIBUTING,
    (PayoutState.PUBLISHING, PayoutEvent.FAILED): PayoutState.FAILED,
    (PayoutState.DISTRIBUTING, PayoutEvent.PAID): PayoutState.PAID,
    (PayoutState.FAILED, PayoutEvent.RETRY): PayoutState.PENDING,
}
TERMINAL = frozenset({PayoutState.PAID, PayoutState.EMPTY})


class IllegalPayoutTransition(ValueError):
    def __init__(self, state: PayoutState, event: PayoutEvent) -> None:
        super().__init__(f"an epoch payout in state {state.value} cannot take {event.value}")
        self.state = state
        self.event = event


def payout_transition(state: PayoutState, event: PayoutEvent) -> PayoutState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalPayoutTransition(state, event) from None


class BatchKind(StrEnum):
    DISTRIBUTE = "distribute"
    CLAIM = "claim"  # one leaf whose amount does not fit distribute's 96 bits, or the only leaf of its tree


class BatchStatus(StrEnum):
    PENDING = "pending"  # its transaction is signed (and, unless a crash came first, broadcast)
    PAID = "paid"  # mined: its leaves are paid
    REVERTED = "reverted"  # mined and reverted (a participant claimed one of its leaves first): nothing paid
    PARKED = "parked"  # its nonce went to a transaction that is none of ours: nothing paid


@dataclass(frozen=True)
class PlannedBatch:
    kind: BatchKind
    first_index: int
    count: int


def batch_capacity(*, gas_cap: int, base_gas: int, per_leaf_gas: int) -> int:
    """How many leaves a first guess of a batch holds under `gas_cap` (at least 1); the chain's estimate of the
    actual call decides, and the batch is cut in proportion while it does not fit."""
    if gas_cap <= 0 or base_gas < 0 or per_leaf_gas <= 0:
        raise ValueError("the gas cap and the per-leaf gas are positive, the base gas is not negative")
    return max(1, (gas_cap - base_gas) // per_leaf_gas)


def plan_batches(
    *,
    amounts: Sequence[int],
    settled: Iterable[int],
    in_flight: Iterable[tuple[int, int]],
    capacity: int,
    limit: int | None = None,
) -> list[PlannedBatch]:
    """The next batches over leaves 0 … len(amounts) − 1: contiguous runs of leaves neither settled (paid or
    claimed) nor inside a range still in flight, cut into pieces of at most `capacity` leaves; a leaf whose amount
    does not fit distribute's packed word is a claim of its own. In index order; at most `limit` of them."""
    if capacity < 1:
        raise ValueError("a batch holds at least one leaf")
    count = len(amounts)
    taken = bytearray(count)
    for index in settled:
        if 0 <= index < count:
            taken[index] = 1
    for first, size in in_flight:
        for index in range(max(first, 0), min(first + size, count)):
            taken[index] = 1
    if count == 1:
        # A tree of one leaf is its own root: the escrow's multiproof walk needs at least one hash to compute, so
        # that leaf is paid by claim, with an empty proof.
        return [] if taken[0] else [PlannedBatch(BatchKind.CLAIM, 0, 1)]
    planned: list[PlannedBatch] = []

    def add(batch: PlannedBatch) -> bool:
        planned.append(batch)
        return limit is not None and len(planned) >= limit

    run_start: int | None = None
    for index in range(count + 1):
        free = index < count and not taken[index] and amounts[index] < DISTRIBUTE_AMOUNT_LIMIT
        if free and run_start is None:
            run_start = index
        if not free and run_start is not None:
            for first in range(run_start, index, capacity):
                if add(PlannedBatch(BatchKind.DISTRIBUTE, first, min(capacity, index - first))):
                    return planned
            run_start = None
        too_large = index < count and not taken[index] and amounts[index] >= DISTRIBUTE_AMOUNT_LIMIT
        if too_large and add(PlannedBatch(BatchKind.CLAIM, index, 1)):
            return planned
    return planned


def packed_leaves(accounts: Sequence[str], amounts: Sequence[int]) -> list[int]:
    """distribute's leaves: `uint256(uint160(account)) << 96 | amount`."""
    words = []
    for account, amount in zip(accounts, amounts, strict=True):
        if not 0 <= amount < DISTRIBUTE_AMOUNT_LIMIT:
            raise ValueError(f"amount {amount} does not fit distribute's {AMOUNT_BITS} bits")
        words.append(int(account, 16) << AMOUNT_BITS | amount)
    return words
