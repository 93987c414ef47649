"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from execution.models import AppendOnlyModel
from payouts.domain.epochs import CloseState

# --- Participants (Sign-In with Ethereum joining; docs/participants.md) ------------------------------------


class Participant(models.Model):
    """One reward address in one campaign, joined by a signed EIP-4361 message that named the campaign."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.PROTECT, related_name="participants")
    reward_address = models.CharField(max_length=42, help_text="Lower-case 0x address the rewards go to.")
    # The user who joined: the only one who may link keys and orders to this participant.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="participants")
    joined_at = models.DateTimeField()
    # The first join's message and signature, verbatim: the proof that the address asked to take part.
    siwe_message = models.TextField()
    siwe_signature = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("campaign", "reward_address"), name="participant_campaign_address_unique")
        ]

    def __str__(self) -> str:
        return f"participant {self.reward_address} in {self.campaign_id}"


class ParticipantAccount(models.Model):
    """A read-only exchange key of a participant: it lets the oracle read the participant's own trading."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="accounts")
    exchange_account = models.ForeignKey(
        "execution.ExchangeAccount", on_delete=models.PROTECT, related_name="participant_links"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("participant", "exchange_account"), name="participant_account_unique")
        ]

    def __str__(self) -> str:
        return f"{self.participant} key {self.exchange_account_id}"


class ParticipantOrder(models.Model):
    """An MM order of this system that makes markets for the participant."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="orders")
    mm_order = models.ForeignKey("execution.MMOrder", on_delete=models.PROTECT, related_name="participant_links")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("participant", "mm_order"), name="participant_order_unique")]

    def __str__(self) -> str:
        return f"{self.participant} order {self.mm_order_id}"


# --- end of Participants -----------------------------------------------------------------------------------


# --- Epoch close: one row per (campaign, epoch), its state machine and timeline (docs/scoring.md, "Epoch close") ---


class EpochClose(models.Model):
    """One epoch of one campaign on its way to the chain: collecting → closing → stored → recorded | failed.

    The digests are of the stored bytes; `bundle_digest` is what `recordResults` puts on chain. A worker takes the
    row with a lease (`lease_owner`, `lease_until`) for the long step of building the inputs, so that a crashed
    worker's close is resumed by another once the lease has run out and two workers never build at once."""

    STATE_CHOICES = [(s.value, s.value) for s in CloseState]

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.PROTECT, related_name="epoch_closes")
    epoch = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=CloseState.COLLECTING.value)
    epoch_start = models.DateTimeField()
    epoch_end = models.DateTimeField()
    inputs_digest = models.CharField(max_length=64, blank=True, default="")
    bundle_digest = models.CharField(max_length=64, blank=True, default="")
    inputs_name = models.CharField(max_length=300, blank=True, default="", help_text="Path in the artifact storage.")
    bundle_name = models.CharField(max_length=300, blank=True, default="", help_text="Path in the artifact storage.")
    bundle_uri = models.CharField(max_length=2048, blank=True, default="", help_text="The URI put on chain.")
    participants = models.PositiveIntegerField(default=0)
    notes = models.JSONField(default=list, blank=True, help_text="What was left out of the inputs, and why.")
    record_tx = models.ForeignKey(
        "payouts.OracleTransaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("campaign", "epoch"), name="epoch_close_unique")]
        indexes = [models.Index(fields=("state",))]
        ordering = ("campaign_id", "epoch")

    def __str__(self) -> str:
        return f"epoch {self.epoch} of {self.campaign_id} ({self.state})"


class EpochCloseTransition(AppendOnlyModel):
    """The close's timeline: every applied transition, once per idempotency key."""

    close = models.ForeignKey(EpochClose, on_delete=models.PROTECT, related_name="transitions")
    key = models.CharField(max_length=200)
    event = models.CharField(max_length=32)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=("close", "key"), name="epoch_close_transition_key_unique")]

    def __str__(self) -> str:
        return f"{self.from_state} --{self.event}--> {self.to_state}"


class EpochPreview(models.Model):
    """The running estimate of a campaign's open epoch: its bundle computed over the part of the epoch so far,
    exactly as the close will compute it (cross-checks included), refreshed by beat. Never published, never
    recorded: what a participant's status shows."""

    campaign = models.OneToOneField("campaigns.Campaign", on_delete=models.CASCADE, related_name="epoch_preview")
    epoch = models.PositiveIntegerField()
    as_of_ms = models.BigIntegerField(help_text="The estimate covers the epoch from its start until this time.")
    bundle = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preview of epoch {self.epoch} of {self.campaign_id}"
