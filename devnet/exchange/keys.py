"""API keys, their permissions, and Binance's request signing (HMAC-SHA256 over the query + body, with
`timestamp` and `recvWindow`)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from enum import StrEnum

from devnet.exchange.domain.errors import ExchangeError

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
MAX_AHEAD_MS = 1_000  # Binance refuses timestamps more than a second ahead of its clock


class Permission(StrEnum):
    READ = "read"  # always granted: every Binance key can read
    TRADE = "trade"  # "Enable Spot & Margin Trading"
    WITHDRAW = "withdraw"  # "Enable Withdrawals"


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str
    account_id: str
    permissions: frozenset[Permission]
    created_ms: int

    def can(self, permission: Permission) -> bool:
        return permission is Permission.READ or permission in self.permissions

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey({self.key[:8]}…, account={self.account_id}, permissions={sorted(self.permissions)})"


def bad_key_format() -> ExchangeError:
    return ExchangeError(-2014, "API-key format invalid.", http_status=401)


def invalid_key() -> ExchangeError:
    return ExchangeError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)


def bad_signature() -> ExchangeError:
    return ExchangeError(-1022, "Signature for this request is not valid.")


class KeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def create(self, account_id: str, permissions: frozenset[Permission], *, now_ms: int) -> ApiKey:
        # Binance keys and secrets are 64 alphanumeric characters.
        key = ApiKey(secrets.token_hex(32), secrets.token_hex(32), account_id, permissions, now_ms)
        with self._lock:
            self._keys[key.key] = key
        return key

    def update_permissions(self, key: str, permissions: frozenset[Permission]) -> ApiKey:
        """What a user does in the exchange's key settings: the same key, other rights."""
        with self._lock:
            updated = dataclasses.replace(self._keys[key], permissions=permissions)
            self._keys[key] = updated
        return updated

    def delete(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def get(self, key: str | None) -> ApiKey | None:
        if not key:
            return None
        with self._lock:
            return self._keys.get(key)

    def authenticate(self, header_key: str | None) -> ApiKey:
        if not header_key or len(header_key) > 128 or not header_key.isalnum():
            raise bad_key_format()
        api_key = self.get(header_key)
        if api_key is None:
            raise invalid_key()
        return api_key


def split_signature(payload: str) -> tuple[str, str | None]:
    """(what was signed, the signature): Binance signs everything before `&signature=`."""
    marker = "signature="
    if payload.startswith(marker):
        return "", payload[len(marker) :]
    idx = payload.rfind("&" + marker)
    if idx < 0:
        return payload, None
    return payload[:idx], payload[idx + len(marker) + 1 :]


def verify(
    api_key: ApiKey, *, signed: str, signature: str | None, timestamp: str | None, recv_window: str | None, now_ms: int
) -> None:
    """Raise Binance's error for a missing/invalid timestamp, a bad recvWindow, a stale request or a bad signature."""
    if signature is None:
        raise ExchangeError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    if timestamp is None or not timestamp.isdigit():
        raise ExchangeError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    window = DEFAULT_RECV_WINDOW
    if recv_window is not None:
        if not recv_window.isdigit():
            raise ExchangeError(-1100, "Illegal characters found in parameter 'recvWindow'.")
        window = int(recv_window)
        if window > MAX_RECV_WINDOW:
            raise ExchangeError(-1131, "recvWindow must be less than 60000")
    ts = int(timestamp)
    if ts > now_ms + MAX_AHEAD_MS:
        raise ExchangeError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - ts > window:
        raise ExchangeError(-1021, "Timestamp for this request is outside of the recvWindow.")
    expected = hmac.new(api_key.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise bad_signature()
