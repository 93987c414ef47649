"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from execution.models import AppendOnlyModel
from mrmarket.fields import BaseUnitsField
from payouts.domain.distribution import BatchKind, BatchStatus, PayoutState
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
    manifest_digest = models.CharField(max_length=64, blank=True, default="")
    manifest_name = models.CharField(max_length=300, blank=True, default="", help_text="Path in the artifact storage.")
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


class TransitionRecord(AppendOnlyModel):
    """One applied transition of a state machine's row, once per idempotency key (`payouts.timeline`): a
    subclass adds the row it belongs to and the key's uniqueness per row."""

    key = models.CharField(max_length=200)
    event = models.CharField(max_length=32)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.from_state} --{self.event}--> {self.to_state}"


class EpochCloseTransition(TransitionRecord):
    """The close's timeline: every applied transition, once per idempotency key."""

    close = models.ForeignKey(EpochClose, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionRecord.Meta):
        constraints = [models.UniqueConstraint(fields=("close", "key"), name="epoch_close_transition_key_unique")]


class EpochPreview(models.Model):
    """The running estimate of a campaign's open epoch: its bundle computed over the part of the epoch so far,
    exactly as the close will compute it (cross-checks included), refreshed by beat. Never published, never
    recorded: what a participant's status shows."""

    campaign = models.OneToOneField("campaigns.Campaign", on_delete=models.CASCADE, related_name="epoch_preview")
    epoch = models.PositiveIntegerField()
    as_of_ms = models.BigIntegerField(help_text="The estimate covers the epoch from its start until this time.")
    bundle = models.JSONField()
    attested_depth = models.JSONField(
        default=dict, blank=True, help_text="The epoch's in-band depth so far and who reported it (docs/proof.md)."
    )
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preview of epoch {self.epoch} of {self.campaign_id}"


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


# --- Market-data recorder: the oracle's own order-book snapshots, one row per campaign and sample time --------


class BookSnapshot(models.Model):
    """The campaign market's book at one sample time as the recorder saw it, trimmed to the scoring band plus a
    margin, levels best first as exact decimal strings ({"bids": [[price, size], ...], "asks": [...]}). `book`
    null is a gap, `gap_reason` says why; a sample time with no row is a gap too (the recorder was not running)."""

    class Source(models.TextChoices):
        WS = "ws"
        REST = "rest"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="book_snapshots")
    t_ms = models.BigIntegerField()  # the sample time (campaign start + k * sample_seconds)
    book = models.JSONField(null=True)
    exchange_ts_ms = models.BigIntegerField(null=True)  # the book's own time (exchange event, else arrival)
    recorded_ms = models.BigIntegerField()
    source = models.CharField(max_length=4, choices=Source.choices, blank=True, default="")
    gap_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=("campaign", "t_ms"), name="book_snapshot_unique")]

    def __str__(self) -> str:
        return f"book of campaign {self.campaign_id} at {self.t_ms}"


# --- Reports from executors elsewhere: signed reports pushed by the operator of an attested executor that trades
# an enrolled read-only account (docs/participants.md, "Reports from executors elsewhere") ----------------------


