"""Writes of the payouts app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign
from execution.accounts import exchange_account_enrol
from execution.models import MMOrder
from mrmarket.errors import NotFound
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.siwe import IssuedNonce, NonceStore, campaign_resource, siwe_nonce_issue, siwe_verify
from payouts.errors import CampaignUnknown, MMOrderNotForParticipant, ParticipantOwnedByAnother, SnapshotInvalid
from payouts.models import BookSnapshot, Participant, ParticipantAccount, ParticipantOrder

# --- Participants (Sign-In with Ethereum joining; docs/participants.md) ------------------------------------


def participant_nonce_issue() -> IssuedNonce:
    """A fresh single-use nonce for the EIP-4361 message of a join."""
    return siwe_nonce_issue()


def participant_join(
    *,
    chain_id: int,
    campaign_address: str,
    message: str,
    signature: str,
    owner_id: int,
    mm_order_ids: Iterable[int] = (),
    nonces: NonceStore | None = None,
) -> Participant:
    """Join the campaign with the reward address that signed `message`, and link the owner's MM orders made for
    it. Joining again (a fresh nonce, a fresh signature) returns the same participant and adds the new links.
    One transaction: any refusal leaves nothing behind, not even a used nonce."""
    address = campaign_address.lower()
    with transaction.atomic():
        campaign = Campaign.objects.filter(chain_id=chain_id, address=address).first()
        if campaign is None:
            raise CampaignUnknown(f"no campaign {address} on chain {chain_id}")
        verified = siwe_verify(
            message=message,
            signature=signature,
            chain_id=chain_id,
            resource=campaign_resource(chain_id, address),
            nonces=nonces,
        )
        orders = _orders_for(
            order_ids=mm_order_ids, owner_id=owner_id, chain_id=chain_id, campaign=address, reward=verified.address
        )
        try:
            with transaction.atomic():
                participant, _ = Participant.objects.get_or_create(
                    campaign=campaign,
                    reward_address=verified.address,
                    defaults={
                        "owner_id": owner_id,
                        "joined_at": timezone.now(),
                        "siwe_message": verified.message,
                        "siwe_signature": verified.signature,
                    },
                )
        except IntegrityError:  # a concurrent first join of the same address won the insert
            participant = Participant.objects.get(campaign=campaign, reward_address=verified.address)
        if participant.owner_id != owner_id:
            raise ParticipantOwnedByAnother(
                "this reward address joined the campaign through another user",
                extra={"participant_id": participant.pk},
            )
        for order in orders:
            ParticipantOrder.objects.get_or_create(participant=participant, mm_order=order)
    return participant


def _orders_for(*, order_ids: Iterable[int], owner_id: int, chain_id: int, campaign: str, reward: str) -> list[MMOrder]:
    wanted = sorted(set(order_ids))
    found = {o.pk: o for o in MMOrder.objects.filter(pk__in=wanted)}
    for pk in wanted:
        order = found.get(pk)
        if (
            order is None
            or order.owner_id != owner_id
            or order.campaign_chain_id != chain_id
            or order.campaign_address != campaign
            or order.reward_address != reward
        ):
            raise MMOrderNotForParticipant(
                f"MM order {pk} is not yours, or makes markets for another campaign or reward address",
                extra={"mm_order_id": pk},
            )
    return [found[pk] for pk in wanted]


def participant_account_enrol(
    *, participant_id: int, owner_id: int, exchange: str, label: str, api_key: str, secret: str, password: str = ""
) -> ParticipantAccount:
    """Enrol a read-only exchange key for the participant (execution refuses, storing nothing, a key that can
    trade or withdraw) and link it. One transaction: a refused key leaves neither account nor link."""
    participant = Participant.objects.filter(pk=participant_id, owner_id=owner_id).first()
    if participant is None:
        raise NotFound(f"you have no participant {participant_id}")
    with transaction.atomic():
        account = exchange_account_enrol(
            owner_id=owner_id,
            exchange=exchange,
            label=label,
            role="read_only",
            credentials=ExchangeCredentials(api_key=api_key, secret=secret, password=password),
        )
        return ParticipantAccount.objects.create(participant=participant, exchange_account=account)


# --- end of Participants -----------------------------------------------------------------------------------


# --- Market-data recorder ---------------------------------------------------------------------------------------


@transaction.atomic
def book_snapshot_record(
    *,
    campaign_id: int,
    t_ms: int,
    book: dict[str, Any] | None,
    exchange_ts_ms: int | None,
    recorded_ms: int,
    source: str,
    gap_reason: str = "",
) -> bool:
    """Store the book (or the gap) of one sample time once: a second write for the same (campaign, t_ms), from
    a retry or a restarted recorder, changes nothing and returns False."""
    if (book is None) != bool(gap_reason):
        raise SnapshotInvalid("a snapshot has either a book or a gap reason", extra={"t_ms": t_ms})
    if book is not None and source not in BookSnapshot.Source.values:
        raise SnapshotInvalid(f"unknown source {source!r}", extra={"t_ms": t_ms})
    _, created = BookSnapshot.objects.get_or_create(
        campaign_id=campaign_id,
        t_ms=t_ms,
        defaults={
            "book": book,
            "exchange_ts_ms": exchange_ts_ms,
            "recorded_ms": recorded_ms,
            "source": source,
            "gap_reason": gap_reason,
        },
    )
    return created
