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
