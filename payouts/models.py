"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from __future__ import annotations

from django.db import models

# ------------------------------------------------------------------------------------------------------------------
# Oracle transactions (payouts.oracle_tx): what the recording and reputation oracles send to campaign escrows.
# Their nonces are allocated in execution's CustodyNonce table, which is keyed by (chain_id, address) alone.
# ------------------------------------------------------------------------------------------------------------------


class OracleTransaction(models.Model):
    """One oracle call to an escrow (recordResults, publishPayout, distribute), known by what it is for. Signed and
    stored before it is broadcast, so that a retry after a crash rebroadcasts the very same transaction (same
    nonce, same hash) instead of sending a second one; tx_hash is the newest version until one mines, then the one
    that mined."""

    class Role(models.TextChoices):
        RECORDING = "recording"
        REPUTATION = "reputation"

    class Status(models.TextChoices):
        SIGNED = "signed"
        BROADCAST = "broadcast"
        MINED = "mined"
        REVERTED = "reverted"
        # The chain used the nonce for a transaction that is none of our signed versions: an operator decides.
        PARKED = "parked"
        # The chain already held what this call would write (sent by someone else, or by us before this row):
        # nothing was signed or sent.
        ADOPTED = "adopted"

    purpose_key = models.CharField(max_length=200, unique=True, help_text='e.g. "record:<chain>:<campaign>:<epoch>".')
    role = models.CharField(max_length=16, choices=Role.choices)
    chain_id = models.PositiveBigIntegerField()
    sender = models.CharField(max_length=42)
    to = models.CharField(max_length=42)
    data = models.TextField(help_text="Calldata, 0x hex.")
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    gas = models.PositiveBigIntegerField(default=0)
    gas_price = models.PositiveBigIntegerField(default=0, help_text="Of the version in tx_hash (wei, legacy).")
    raw_tx = models.TextField(blank=True)
    tx_hash = models.CharField(max_length=66, unique=True, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SIGNED)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    revert_reason = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True, help_text="When the version in tx_hash was signed.")
    broadcast_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True, help_text="Mined, reverted, parked or adopted.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(
                fields=("chain_id", "sender", "nonce"),
                condition=models.Q(nonce__isnull=False),
                name="oracle_tx_nonce_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose_key} {self.status} {self.tx_hash or '-'}"


class OracleTransactionVersion(models.Model):
    """Every signed version of an oracle transaction: the original and each replacement at a higher gas price, all
    with the same nonce, so at most one of them can ever mine. Stored before it is broadcast."""

    transaction = models.ForeignKey(OracleTransaction, on_delete=models.PROTECT, related_name="versions")
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.TextField()
    gas_price = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("transaction", "pk")

    def __str__(self) -> str:
        return f"{self.tx_hash} @ {self.gas_price} wei"
