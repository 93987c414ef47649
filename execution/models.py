"""Models of the execution app: exchange accounts (encrypted credentials) and the append-only ledger."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.db import models

from execution.domain import mm_order as mm
from mrmarket.fields import BaseUnitsField


class AppendOnlyError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: record a reversal instead")

    def delete(self) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: record a reversal instead")


class AppendOnlyModel(models.Model):
    """Rows are written once (ADR 0007): corrections are new rows, never edits or deletes."""

    objects: ClassVar[Any] = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class LedgerTransaction(AppendOnlyModel):
    key = models.CharField(max_length=200, unique=True, help_text="Idempotency key from the external fact.")
    kind = models.CharField(max_length=40)
    memo = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class LedgerPosting(AppendOnlyModel):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="postings")
    account = models.CharField(max_length=200, db_index=True)
    asset = models.CharField(max_length=20)
    # Base units can exceed 64 bits (18-decimal tokens): an exact integer up to uint256.
    amount = BaseUnitsField()

    class Meta:
        ordering = ("id",)
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_posting_nonzero")]

    def __str__(self) -> str:
        return f"{self.account} {self.amount}"


class ExchangeAccount(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"

    class Role(models.TextChoices):
        READ_ONLY = "read_only", "read only (monitoring, scoring)"
        TRADING = "trading", "trading (market making; no withdrawals)"
        TREASURY = "treasury", "treasury (withdrawals back to custody)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="exchange_accounts")
    exchange = models.CharField(max_length=32, help_text="ccxt exchange id")
    label = models.CharField(max_length=64)
    # Known before insert, so the credentials can be bound to the row in the same write.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    role = models.CharField(max_length=16, choices=Role.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Envelope-encrypted credentials (execution.domain.envelope); never plaintext.
    credentials_key_id = models.CharField(max_length=32)
    # How the data key is wrapped: rows written before sealed boxes (ADR 0015) keep "aes256gcm" until re-wrapped.
    credentials_scheme = models.CharField(max_length=16, default="aes256gcm")
    credentials_wrapped_key = models.BinaryField()
    credentials_ciphertext = models.BinaryField()
    # Hex Ed25519 signature by the credentials enrolment key over the envelope and this row's binding
    # (execution.domain.envelope.row_statement): a database writer cannot vouch for credentials of their own.
    credentials_signature = models.CharField(max_length=128, blank=True, default="")
    api_key_hint = models.CharField(max_length=16, help_text="Last characters of the API key, for people.")
    permissions = models.JSONField(default=dict, blank=True, help_text="What the key can really do, as probed.")
    permissions_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("owner", "exchange", "label"), name="exchange_account_unique_label")
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.label} (…{self.api_key_hint})"

    @property
    def context(self) -> bytes:
        """Associated data binding the ciphertext to this row."""
        return f"exchange_account:{self.uid}".encode()


class MMOrder(models.Model):
    """A market-making order: funds from custody to an exchange, a job on them, and back (ADR 0006)."""

    STATE_CHOICES = [(s.value, s.value.replace("_", " ")) for s in mm.State]  # the domain enum is the truth

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mm_orders")
    exchange_account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="mm_orders")
    symbol = models.CharField(max_length=41, help_text="BASE/QUOTE as the exchange lists it")
    funding_asset = models.CharField(max_length=20)
    funding_amount = BaseUnitsField(help_text="Base units of the funding asset moved to the exchange.")
    state = models.CharField(max_length=32, choices=STATE_CHOICES, default=mm.State.CREATED.value)
    job_id = models.CharField(max_length=64, blank=True, default="")
    strategy = models.JSONField(
        default=dict, blank=True, help_text="Strategy name, parameters and risk limits asked for at creation."
    )
    job_spec = models.JSONField(null=True, blank=True, help_text="The job spec sent to the executor (wire v1).")
    executor_url = models.CharField(max_length=200, blank=True, default="")
    executor_signing_key = models.CharField(
        max_length=64, blank=True, default="", help_text="The key the job's reports must be signed with."
    )
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # The operator's requests that run in a worker, recorded with the order so that a queued task lost with the
    # broker (Redis is allowed to lose it) is queued again by the beat (`operations.mm_order_redeliver_requests`).
    fund_requested_at = models.DateTimeField(null=True, blank=True)
    withdraw_back_requested_at = models.DateTimeField(null=True, blank=True)
    withdraw_back_treasury = models.ForeignKey(
        ExchangeAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The campaign this order serves and the address its rewards go to: set at creation (both or neither),
    # never changed after, since the recording oracle pays the order's reports to this address.
    campaign_chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    campaign_address = models.CharField(max_length=42, blank=True, default="", help_text="Lower-case 0x address.")
    reward_address = models.CharField(max_length=42, blank=True, default="", help_text="Lower-case 0x address.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=("state",))]
        constraints = [
            # A campaign without a reward address (or the reverse) could be neither scored nor paid.
            models.CheckConstraint(
                condition=(
                    models.Q(campaign_chain_id__isnull=True, campaign_address="", reward_address="")
                    | (
                        models.Q(campaign_chain_id__isnull=False)
                        & ~models.Q(campaign_address="")
                        & ~models.Q(reward_address="")
                    )
                ),
                name="mm_order_campaign_and_reward_together",
            )
        ]

    def __str__(self) -> str:
        return f"MM order {self.pk} {self.symbol} ({self.state})"


class MMOrderTransition(AppendOnlyModel):
    """The order's timeline: every applied transition, once per idempotency key."""

    order = models.ForeignKey(MMOrder, on_delete=models.PROTECT, related_name="transitions")
    key = models.CharField(max_length=200, help_text="Idempotency key of the step that caused it.")
    event = models.CharField(max_length=32)
    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=("order", "key"), name="mm_order_transition_key_unique")]

    def __str__(self) -> str:
        return f"{self.from_state} --{self.event}--> {self.to_state}"