class ExternalReport(AppendOnlyModel):
    """One signed report of a job run by an attested executor of another operator, pushed for one enrolled
    read-only account and stored verbatim once its signature, schema and chain verified. The digest is unique
    across accounts: one executor's report scores for one account only."""

    account = models.ForeignKey(ParticipantAccount, on_delete=models.PROTECT, related_name="external_reports")
    job_id = models.CharField(max_length=128)
    sequence = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, unique=True)
    prev_digest = models.CharField(max_length=64, blank=True, default="")
    signing_key = models.CharField(max_length=64)
    window_start_ms = models.BigIntegerField()
    window_end_ms = models.BigIntegerField()
    envelope = models.TextField(help_text="The envelope's canonical JSON, as verified.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("account_id", "job_id", "sequence")
        constraints = [
            models.UniqueConstraint(
                fields=("account", "job_id", "sequence"), name="external_report_account_job_sequence_unique"
            )
        ]
        indexes = [models.Index(fields=("signing_key", "received_at"), name="external_report_key_time")]

    def __str__(self) -> str:
        return f"external report {self.job_id}#{self.sequence} of {self.account_id}"


# --- end of Reports from executors elsewhere ----------------------------------------------------------------------


# --- Payout: the reputation oracle's publication and payment of one epoch (payouts.paying; docs/scoring.md, "Payout")


class EpochPayout(models.Model):
    """One recorded epoch on its way to being paid: pending → publishing → distributing → paid, or → empty when
    nobody is paid, or → failed with a reason. Holds what the stored manifest commits to (its digest, root, total
    and number of leaves) and, once known, the publishPayout transaction; the batches hold the payments."""

    STATE_CHOICES = [(s.value, s.value) for s in PayoutState]

    close = models.OneToOneField(EpochClose, on_delete=models.PROTECT, related_name="payout")
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=PayoutState.PENDING.value)
    manifest_digest = models.CharField(max_length=64)
    merkle_root = models.CharField(
        max_length=66, blank=True, default="", help_text="0x hex; empty when nobody is paid."
    )
    total = BaseUnitsField(default=0)
    leaf_count = models.PositiveIntegerField(default=0)
    publish_tx = models.ForeignKey(
        "payouts.OracleTransaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published_tx_hash = models.CharField(max_length=66, blank=True, default="")
    published_block = models.PositiveBigIntegerField(null=True, blank=True)
    distributed_amount = BaseUnitsField(default=0, help_text="Paid by mined batches of this oracle.")
    claimed_amount = BaseUnitsField(default=0, help_text="Paid by claims (the participant's, or anyone's).")
    claimed_leaves = models.JSONField(default=list, blank=True, help_text="Indices paid by claim, ascending.")
    distributed_ranges = models.JSONField(
        default=list, blank=True, help_text="[first index, count] of every distribute on chain, by anyone."
    )
    refused_leaves = models.JSONField(
        default=list, blank=True, help_text="Indices no batch can pay (their transfer fails): left to be claimed."
    )
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=("state",))]
        ordering = ("close_id",)

    def __str__(self) -> str:
        return f"payout of {self.close} ({self.state})"


class EpochPayoutTransition(TransitionRecord):
    """The payout's timeline: every applied transition (and every batch signed, paid or refused, which changes no
    state), once per idempotency key."""

    payout = models.ForeignKey(EpochPayout, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionRecord.Meta):
        constraints = [models.UniqueConstraint(fields=("payout", "key"), name="epoch_payout_transition_key_unique")]


class PayoutBatch(models.Model):
    """One payment transaction of a payout: `distribute` of the leaves first_index … first_index + count − 1, or
    `claim` of one leaf. Created in the same database transaction as its signed transaction, so no signed nonce is
    ever left without the row that sends it; `attempt` counts earlier batches over the same first leaf that paid
    nothing (reverted because a claim came first, or parked)."""

    STATUS_CHOICES = [(s.value, s.value) for s in BatchStatus]
    KIND_CHOICES = [(k.value, k.value) for k in BatchKind]

    payout = models.ForeignKey(EpochPayout, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=BatchKind.DISTRIBUTE.value)
    first_index = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    amount = BaseUnitsField(default=0)
    attempt = models.PositiveIntegerField(default=0)
    tx = models.OneToOneField("payouts.OracleTransaction", on_delete=models.PROTECT, related_name="payout_batch")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=BatchStatus.PENDING.value)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    revert_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("payout_id", "first_index", "attempt")
        constraints = [
            models.UniqueConstraint(fields=("payout", "first_index", "attempt"), name="payout_batch_attempt_unique")
        ]
        indexes = [models.Index(fields=("payout", "status"))]

    def __str__(self) -> str:
        return f"{self.kind} {self.first_index}+{self.count} of {self.payout_id} ({self.status})"


# --- end of Payout ------------------------------------------------------------------------------------------------
