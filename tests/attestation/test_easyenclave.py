"""The EasyEnclave client against the control-plane stand-in: the control plane is verified
first (our nonce in its quote, the dev root, its own allowlist entry), discovery is by name and tags and leaves
unhealthy services out, answers are cached, and a failed control-plane verification blocks discovery and
routing — each failure with its own reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from django.core.cache import cache

from attestation import easyenclave, services
from attestation.easyenclave import (
    CONTROL_PLANE_SERVICE,
    ControlPlaneUnverified,
    EasyEnclaveBadResponse,
    EasyEnclaveClient,
    EasyEnclaveInsecureUrl,
    EasyEnclaveUnavailable,
)
from devnet.easyenclave.app import ControlPlane, ControlPlaneConfig, Faults, build_control_plane_app
from devnet.serving import serve_in_thread
from devnet.tdx.authority import DevQuoteAuthority
from execution.errors import RoutingRefused
from tests.attestation.test_gate import PINNED_RTMRS
from tests.factories import user_with

pytestmark = pytest.mark.django_db
CP_MRTD = bytes([7]) * 48
EXECUTOR_MRTD = bytes(range(48))


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture(scope="module")
def executor_health() -> Iterator[str]:
    """Something that answers GET /v1/health like an executor."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/health", health)
    with serve_in_thread(app, name="fake-executor") as served:
        yield served.url


@pytest.fixture
def control_plane(authority: DevQuoteAuthority) -> Iterator[tuple[ControlPlane, str]]:
    cp = ControlPlane(ControlPlaneConfig(mrtd=CP_MRTD, health_path="/v1/health", health_interval=0.1), authority)
    with serve_in_thread(build_control_plane_app(cp), name="easyenclave") as served:
        yield cp, served.url


@pytest.fixture
def trusted(settings, tmp_path: Path, authority: DevQuoteAuthority, control_plane: tuple[ControlPlane, str]) -> str:
    root, collateral = tmp_path / "root.der", tmp_path / "collateral.json"
    root.write_bytes(authority.root_ca_der)
    collateral.write_text(authority.collateral_json(now=int(time.time())))
    settings.ATTESTATION_DEV_ROOT_CA_FILE = str(root)
    settings.ATTESTATION_COLLATERAL_FILE = str(collateral)
    settings.ATTESTATION_TCB_ALLOWED = ["UpToDate"]
    settings.EASYENCLAVE_URL = control_plane[1]
    settings.EASYENCLAVE_ENVIRONMENT = "devnet"
    settings.EASYENCLAVE_TAGS = []
    settings.EASYENCLAVE_VERIFY_SECONDS = 300
    settings.EASYENCLAVE_CACHE_SECONDS = 30
    actor = user_with().pk
    services.allowlist_add(
        actor_id=actor,
        mrtd=CP_MRTD.hex(),
        rtmrs=PINNED_RTMRS,
        build_version="cp-1",
        source_commit="829f8a9",
        service=CONTROL_PLANE_SERVICE,
    )
    services.allowlist_add(
        actor_id=actor, mrtd=EXECUTOR_MRTD.hex(), rtmrs=PINNED_RTMRS, build_version="1.0.0", source_commit="c0ffee"
    )
    cache.clear()
    return control_plane[1]


def register(cp: ControlPlane, url: str, *tags: str, name: str = "mm-executor") -> str:
    body = {"name": name, "endpoints": {"devnet": url}, "mrtd": EXECUTOR_MRTD.hex(), "tags": list(tags)}
    return cp.register(body).service_id


def wait_health(cp: ControlPlane, service_id: str, status: str) -> None:
    for _ in range(100):
        if cp.services[service_id].health_status == status:
            return
        time.sleep(0.05)
    pytest.fail(f"{service_id} never became {status}")


