"""DCAP collateral from a PCCS: the production path — `ATTESTATION_PCCS_URL`, dcap-qvl's own
fetch, a cache per platform until `nextUpdate`, a beat refresh that keeps the old copy when the PCCS is down —
run against the devnet's PCCS stand-in serving the dev authority's collateral."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from django.core.cache import cache

from attestation import collateral, gate, services
from attestation.collateral import CollateralUnavailable
from attestation.models import AttestationRecord
from attestation.tasks import refresh_collateral
from devnet.serving import Served, serve_in_thread
from devnet.tdx.authority import DevQuoteAuthority
from devnet.tdx.pccs import build_pccs_app
from tests.attestation.test_gate import MRTD, PINNED_RTMRS, FakeExecutor
from tests.factories import user_with

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture(scope="module")
def pccs(authority: DevQuoteAuthority) -> Iterator[Served]:
    with serve_in_thread(build_pccs_app(authority), name="pccs") as served:
        yield served


def fetches(pccs: Served) -> dict[str, int]:
    with urllib.request.urlopen(pccs.url + "/_devnet/pccs/requests", timeout=5) as response:
        return dict(json.loads(response.read()))


@pytest.fixture
def via_pccs(settings, tmp_path: Path, authority: DevQuoteAuthority, pccs: Served) -> DevQuoteAuthority:
    root = tmp_path / "dev-root.der"
    root.write_bytes(authority.root_ca_der)
    settings.ATTESTATION_DEV_ROOT_CA_FILE = str(root)
    settings.ATTESTATION_COLLATERAL_FILE = ""
    settings.ATTESTATION_PCCS_URL = pccs.url
    settings.ATTESTATION_PCCS_TIMEOUT_SECONDS = 2.0
    settings.ATTESTATION_TCB_ALLOWED = ["UpToDate"]
    services.allowlist_add(
        actor_id=user_with().pk, mrtd=MRTD.hex(), rtmrs=PINNED_RTMRS, build_version="1.0.0", source_commit="c0ffee"
    )
    cache.clear()
    return authority


def test_collateral_is_fetched_from_the_pccs_once_and_then_cached(via_pccs: DevQuoteAuthority, pccs: Served) -> None:
    before = fetches(pccs).get("tcb", 0)
    identity = gate.attested_identity(FakeExecutor(via_pccs))
    assert identity.attested
    assert fetches(pccs)["tcb"] == before + 1
    gate.attested_identity(FakeExecutor(via_pccs))  # same platform: the cached copy answers
    assert fetches(pccs)["tcb"] == before + 1
    assert AttestationRecord.objects.filter(ok=True).count() == 2


def test_the_cache_lives_until_next_update_at_most_a_day(via_pccs: DevQuoteAuthority) -> None:
    now = int(time.time())
    assert collateral.seconds_left(via_pccs.collateral_json(now=now)) == collateral.MAX_CACHE_SECONDS
    soon = via_pccs.collateral_json(now=now - 30 * 86_400 + 600)  # nextUpdate in ten minutes
    assert 590 <= collateral.seconds_left(soon) <= 600
    assert collateral.seconds_left(via_pccs.collateral_json(now=now - 40 * 86_400)) == 0
    assert collateral.seconds_left("{}") == 0


def test_a_pccs_that_is_down_refuses_verification_with_a_clear_reason(via_pccs: DevQuoteAuthority, settings) -> None:
    settings.ATTESTATION_PCCS_URL = "http://127.0.0.1:9"  # nothing listens
    with pytest.raises(gate.AttestationFailed) as caught:
        gate.attested_identity(FakeExecutor(via_pccs))
    assert caught.value.code == "collateral_unavailable"
    assert "did not give collateral" in caught.value.message
    assert not AttestationRecord.objects.filter(ok=True).exists()


def test_a_pccs_that_hangs_times_out(via_pccs: DevQuoteAuthority, settings) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    settings.ATTESTATION_PCCS_TIMEOUT_SECONDS = 0.5
    quote = via_pccs.quote(bytes(64), mrtd=MRTD)
    with serve_in_thread(app, name="hanging-pccs") as hanging:
        settings.ATTESTATION_PCCS_URL = hanging.url
        started = time.monotonic()
        with pytest.raises(CollateralUnavailable, match=r"did not answer within 0\.5 s"):
            collateral.collateral_json(quote)
        assert time.monotonic() - started < 5


def test_beat_refresh_fetches_again_and_keeps_the_old_copy_when_the_pccs_is_down(
    via_pccs: DevQuoteAuthority, pccs: Served, settings
) -> None:
    gate.attested_identity(FakeExecutor(via_pccs))
    record = AttestationRecord.objects.get(ok=True)
    quote = base64.b64decode(record.quote_b64)
    key = collateral.platform_key(quote)
    first = cache.get(key)
    assert first is not None
    before = fetches(pccs)["tcb"]
    refresh_collateral()
    assert fetches(pccs)["tcb"] == before + 1
    assert cache.get(key) is not None
    settings.ATTESTATION_PCCS_URL = "http://127.0.0.1:9"
    outcome = collateral.refresh(quote)
    assert not outcome.ok
    assert outcome.seconds_left > 0
    assert "did not give collateral" in outcome.error
    refresh_collateral()  # logs and carries on
    assert cache.get(key) is not None  # the cached copy still answers
    assert gate.attested_identity(FakeExecutor(via_pccs)).attested


def test_refresh_does_nothing_with_a_collateral_file(via_pccs: DevQuoteAuthority, pccs: Served, settings) -> None:
    gate.attested_identity(FakeExecutor(via_pccs))
    settings.ATTESTATION_COLLATERAL_FILE = "/nonexistent"
    before = fetches(pccs)["tcb"]
    refresh_collateral()
    assert fetches(pccs)["tcb"] == before


def test_collateral_past_its_next_update_is_never_cached(via_pccs: DevQuoteAuthority, settings) -> None:
    stale_pccs = build_pccs_app(via_pccs, clock=lambda: time.time() - 40 * 86_400)  # a PCCS serving old collateral
    quote = via_pccs.quote(bytes(64), mrtd=MRTD)
    with serve_in_thread(stale_pccs, name="stale-pccs") as served:
        settings.ATTESTATION_PCCS_URL = served.url
        with pytest.raises(CollateralUnavailable, match="already past its nextUpdate"):
            collateral.collateral_json(quote)
    assert cache.get(collateral.platform_key(quote)) is None
