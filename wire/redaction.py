"""Redaction of secrets from whatever a process writes out (logs, error texts): one pure function shared by
Django and the executor.

Two rules. By name: a mapping entry whose key names a secret (password, api_key, token, …) is replaced, at any
depth of dicts, lists and tuples. By value: a process registers the plaintext secrets it holds (an exchange
secret it was handed, its own keys); every occurrence of one in any string, a rendered traceback included, is
masked, so a secret that travels under an innocent name or inside an exception message still never leaves.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"

# Substrings of a key name that mark its value as secret (compared lower-case, `-` read as `_`).
SECRET_KEY_MARKERS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "token",
    "authorization",
    "cookie",
    "credential",
    "mnemonic",
    "seed",
    "signing_key",
    "master_key",
    "sealed",
)
# Registered values shorter than this are not masked in free text: they would blot out ordinary words and
# digits, and a secret that short is not protected by masking anyway.
MIN_SECRET_LENGTH = 8
_MAX_DEPTH = 32
# user:password@ in any URL written out.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")

_lock = threading.Lock()
# How many holders registered each form: a job that wipes its key forgets it, another job holding the same key
# keeps it masked.
_secrets: Counter[str] = Counter()
_pattern: re.Pattern[str] | None = None


def is_secret_key(key: object) -> bool:
    lowered = str(key).lower().replace("-", "_")
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def _forms(value: str | bytes) -> set[str]:
    """The ways a secret is commonly written: as given, and for bytes their hex and base64 spellings."""
    if isinstance(value, bytes):
        forms = {value.hex(), base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode()}
        forms |= {f.rstrip("=") for f in forms}
        with contextlib.suppress(UnicodeDecodeError):
            forms.add(value.decode())
    else:
        forms = {value, value.strip()}
        if value.lower().startswith("0x"):
            forms.add(value[2:])
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _recompile() -> None:
    global _pattern
    # Longest first, so that a secret containing another is masked whole.
    ordered = sorted((s for s, n in _secrets.items() if n > 0), key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


def _all_forms(values: tuple[str | bytes | None, ...]) -> set[str]:
    forms: set[str] = set()
    for value in values:
        if value:
            forms |= _forms(value)
    return forms


def register_secret(*values: str | bytes | None) -> None:
    """Mask these values wherever they appear from now on in this process (until as many `forget_secret`)."""
    forms = _all_forms(values)
    if not forms:
        return
    with _lock:
        _secrets.update(forms)
        _recompile()


def forget_secret(*values: str | bytes | None) -> None:
    """The holder that registered these values no longer holds them (a wiped key): stop masking them, unless
    another holder registered them too. The registry keeps no plaintext longer than the process does."""
    forms = _all_forms(values)
    if not forms:
        return
    with _lock:
        for form in forms:
            if _secrets.get(form, 0) <= 1:
                _secrets.pop(form, None)
            else:
                _secrets[form] -= 1
        _recompile()


def redact_text(text: str) -> str:
    """The text with every registered secret and every URL password masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return text


def redact(value: Any, *, _depth: int = 0) -> Any:
    """A copy of `value` with secret-named entries replaced and registered secrets masked in every string.
    Dicts, lists and tuples are walked; other objects are rendered with repr() first, since that is what a
    JSON log renderer would write out for them."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(k) and v is not None else redact(v, _depth=_depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, tuple):
        return tuple(redact(v, _depth=_depth + 1) for v in value)
    if isinstance(value, (list, set, frozenset)):
        return [redact(v, _depth=_depth + 1) for v in value]
    return redact_text(repr(value))


def redact_event(event: Mapping[str, Any], *, keep: Iterable[str] = ()) -> dict[str, Any]:
    """A log event (a structlog event dict) redacted; the `keep` keys pass untouched (internal markers)."""
    kept = set(keep)
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in kept:
            out[key] = value
        elif is_secret_key(key) and value is not None:
            out[key] = REDACTED
        else:
            out[key] = redact(value, _depth=1)
    return out