def test_discovery_after_verification_by_name_tags_and_health(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str
) -> None:
    cp, _ = control_plane
    good = register(cp, executor_health, "exchange:binance", "region:eu")
    register(cp, executor_health.replace("127.0.0.1", "localhost"), "exchange:okx")
    dead = register(cp, "http://127.0.0.1:9", "exchange:binance")  # nothing listens: becomes unhealthy
    register(cp, executor_health, "exchange:binance", name="something-else")
    wait_health(cp, good, "healthy")
    wait_health(cp, dead, "unhealthy")

    found = EasyEnclaveClient().discover(tags=("exchange:binance",))
    assert [(s.service_id, s.url, s.health_status) for s in found] == [(good, executor_health, "healthy")]
    assert found[0].tags == ("exchange:binance", "region:eu")
    assert EasyEnclaveClient().discover(tags=("exchange:binance", "region:us")) == []
    assert cp.requests["GET /api/v1/attestation"] == 1  # verified once, then trusted for the TTL
    assert easyenclave.discovered_executor_urls(exchange="binance") == [executor_health]


def test_discovery_answers_are_cached_for_their_ttl(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, settings
) -> None:
    cp, _ = control_plane
    register(cp, executor_health, "exchange:binance")
    client = EasyEnclaveClient()
    client.discover()
    client.discover()
    assert cp.requests["GET /api/v1/services"] == 1
    settings.EASYENCLAVE_CACHE_SECONDS = 0  # nothing cached from now on
    cache.clear()
    client.discover()
    client.discover()
    assert cp.requests["GET /api/v1/services"] == 3


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (Faults(quote_other_nonce=True), "report_data_mismatch"),
        (Faults(answer_other_nonce=True), "wrong_nonce"),
        (Faults(other_mrtd=bytes([9]) * 48), "unknown_measurement"),
        (Faults(quote_other_key=True), "report_data_mismatch"),  # the key it names is not the one its quote binds
    ],
)
def test_a_control_plane_that_fails_attestation_blocks_discovery(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, faults: Faults, reason: str
) -> None:
    cp, _ = control_plane
    register(cp, executor_health, "exchange:binance")
    cp.faults = faults
    with pytest.raises(ControlPlaneUnverified) as caught:
        EasyEnclaveClient().discover()
    assert caught.value.reason == reason
    assert cp.requests["GET /api/v1/services"] == 0  # never asked where executors are
    with pytest.raises(ControlPlaneUnverified):  # a failure is not cached as a pass: checked again, fails again
        EasyEnclaveClient().discover()
    assert cp.requests["GET /api/v1/attestation"] == 2
    cp.faults = Faults()
    assert len(EasyEnclaveClient().discover()) == 1


def test_a_control_plane_under_an_unknown_root_is_refused(
    trusted: str, control_plane: tuple[ControlPlane, str], settings
) -> None:
    settings.ATTESTATION_DEV_ROOT_CA_FILE = ""  # only Intel's root: the dev control plane's quote cannot chain to it
    with pytest.raises(ControlPlaneUnverified) as caught:
        EasyEnclaveClient().verify_control_plane()
    assert caught.value.reason == "untrusted_root"
    assert control_plane[0].requests["GET /api/v1/services"] == 0


def test_the_control_plane_nonce_is_single_use(trusted: str, control_plane: tuple[ControlPlane, str]) -> None:
    from attestation.errors import NonceReused
    from attestation.models import AttestationNonce

    EasyEnclaveClient().verify_control_plane()
    used = AttestationNonce.objects.get(purpose=easyenclave.NONCE_PURPOSE)
    assert used.consumed_at is not None
    with pytest.raises(NonceReused):
        services.nonce_consume(value=used.value, purpose=easyenclave.NONCE_PURPOSE)


def test_an_unreachable_control_plane_is_unavailable_not_trusted(trusted: str, settings) -> None:
    settings.EASYENCLAVE_URL = "http://127.0.0.1:9"
    with pytest.raises(EasyEnclaveUnavailable, match="did not answer"):
        EasyEnclaveClient().discover()


def test_a_malformed_answer_is_refused(trusted: str, settings, authority: DevQuoteAuthority) -> None:
    async def attestation(request: web.Request) -> web.Response:
        return web.json_response({"nonce": request.query["nonce"]})  # no quote

    app = web.Application()
    app.router.add_get("/api/v1/attestation", attestation)
    with serve_in_thread(app, name="bad-easyenclave") as served:
        settings.EASYENCLAVE_URL = served.url
        with pytest.raises(EasyEnclaveBadResponse, match="lacks nonce, signing_key or quote_b64"):
            EasyEnclaveClient().verify_control_plane()


