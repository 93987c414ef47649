"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from __future__ import annotations

from django.conf import settings
from django.db import models

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
