"""Models of the core: only what every app's sign-in shares (Sign-In with Ethereum nonces)."""

from __future__ import annotations

from django.db import models


class SiweNonce(models.Model):
    """A nonce we issued for one EIP-4361 message; `used_at` is set once, by the sign-in that used it."""

    value = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=("expires_at",))]

    def __str__(self) -> str:
        return f"siwe nonce {self.value[:6]}… ({'used' if self.used_at else 'open'})"