def test_routing_is_refused_while_the_control_plane_fails(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, settings
) -> None:
    from execution.provisioning import pick_executor

    cp, _ = control_plane
    register(cp, executor_health, "exchange:binance")
    settings.EXECUTOR_URLS = []
    assert pick_executor(exchange="binance") == executor_health
    cache.clear()
    cp.faults = Faults(quote_other_nonce=True)
    with pytest.raises(RoutingRefused) as caught:
        pick_executor(exchange="binance")
    assert caught.value.extra["reason"] == "report_data_mismatch"
    settings.EXECUTOR_URLS = ["http://configured.example"]  # configured executors do not bypass the refusal
    with pytest.raises(RoutingRefused):
        pick_executor(exchange="binance")


def test_registration_is_validated_by_the_stand_in(control_plane: tuple[ControlPlane, str]) -> None:
    import httpx

    _, url = control_plane
    bad = httpx.post(url + "/api/v1/register", json={"name": "x", "endpoints": {"devnet": "ftp://nope"}})
    assert bad.status_code == 422
    assert "endpoints" in bad.json()["detail"]
    ok = httpx.post(url + "/api/v1/register", json={"name": "x", "endpoints": {"devnet": "http://a"}, "tags": ["t"]})
    again = httpx.post(url + "/api/v1/register", json={"name": "x", "endpoints": {"devnet": "http://a"}})
    assert ok.json()["service_id"] == again.json()["service_id"]
    service_id = ok.json()["service_id"]
    assert httpx.get(f"{url}/api/v1/services/{service_id}").json()["name"] == "x"
    assert httpx.delete(f"{url}/api/v1/services/{service_id}").status_code == 200
    assert httpx.get(f"{url}/api/v1/services/{service_id}").status_code == 404
    assert httpx.get(url + "/api/v1/attestation", params={"nonce": "x" * 65}).status_code == 422


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (Faults(discovery_unsigned=True), "discovery_unsigned"),
        (Faults(discovery_forged=True), "discovery_bad_signature"),  # signed, but not by the key its quote bound
        (Faults(discovery_tampered=True), "discovery_bad_signature"),  # a hostile executor slipped in after signing
    ],
)
def test_a_service_list_not_signed_by_the_attested_key_is_refused(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, faults: Faults, reason: str
) -> None:
    cp, _ = control_plane
    register(cp, executor_health, "exchange:binance")
    cp.faults = faults
    with pytest.raises(ControlPlaneUnverified) as caught:
        easyenclave.discovered_executor_urls(exchange="binance")
    assert caught.value.reason == reason
    assert cache.get(EasyEnclaveClient()._verdict_key()) is None  # the verdict is dropped with the refusal
    from attestation.models import ExecutorRecord

    assert not ExecutorRecord.objects.exists()  # nothing of the answer reached the registry


def test_a_replayed_service_list_is_refused(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, settings
) -> None:
    """A genuine, signed answer to an earlier request (say, before an executor was deregistered) is not this one's."""
    cp, _ = control_plane
    settings.EASYENCLAVE_CACHE_SECONDS = 0
    register(cp, executor_health, "exchange:binance")
    assert len(EasyEnclaveClient().discover()) == 1
    cp.faults = Faults(discovery_replayed=True)
    with pytest.raises(ControlPlaneUnverified) as caught:
        EasyEnclaveClient().discover()
    assert caught.value.reason == "discovery_wrong_nonce"


def test_a_signed_answer_to_another_query_is_refused(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, settings, monkeypatch
) -> None:
    cp, _ = control_plane
    register(cp, executor_health, "exchange:binance")
    answer = cp.discovery

    def widened(query: dict[str, str]) -> dict[str, object]:
        return answer({k: v for k, v in query.items() if k != "tags"})  # drops the tags we asked for

    monkeypatch.setattr(cp, "discovery", widened)
    with pytest.raises(ControlPlaneUnverified) as caught:
        EasyEnclaveClient().discover(tags=("exchange:okx",))
    assert caught.value.reason == "discovery_wrong_query"


