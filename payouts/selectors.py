"""Reads of the payouts app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count

from execution.models import ExecutionReport
from mrmarket.errors import NotFound
from payouts.models import Participant

# --- Participants (Sign-In with Ethereum joining; docs/participants.md) ------------------------------------


@dataclass(frozen=True)
class EpochPreview:
    """The running epoch's figures for one participant, computed by the scoring side (docs/scoring.md) and handed
    to `participant_status`; nothing here computes them.

    `flags`: the scoring flags raised for the participant this epoch (e.g. a wash-trade suspicion), by name.
    `depth_points`: the participant's depth score D so far, in the scoring's integer points.
    `volume_cents`: the participant's qualifying volume V so far, in integer cents of the quote currency.
    `estimated_reward`: the participant's share of the epoch budget were the epoch to end now, in the campaign
    token's base units (an integer: never a float for what is paid).
    """

    flags: tuple[str, ...] = ()
    depth_points: int = 0
    volume_cents: int = 0
    estimated_reward: int = 0


@dataclass(frozen=True)
class ParticipantAccountStatus:
    exchange_account_id: int
    exchange: str
    label: str
    api_key_hint: str
    status: str
    added_at: datetime


@dataclass(frozen=True)
class ParticipantOrderStatus:
    mm_order_id: int
    job_id: str
    state: str
    verified_reports: int


@dataclass(frozen=True)
class ParticipantStatus:
    """What a participant sees of itself. The epoch fields are None when no preview was supplied."""

    participant_id: int
    chain_id: int
    campaign_address: str
    reward_address: str
    joined_at: datetime
    accounts: tuple[ParticipantAccountStatus, ...]
    orders: tuple[ParticipantOrderStatus, ...]
    flags: tuple[str, ...] = field(default=())
    depth_points: int | None = None
    volume_cents: int | None = None
    estimated_reward: int | None = None


def participant_get(*, chain_id: int, campaign_address: str, reward_address: str) -> Participant:
    participant = (
        Participant.objects.select_related("campaign")
        .filter(
            campaign__chain_id=chain_id,
            campaign__address=campaign_address.lower(),
            reward_address=reward_address.lower(),
        )
        .first()
    )
    if participant is None:
        raise NotFound("this address has not joined this campaign")
    return participant


def participant_status(*, participant: Participant, preview: EpochPreview | None = None) -> ParticipantStatus:
    """Joined when, which read-only keys (never the key itself), which MM orders with how many verified reports
    each; the running epoch's figures come from `preview` (the scoring side's, when it has one)."""
    accounts = tuple(
        ParticipantAccountStatus(
            exchange_account_id=link.exchange_account.pk,
            exchange=link.exchange_account.exchange,
            label=link.exchange_account.label,
            api_key_hint=link.exchange_account.api_key_hint,
            status=link.exchange_account.status,
            added_at=link.added_at,
        )
        for link in participant.accounts.select_related("exchange_account").order_by("added_at", "pk")
    )
    links = list(participant.orders.select_related("mm_order").order_by("mm_order_id"))
    # Stored reports are verified ones: a report is kept only once its signature and chain checked out.
    counts = dict(
        ExecutionReport.objects.filter(order_id__in=[link.mm_order_id for link in links])
        .values_list("order_id")
        .annotate(n=Count("pk"))
        .values_list("order_id", "n")
    )
    orders = tuple(
        ParticipantOrderStatus(
            mm_order_id=link.mm_order.pk,
            job_id=link.mm_order.job_id,
            state=link.mm_order.state,
            verified_reports=counts.get(link.mm_order_id, 0),
        )
        for link in links
    )
    return ParticipantStatus(
        participant_id=participant.pk,
        chain_id=participant.campaign.chain_id,
        campaign_address=participant.campaign.address,
        reward_address=participant.reward_address,
        joined_at=participant.joined_at,
        accounts=accounts,
        orders=orders,
        flags=preview.flags if preview else (),
        depth_points=preview.depth_points if preview else None,
        volume_cents=preview.volume_cents if preview else None,
        estimated_reward=preview.estimated_reward if preview else None,
    )


# --- end of Participants -----------------------------------------------------------------------------------