class CustodyNonce(models.Model):
    """The next nonce of a custody address on a chain, allocated under a row lock (never reused, never skipped)."""

    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    next_nonce = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("chain_id", "address"), name="custody_nonce_unique")]

    def __str__(self) -> str:
        return f"{self.chain_id}:{self.address}#{self.next_nonce}"


class CustodyTransfer(models.Model):
    """An ERC-20 transfer of an order's funds. Signed and stored before it is broadcast, so that a retry after a
    crash rebroadcasts the very same transaction (same nonce, same hash) instead of sending a second one."""

    class Status(models.TextChoices):
        SIGNED = "signed"
        BROADCAST = "broadcast"
        MINED = "mined"
        REVERTED = "reverted"
        # The chain used the nonce for a transaction that is none of our signed versions: an operator decides.
        PARKED = "parked"

    order = models.ForeignKey(MMOrder, on_delete=models.PROTECT, related_name="transfers")
    direction = models.CharField(max_length=16, default="to_exchange")
    chain_id = models.PositiveBigIntegerField()
    token = models.CharField(max_length=42)
    from_address = models.CharField(max_length=42)
    to_address = models.CharField(max_length=128)
    amount = BaseUnitsField()
    nonce = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SIGNED)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    gas_price = models.PositiveBigIntegerField(default=0, help_text="Of the version in tx_hash (wei).")
    signed_at = models.DateTimeField(null=True, blank=True, help_text="When the version in tx_hash was signed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("order", "direction"), name="custody_transfer_per_direction")]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount} {self.tx_hash}"


class CustodyTransferVersion(models.Model):
    """Every signed version of a custody transfer: the original and each replacement at a higher gas price, all
    with the same nonce, so at most one of them can ever mine. Stored before it is broadcast; the transfer's
    tx_hash is the newest version until one mines, then the one that mined."""

    transfer = models.ForeignKey(CustodyTransfer, on_delete=models.PROTECT, related_name="versions")
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.TextField()
    gas_price = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("transfer", "pk")

    def __str__(self) -> str:
        return f"{self.tx_hash} @ {self.gas_price} wei"


class ExchangeWithdrawal(models.Model):
    """One asset of an order leaving the exchange for custody, as its own state machine (ADR 0014). Recorded and
    committed in `requesting` before the exchange is asked, so that a request whose answer was lost is looked
    up in the exchange's withdrawal history (by client id where the exchange has one, else by amount, address
    and time) instead of being sent again. A failed one is final; what it left on the exchange gets a new row."""

    class Status(models.TextChoices):  # mirrors execution.domain.withdrawal.State, the truth
        REQUESTING = "requesting"
        SENT = "sent"
        CONFIRMED = "confirmed"
        FAILED = "failed"

    order = models.ForeignKey(MMOrder, on_delete=models.PROTECT, related_name="withdrawals")
    treasury_account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="+")
    client_id = models.CharField(max_length=64, unique=True, help_text="Ours, random: unique across attempts.")
    exchange_id = models.CharField(max_length=128, blank=True, default="")
    asset = models.CharField(max_length=20)
    amount = BaseUnitsField()
    fee = BaseUnitsField(default=0)
    to_address = models.CharField(max_length=42)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTING)
    sends = models.PositiveIntegerField(default=0, help_text="How many times the exchange was asked.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the exchange was last asked.")
    call_open = models.BooleanField(default=False, help_text="A withdraw() call may still be on its way.")
    failure = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One withdrawal in flight per asset of an order; failed ones stay as history.
            models.UniqueConstraint(
                fields=("order", "asset"),
                condition=models.Q(status__in=["requesting", "sent"]),
                name="withdrawal_in_flight_per_asset",
            )
        ]

    def __str__(self) -> str:
        return f"withdrawal {self.client_id} ({self.status})"


