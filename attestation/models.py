"""Models of the attestation app: single-use challenge nonces and the measurement allowlist with its audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AttestationNonce(models.Model):
    """A challenge we issued; it binds one piece of evidence (REPORTDATA) and is consumed by it, once."""

    value = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=32)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"nonce {self.value[:8]}… ({self.purpose})"


class MeasurementEntry(models.Model):
    """An approved build: what an executor's TD must measure to be trusted. Removal is recorded, not deleted."""

    service = models.CharField(max_length=64, default="mm-executor")
    mrtd = models.CharField(max_length=96)
    rtmr0 = models.CharField(max_length=96, blank=True, default="")
    rtmr1 = models.CharField(max_length=96, blank=True, default="")
    rtmr2 = models.CharField(max_length=96, blank=True, default="")
    rtmr3 = models.CharField(max_length=96, blank=True, default="")
    build_version = models.CharField(max_length=64)
    source_commit = models.CharField(max_length=64)
    image_digest = models.CharField(
        max_length=71,
        blank=True,
        default="",
        help_text="The executor image's manifest digest (sha256:…) RTMR3 pins (docs/executor-image.md)",
    )
    note = models.CharField(max_length=500, blank=True, default="")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "measurement allowlist"
        constraints = [
            models.UniqueConstraint(
                fields=("service", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"),
                condition=models.Q(removed_at__isnull=True),
                name="measurement_entry_active_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.build_version} ({self.mrtd[:12]}…)"


class AllowlistAudit(models.Model):
    """Who changed the allowlist, when, and what the entry was: append-only."""

    entry = models.ForeignKey(MeasurementEntry, on_delete=models.PROTECT, related_name="audit")
    action = models.CharField(max_length=16)  # added, removed
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    snapshot = models.JSONField()

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.action} {self.entry_id} by {self.actor_id}"


FULL_UPTIME_PERMILLE = 1000


class ExecutorRecord(models.Model):
    """An executor we know (the registry): its identity as last verified, and how it has behaved."""

    class State(models.TextChoices):
        UNVERIFIED = "unverified"
        VERIFIED = "verified"
        FAILED = "failed"  # the last verification failed: its jobs were revoked, nothing routed until one passes
        UNREACHABLE = "unreachable"  # its last check got no answer: not selected; its jobs and reports stand
        REVOKED = "revoked"  # its build left the allowlist: jobs stopped, secrets wiped

    url = models.CharField(max_length=200, unique=True)
    service_id = models.CharField(max_length=64, blank=True, default="", help_text="EasyEnclave service id")
    tags = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNVERIFIED)
    signing_key = models.CharField(max_length=64, blank=True, default="")
    sealing_key = models.CharField(max_length=64, blank=True, default="")
    mrtd = models.CharField(max_length=96, blank=True, default="")
    rtmrs = models.JSONField(default=list, blank=True)
    tcb_status = models.CharField(max_length=32, blank=True, default="")
    hardware_attested = models.BooleanField(
        default=False, help_text="False when the quote chains to the dev quote authority, not Intel's root."
    )
    build_version = models.CharField(max_length=64, blank=True, default="")
    last_verified_at = models.DateTimeField(null=True, blank=True)
    verification_failures = models.PositiveIntegerField(default=0)
    reports_accepted = models.PositiveIntegerField(default=0)
    reports_refused = models.PositiveIntegerField(default=0)
    capacity_available = models.IntegerField(null=True, blank=True)
    checks_total = models.PositiveIntegerField(default=0, help_text="scheduled re-attestations attempted")
    checks_ok = models.PositiveIntegerField(default=0, help_text="…of which it answered and passed (uptime)")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"executor {self.url} ({self.state})"

    @property
    def uptime_permille(self) -> int:
        """Share of scheduled checks it passed, in ‰; 1000 before the first check (nothing held against it)."""
        if not self.checks_total:
            return FULL_UPTIME_PERMILLE
        return self.checks_ok * FULL_UPTIME_PERMILLE // self.checks_total


class CollateralDocument(models.Model):
    """A DCAP collateral document (dcap-qvl's JSON) some quote was verified with, stored once by its SHA-256: a
    platform's collateral changes about daily while its executors re-attest every few minutes."""

    sha256 = models.CharField(max_length=64, unique=True)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"collateral {self.sha256[:12]}…"


class AttestationRecord(models.Model):
    """One verification of one executor's evidence, kept whatever the outcome (append-only by convention)."""

    executor = models.ForeignKey(ExecutorRecord, on_delete=models.PROTECT, related_name="attestations")
    nonce = models.CharField(max_length=64)
    signing_key = models.CharField(max_length=64, blank=True, default="")
    sealing_key = models.CharField(max_length=64, blank=True, default="")
    quote_sha256 = models.CharField(max_length=64, blank=True, default="")
    quote_b64 = models.TextField(blank=True, default="")
    ita_token = models.TextField(blank=True, default="", help_text="Intel Trust Authority token, when one came")
    collateral = models.ForeignKey(
        "CollateralDocument",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="the DCAP collateral the quote was verified with (published as evidence)",
    )
    verified_at_unix = models.BigIntegerField(null=True, blank=True, help_text="the time the quote was verified at")
    runtime_config = models.JSONField(
        default=dict, blank=True, help_text="the runtime configuration the evidence bound (ADR 0012)"
    )
    ok = models.BooleanField()
    reason = models.CharField(max_length=64, blank=True, default="")
    detail = models.CharField(max_length=500, blank=True, default="")
    tcb_status = models.CharField(max_length=32, blank=True, default="")
    advisory_ids = models.JSONField(default=list, blank=True)
    mrtd = models.CharField(max_length=96, blank=True, default="")
    rtmrs = models.JSONField(default=list, blank=True)
    hardware_attested = models.BooleanField(default=False)
    allowlist_entry = models.ForeignKey(
        MeasurementEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="attestations"
    )
    verified_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-id",)
        indexes = [models.Index(fields=("signing_key", "ok"))]

    def __str__(self) -> str:
        return f"attestation {self.pk} of {self.executor_id}: {'ok' if self.ok else self.reason}"


class IdentityObservation(models.Model):
    """What the oracle saw of one attestation identity (a report-signing key) over one source — one epoch of one
    campaign, `<chain_id>:<address>:<epoch>` — from its own book snapshots and the exchange's records: replaced,
    not added to, each time that epoch is scored again, so the counts are never taken twice."""

    executor = models.ForeignKey(
        ExecutorRecord, on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    signing_key = models.CharField(max_length=64)
    source = models.CharField(max_length=120)
    orders_checked = models.PositiveIntegerField(default=0, help_text="(sample, order) pairs the oracle checked")
    orders_not_visible = models.PositiveIntegerField(
        default=0, help_text="…of which the oracle's own book had no level at the order's price"
    )
    fills_checked = models.PositiveIntegerField(default=0)
    fills_unconfirmed = models.PositiveIntegerField(default=0, help_text="fills the exchange's records do not show")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("signing_key", "source"), name="identity_observation_unique_source")
        ]

    def __str__(self) -> str:
        return f"observation of {self.signing_key[:12]}… in {self.source}"
