"""The cache stores JSON, never pickle (a write to Redis must not become code run in the web process); every
response carries the Content-Security-Policy."""

from __future__ import annotations

import pickle

import pytest
from django.core.cache import cache
from django.test import Client

from attestation.easyenclave import ControlPlaneVerdict, DiscoveredService
from mrmarket.cache import CacheSerializationError, JSONSerializer, loads
from mrmarket.redis import get_redis

RAN: list[str] = []


def _ran() -> None:
    RAN.append("unpickled")


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_ran, ())


def test_a_pickle_planted_in_redis_is_never_unpickled() -> None:
    cache.set("planted", "harmless")
    raw_key = cache.make_and_validate_key("planted")
    get_redis().set(raw_key, pickle.dumps(Exploit()))
    assert cache.get("planted") is None  # not JSON: a cache miss
    assert RAN == []
    cache.delete("planted")


def test_cached_values_round_trip_as_json() -> None:
    verdict = ControlPlaneVerdict("https://ee.example", 1.5, "ab" * 48, "UpToDate", True, "ef" * 32)
    service = DiscoveredService("s1", "executor", "https://x.example", ("a", "b"), "cd" * 48, "abc", "healthy")
    values = {"n": 3, "f": 1.25, "s": "text", "l": [1, "2"], "t": ("x", 1), "d": {"k": [True, None]}}
    for key, value in {"verdict": verdict, "services": [service], **values}.items():
        cache.set(f"json-{key}", value)
        assert cache.get(f"json-{key}") == value
        cache.delete(f"json-{key}")
    cache.set("json-counter", 1)  # integers stay raw, so that Redis can count
    assert cache.incr("json-counter") == 2
    cache.delete("json-counter")


def test_unknown_types_are_refused_both_ways() -> None:
    serializer = JSONSerializer()
    with pytest.raises(CacheSerializationError):
        serializer.dumps(object())
    planted = b'{"__type__": "os.system", "fields": {"command": "true"}}'
    with pytest.raises(CacheSerializationError):
        loads(planted)  # the decoder never imports a type outside the allowlist…
    assert serializer.loads(planted) is None  # …and the cache reads such an entry as a miss


@pytest.mark.django_db
def test_responses_carry_the_content_security_policy(client: Client) -> None:
    header = client.get("/healthz").headers["Content-Security-Policy"]
    assert "default-src 'self'" in header
    assert "script-src 'self'" in header
    assert "frame-ancestors 'none'" in header
    assert "unsafe-inline" not in header


@pytest.mark.parametrize(
    "planted",
    [
        b'{"__type__": "os.system", "fields": {"command": "true"}}',  # a type outside the allowlist
        b'{"__type__": "attestation.easyenclave.ControlPlaneVerdict", "fields": {"bogus": 1}}',  # wrong fields
    ],
)
def test_a_planted_json_entry_is_a_miss_not_an_error(planted: bytes) -> None:
    cache.set("planted-json", "harmless")
    get_redis().set(cache.make_and_validate_key("planted-json"), planted)
    assert cache.get("planted-json") is None
    cache.delete("planted-json")
