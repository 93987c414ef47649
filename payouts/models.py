"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from __future__ import annotations

from django.db import models

from execution.models import AppendOnlyModel
from payouts.domain.epochs import CloseState

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
