"""wire.redaction: secret-named entries at any depth, and registered secret values anywhere in text."""

from __future__ import annotations

import traceback
from collections import Counter

import pytest

from wire import redaction
from wire.redaction import REDACTED, redact, redact_event, redact_text, register_secret


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Start from no registered secret; what the process registered before comes back afterwards.
    monkeypatch.setattr(redaction, "_secrets", Counter())
    monkeypatch.setattr(redaction, "_pattern", None)


def test_secret_named_entries_are_replaced_at_any_depth() -> None:
    event = {
        "event": "enrolled",
        "account": {"exchange": "binance", "credentials": {"api_key": "k", "secret": "s"}},
        "attempts": [{"Authorization": "Bearer abc"}, ({"x-api-key": "v", "count": 2},)],
        "password": None,
    }
    assert redact_event(event) == {
        "event": "enrolled",
        "account": {"exchange": "binance", "credentials": REDACTED},
        "attempts": [{"Authorization": REDACTED}, ({"x-api-key": REDACTED, "count": 2},)],
        "password": None,
    }


def test_registered_values_are_masked_in_any_string_under_any_name() -> None:
    register_secret("canary-secret-0123456789")
    event = {"event": "retry", "detail": {"why": ["the exchange said: bad sig for canary-secret-0123456789!"]}}
    assert redact_event(event)["detail"] == {"why": [f"the exchange said: bad sig for {REDACTED}!"]}


def test_a_rendered_traceback_is_masked() -> None:
    register_secret("canary-secret-0123456789")
    try:
        raise ValueError("signature with canary-secret-0123456789 refused")
    except ValueError:
        text = traceback.format_exc()
    assert "canary-secret-0123456789" not in redact_text(text)
    assert f"signature with {REDACTED} refused" in redact_text(text)


def test_bytes_secrets_are_masked_in_their_usual_spellings() -> None:
    key = bytes(range(32))
    register_secret(key)
    import base64

    for spelling in (key.hex(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
        assert redact_text(f"key={spelling};") == f"key={REDACTED};"


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("abcdefgh12", "abcdefgh12345678")
    assert redact_text("x abcdefgh12345678 y abcdefgh12 z") == f"x {REDACTED} y {REDACTED} z"


def test_short_values_are_not_registered_and_urls_lose_their_password() -> None:
    register_secret("short", "", None)
    assert not redaction._secrets
    assert redact_text("redis://:hunter2@redis:6379/0 and postgres://app:pw@db/x") == (
        f"redis://:{REDACTED}@redis:6379/0 and postgres://app:{REDACTED}@db/x"
    )


def test_other_objects_are_rendered_and_masked() -> None:
    register_secret("canary-secret-0123456789")

    class Holder:
        def __repr__(self) -> str:
            return "Holder(canary-secret-0123456789)"

    assert redact({"obj": Holder()}) == {"obj": f"Holder({REDACTED})"}


def test_deep_structures_are_cut_not_followed_forever() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(100):
        node["next"] = {}
        node = node["next"]  # type: ignore[assignment]
    out = redact(deep)
    depth = 0
    while isinstance(out, dict):
        out = out["next"]
        depth += 1
    assert out == REDACTED
    assert depth < 40


def test_a_forgotten_secret_is_no_longer_held_unless_another_holder_registered_it() -> None:
    register_secret("job-a-secret-123", "shared-secret-456")
    register_secret("shared-secret-456")  # a second job on the same key
    redaction.forget_secret("job-a-secret-123", "shared-secret-456")  # the first job wipes its key
    assert "job-a-secret-123" not in redaction._secrets  # the registry keeps no copy of a wiped key
    assert redact_text("shared-secret-456") == REDACTED  # still held by the other job: still masked
    redaction.forget_secret("shared-secret-456")
    assert not redaction._secrets
    redaction.forget_secret("never-registered-789")  # forgetting twice, or what was never held, is harmless
