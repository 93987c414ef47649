"""Models of the campaigns app: the chain's campaigns and their events, as the indexer mirrors them.

Everything is keyed by chain id (multi-chain ready). Campaign rows are derived from events, so a reorg is
handled by deleting what came from orphaned blocks and indexing again.
"""

from __future__ import annotations

from django.db import models

from mrmarket.fields import BaseUnitsField


class ChainCursor(models.Model):
    """How far the indexer has read one factory on one chain (resumable after any crash)."""

    chain_id = models.PositiveBigIntegerField()
    factory = models.CharField(max_length=42)
    last_block = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("chain_id", "factory"), name="chain_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.chain_id}:{self.factory}@{self.last_block}"


class IndexedBlock(models.Model):
    """Hashes of recently indexed blocks: a mismatch with the chain reveals a reorg and where it forked."""

    cursor = models.ForeignKey(ChainCursor, on_delete=models.CASCADE, related_name="blocks")
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("cursor", "number"), name="indexed_block_unique")]
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"{self.number} {self.hash}"


class Campaign(models.Model):
    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    factory = models.CharField(max_length=42)
    creator = models.CharField(max_length=42)
    token = models.CharField(max_length=42)
    recording_oracle = models.CharField(max_length=42)
    reputation_oracle = models.CharField(max_length=42)
    fee_recipient = models.CharField(max_length=42)
    start = models.DateTimeField()
    end = models.DateTimeField()
    epoch_seconds = models.PositiveIntegerField()
    dispute_window_seconds = models.PositiveIntegerField()
    budget = BaseUnitsField()
    fee_bps = models.PositiveSmallIntegerField()
    metadata_hash = models.CharField(max_length=66)
    metadata_uri = models.CharField(max_length=2048, blank=True, default="")
    # From the metadata document whose SHA-256 is metadata_hash, when we hold it (verified by the hash).
    exchange = models.CharField(max_length=32, blank=True, default="", db_index=True)
    pair = models.CharField(max_length=41, blank=True, default="", db_index=True)
    created_block = models.PositiveBigIntegerField()
    created_tx = models.CharField(max_length=66)
    # Derived from events; recomputed by the indexer.
    funded = models.BooleanField(default=False)
    paid_out = BaseUnitsField(default=0)
    refunded = BaseUnitsField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("chain_id", "address"), name="campaign_chain_address_unique")]
        indexes = [models.Index(fields=("chain_id", "end"))]

    def __str__(self) -> str:
        return f"campaign {self.chain_id}:{self.address}"


class CampaignEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "CampaignCreated"
        FUNDED = "Funded"
        RESULTS_RECORDED = "ResultsRecorded"
        PAYOUT_PUBLISHED = "PayoutPublished"
        CLAIMED = "Claimed"
        DISTRIBUTED = "Distributed"
        REFUNDED = "Refunded"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("campaign", "tx_hash", "log_index"), name="campaign_event_unique")
        ]
        ordering = ("block_number", "log_index")

    def __str__(self) -> str:
        return f"{self.kind} @{self.block_number}"


class CampaignMetadata(models.Model):
    """A metadata document by its hash (the on-chain metadataHash), served publicly so that its URI resolves."""

    hash = models.CharField(max_length=66, unique=True)
    document = models.JSONField()
    created_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"metadata {self.hash}"