def test_a_restarted_control_plane_is_verified_again_before_its_list_is_used(
    trusted: str, control_plane: tuple[ControlPlane, str], executor_health: str, settings
) -> None:
    from wire.keys import SigningKey

    cp, _ = control_plane
    settings.EASYENCLAVE_CACHE_SECONDS = 0
    register(cp, executor_health, "exchange:binance")
    EasyEnclaveClient().discover()
    cp.key = SigningKey.generate()  # a new boot, a new key: the cached verdict names the old one
    assert len(EasyEnclaveClient().discover()) == 1
    assert cp.requests["GET /api/v1/attestation"] == 2
    assert EasyEnclaveClient().cached_verdict().signing_key == cp.key.public_hex  # type: ignore[union-attr]


def test_a_plain_http_control_plane_is_refused_outside_dev(
    trusted: str, control_plane: tuple[ControlPlane, str], settings
) -> None:
    settings.EASYENCLAVE_ALLOW_HTTP = False
    with pytest.raises(EasyEnclaveInsecureUrl, match="https"):
        easyenclave.discovered_executor_urls(exchange="binance")
    assert sum(control_plane[0].requests.values()) == 0  # not even asked for its attestation
    settings.EASYENCLAVE_URL = "ftp://easyenclave.example"
    settings.EASYENCLAVE_ALLOW_HTTP = True
    with pytest.raises(EasyEnclaveInsecureUrl):
        EasyEnclaveClient()


@pytest.mark.parametrize("env", [{"EASYENCLAVE_URL": "http://easyenclave.example"}, {"EASYENCLAVE_ALLOW_HTTP": "true"}])
def test_the_prod_profile_refuses_a_plain_http_control_plane(env: dict[str, str]) -> None:
    from tests.core.test_config import prod_env, run_manage

    result = run_manage("check", env=prod_env(**env))
    assert result.returncode == 2
    assert "EasyEnclave control plane over https only" in result.stderr


def test_the_stand_in_signs_for_a_nonce_and_answers_a_browser_unsigned(
    control_plane: tuple[ControlPlane, str],
) -> None:
    import httpx

    from wire.control_plane import SIGNATURE_TAG, signed_payload
    from wire.keys import verify_signature

    cp, url = control_plane
    browsing = httpx.get(url + "/api/v1/services", params={"name": "mm-executor"}).json()
    assert "signature" not in browsing  # what the client refuses (discovery_unsigned)
    signed = httpx.get(url + "/api/v1/services", params={"name": "mm-executor", "nonce": "ab" * 32}).json()
    assert (signed["nonce"], signed["query"]) == ("ab" * 32, {"name": "mm-executor"})
    verify_signature(cp.key.public_hex, signed_payload(signed), signed["signature"], tag=SIGNATURE_TAG)
    assert httpx.get(url + "/api/v1/services", params={"nonce": "ab"}).status_code == 422


def test_the_beat_verification_keeps_the_control_plane_verdict_current(
    trusted: str, control_plane: tuple[ControlPlane, str]
) -> None:
    from attestation import health as attestation_health
    from attestation import tasks

    cp, _ = control_plane
    assert attestation_health.check_easyenclave()[0] == "fail"  # nothing verified it yet
    tasks.verify_control_plane()
    state, detail = attestation_health.check_easyenclave()
    assert (state, detail.startswith("control plane verified")) == ("ok", True)
    assert cp.requests["GET /api/v1/services"] == 0  # verification only: nothing discovered
    cp.faults = Faults(answer_other_nonce=True)
    tasks.verify_control_plane()  # logged, never raised: beat goes on
    assert attestation_health.check_easyenclave()[0] == "fail"  # a failure is never cached as a pass


def test_the_control_plane_is_verified_again_before_its_verdict_lapses(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["attestation-verify-control-plane"]
    assert entry["task"] == "attestation.verify_control_plane"
    assert entry["schedule"] <= settings.EASYENCLAVE_VERIFY_SECONDS / 2