class ExecutionReport(AppendOnlyModel):
    """A signed executor report, stored verbatim (canonical JSON envelope) once it verified and chained."""

    order = models.ForeignKey(MMOrder, on_delete=models.PROTECT, related_name="reports")
    job_id = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, unique=True)
    prev_digest = models.CharField(max_length=64, blank=True, default="")
    signing_key = models.CharField(max_length=64)
    window_start_ms = models.BigIntegerField()
    window_end_ms = models.BigIntegerField()
    envelope = models.TextField(help_text="The envelope exactly as verified: canonical JSON.")
    fills = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("job_id", "sequence")
        constraints = [models.UniqueConstraint(fields=("job_id", "sequence"), name="report_job_sequence_unique")]

    def __str__(self) -> str:
        return f"report {self.job_id}#{self.sequence}"


class Alert(models.Model):
    """Something a person must look at (a reconciliation mismatch, a key that changed). Resolved, never deleted.

    `owner` is the operator the alert concerns (the owner of the order or exchange key it is about); null for a
    system alert (custody, the oracles). Acknowledging says someone is on it; resolving says the fact is gone, by a
    person (`resolved_by`) or by the rule that raised it once its condition cleared (`resolved_by` null)."""

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    kind = models.CharField(max_length=48)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.CRITICAL)
    message = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, help_text="One open alert per fact.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts",
        help_text="The operator the alert concerns; empty for a system alert.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who resolved it; empty when its rule saw the condition clear.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("dedup_key",), condition=models.Q(resolved_at__isnull=True), name="alert_open_unique"
            )
        ]
        indexes = [models.Index(fields=("owner", "resolved_at")), models.Index(fields=("kind", "resolved_at"))]

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


class AlertDelivery(models.Model):
    """One event of one alert (raised, acknowledged, resolved) on its way to the alert webhook, delivered once.

    The body is frozen when the event happens, so every attempt sends the same bytes under the same delivery id
    (`X-MrMarket-Delivery`) and a receiver can dedupe. The row is locked while an attempt is made, so two workers
    never send it at the same time; `delivered_at` set ends it, as does `abandoned_at` (attempts exhausted, or a
    receiver that refused it for good)."""

    class Event(models.TextChoices):
        RAISED = "raised"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="deliveries")
    event = models.CharField(max_length=16, choices=Event.choices)
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    body = models.TextField(help_text="The JSON body, exactly as sent.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status of the last answer.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("alert", "event"), name="alert_delivery_once_per_event")]
        indexes = [models.Index(fields=("delivered_at", "abandoned_at"))]

    def __str__(self) -> str:
        return f"{self.event} of alert {self.alert_id} ({'delivered' if self.delivered_at else 'pending'})"
