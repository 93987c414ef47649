"""Models of the core: only what every app's sign-in shares (Sign-In with Ethereum nonces)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SiweNonce(models.Model):
    """A nonce we issued for one EIP-4361 message; `used_at` is set once, by the sign-in that used it."""

    value = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # The signed-in user it was issued to, when it was: only that user's sign-in can use it, so a signed message
    # that leaks before it is used cannot be played by anyone else.
    issued_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=("expires_at",))]

    def __str__(self) -> str:
        return f"siwe nonce {self.value[:6]}… ({'used' if self.used_at else 'open'})"
