"""Intel Trust Authority tokens at the gate: token-only evidence, a token next to a quote, and the JWKS fetched from
ITA's `/certs` (the devnet stand-in) — cached, refetched once on key rotation, never flooded by unknown kids.
Each refusal has its own reason and is recorded."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache

from attestation import gate
from attestation.models import AttestationRecord
from attestation.proof import build_proof
from devnet.ita.app import build_ita_app
from devnet.ita.authority import DevTokenAuthority, sign_jwt
from devnet.serving import Served, serve_in_thread
from devnet.tdx.authority import DevQuoteAuthority
from executor.identity import Identity
from tests.attestation.runtime import bound, ours
from tests.attestation.test_gate import MRTD, refused_with, trust_dev_authority

pytestmark = pytest.mark.django_db
API_KEY = "ita-test-key"


@pytest.fixture(scope="module")
def quotes() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture(scope="module")
def tokens() -> DevTokenAuthority:
    return DevTokenAuthority.ephemeral()


@pytest.fixture
def ita(settings, tmp_path: Path, quotes: DevQuoteAuthority, tokens: DevTokenAuthority) -> Iterator[Served]:
    cache.clear()
    trust_dev_authority(settings, tmp_path, quotes)
    (tmp_path / "ita-root.der").write_bytes(tokens.root_ca_der)
    with serve_in_thread(build_ita_app(tokens, quotes, api_key=API_KEY), name="ita") as served:
        settings.ATTESTATION_ITA_JWKS_URL = served.url + "/certs"
        settings.ATTESTATION_ITA_ISSUER = tokens.issuer
        settings.ATTESTATION_ITA_ROOT_CA_FILE = str(tmp_path / "ita-root.der")  # token-only evidence needs it
        yield served
    cache.clear()


def requests_to(served: Served) -> dict[str, int]:
    return dict(httpx.get(served.url + "/_devnet/ita/requests").json())


def fault(served: Served, name: str | None) -> None:
    httpx.post(served.url + "/_devnet/ita/fault", json={"fault": name}).raise_for_status()


class ItaExecutor:
    """An executor whose evidence is ITA's token for its quote, with or without the quote itself."""

    def __init__(self, quotes: DevQuoteAuthority, served: Served, *, with_quote: bool = False) -> None:
        self.base_url = "http://executor.test"
        self.identity = Identity.generate()
        self.quotes = quotes
        self.served = served
        self.with_quote = with_quote
        self.token_override: Any = None

    def attestation(self, nonce: str) -> dict[str, Any]:
        keys = self.identity.public()
        quote = self.quotes.quote(bound(nonce, keys), mrtd=MRTD)
        answer = httpx.post(
            self.served.url + "/appraisal/v2/attest",
            json={"tdx": {"quote": base64.b64encode(quote).decode()}},
            headers={"x-api-key": API_KEY},
        )
        answer.raise_for_status()
        token = answer.json()["token"] if self.token_override is None else self.token_override(nonce, keys)
        evidence: dict[str, Any] = {"nonce": nonce, **keys, "runtime_config": ours(), "ita_token": token}
        if self.with_quote:
            evidence["quote_b64"] = base64.b64encode(quote).decode()
        return evidence


def test_a_token_alone_passes_and_counts_as_hardware_attested(ita: Served, quotes: DevQuoteAuthority) -> None:
    executor = ItaExecutor(quotes, ita)
    identity = gate.attested_identity(executor)
    assert identity.attested
    assert identity.signing_key == executor.identity.signing.public_hex
    assert identity.evidence_id is not None
    record = AttestationRecord.objects.get(pk=identity.evidence_id)
    assert record.ok
    assert record.ita_token
    assert record.quote_b64 == ""
    assert (record.mrtd, record.tcb_status, record.hardware_attested) == (MRTD.hex(), "UpToDate", True)
    proof = build_proof(job_id="j", job_spec_digest="d", reports=[], signing_key=identity.signing_key)["proof"]
    assert len(proof["attestation"]["ita_token_sha256"]) == 64
    assert proof["attestation"]["quote_sha256"] == ""  # no quote came: nothing to name
    gate.attested_identity(executor)
    assert requests_to(ita)["certs"] == 1  # the JWKS came from the cache the second time


def test_a_token_next_to_its_quote_passes_and_the_quote_keeps_the_hardware_verdict(
    ita: Served, quotes: DevQuoteAuthority
) -> None:
    identity = gate.attested_identity(ItaExecutor(quotes, ita, with_quote=True))
    assert identity.evidence_id is not None
    record = AttestationRecord.objects.get(pk=identity.evidence_id)
    assert record.ok
    assert record.ita_token
    assert record.quote_b64
    assert record.hardware_attested is False  # the quote chains to the dev root


def test_without_a_pinned_ita_root_a_token_alone_is_refused_and_a_quote_still_decides(
    ita: Served, quotes: DevQuoteAuthority, settings
) -> None:
    settings.ATTESTATION_ITA_ROOT_CA_FILE = ""  # whoever serves the JWKS could then vouch for any TD
    assert "ATTESTATION_ITA_ROOT_CA_FILE" in refused_with(ItaExecutor(quotes, ita), "ita_root_not_pinned")
    assert not AttestationRecord.objects.filter(ok=True).exists()
    identity = gate.attested_identity(ItaExecutor(quotes, ita, with_quote=True))
    assert identity.evidence_id is not None
    record = AttestationRecord.objects.get(pk=identity.evidence_id)
    assert (record.ok, record.hardware_attested) == (True, False)  # the quote's verdict: the dev root


def test_without_ita_configured_a_token_alone_is_refused(ita: Served, quotes: DevQuoteAuthority, settings) -> None:
    settings.ATTESTATION_ITA_JWKS_URL = ""
    refused_with(ItaExecutor(quotes, ita), "ita_not_configured")


def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority
) -> None:
    import hashlib
    import hmac
    import json

    from devnet.ita.authority import b64url

    def forged(nonce: str, keys: dict[str, str]) -> str:
        claims = {"iss": tokens.issuer, "exp": int(time.time()) + 300, "tdx": {}}
        head = b64url(json.dumps({"alg": "HS256", "kid": tokens.kid}).encode())
        body = b64url(json.dumps(claims).encode())
        secret = json.dumps(tokens.jwks()["keys"][0]).encode()
        return f"{head}.{body}.{b64url(hmac.new(secret, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"

    executor = ItaExecutor(quotes, ita)
    executor.token_override = forged
    assert "HS256" in refused_with(executor, "alg_not_allowed")


def test_an_expired_token_is_refused(ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority) -> None:
    def expired(nonce: str, keys: dict[str, str]) -> str:
        data = bound(nonce, keys).hex()
        return tokens.appraisal_token(mrtd=MRTD.hex(), rtmrs=["00" * 48] * 4, report_data=data, now=1_700_000_000)

    executor = ItaExecutor(quotes, ita)
    executor.token_override = expired
    refused_with(executor, "expired")


def test_a_token_for_another_report_data_is_refused(ita: Served, quotes: DevQuoteAuthority) -> None:
    fault(ita, "other_report_data")
    refused_with(ItaExecutor(quotes, ita), "report_data_mismatch")


def test_a_token_about_another_td_than_the_quote_is_refused(
    ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority
) -> None:
    def other_td(nonce: str, keys: dict[str, str]) -> str:
        data = bound(nonce, keys).hex()
        return tokens.appraisal_token(mrtd=MRTD.hex(), rtmrs=["11" * 48] * 4, report_data=data, now=int(time.time()))

    executor = ItaExecutor(quotes, ita, with_quote=True)
    executor.token_override = other_td
    refused_with(executor, "ita_mismatch")


def test_a_token_signed_by_an_unknown_key_is_refused_after_one_refetch(
    ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority
) -> None:
    stranger = DevTokenAuthority.ephemeral(bits=2048)

    def foreign(nonce: str, keys: dict[str, str]) -> str:
        data = bound(nonce, keys).hex()
        return stranger.appraisal_token(mrtd=MRTD.hex(), rtmrs=["00" * 48] * 4, report_data=data, now=int(time.time()))

    executor = ItaExecutor(quotes, ita)
    executor.token_override = foreign
    refused_with(executor, "unknown_kid")
    assert requests_to(ita)["certs"] == 2  # cached set, then one refetch in case ITA rotated its keys
    refused_with(executor, "unknown_kid")
    assert requests_to(ita)["certs"] == 2  # made-up kids cannot make us hammer ITA


def test_a_rotated_key_is_picked_up_by_the_refetch(ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority):
    gate.attested_identity(ItaExecutor(quotes, ita))  # JWKS cached
    old_key = tokens.key
    tokens.rotate(rsa.generate_private_key(public_exponent=65537, key_size=2048))  # /certs serves the new key
    try:
        identity = gate.attested_identity(ItaExecutor(quotes, ita))
        assert identity.attested
        assert requests_to(ita)["certs"] == 2
    finally:
        tokens.rotate(old_key)


def test_ita_down_refuses_with_its_own_reason(ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority):
    def fresh(nonce: str, keys: dict[str, str]) -> str:
        data = bound(nonce, keys).hex()
        return tokens.appraisal_token(mrtd=MRTD.hex(), rtmrs=["00" * 48] * 4, report_data=data, now=int(time.time()))

    fault(ita, "down")
    executor = ItaExecutor(quotes, ita)
    executor.token_override = fresh
    original = executor.attestation

    def without_appraisal(nonce: str) -> dict[str, Any]:  # ITA's appraisal is down too; the token came earlier
        keys = executor.identity.public()
        return {"nonce": nonce, **keys, "runtime_config": ours(), "ita_token": fresh(nonce, keys)}

    executor.attestation = without_appraisal  # type: ignore[method-assign]
    refused_with(executor, "ita_unavailable")
    del original


def test_a_token_of_the_wrong_shape_is_malformed(ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority):
    executor = ItaExecutor(quotes, ita)
    executor.token_override = lambda nonce, keys: "only.two"
    refused_with(executor, "malformed_token")
    executor.token_override = lambda nonce, keys: sign_jwt({"alg": "RS256", "kid": tokens.kid}, {}, tokens.key)
    refused_with(executor, "wrong_issuer")
    executor.token_override = lambda nonce, keys: 42
    refused_with(executor, "malformed_evidence")


def test_a_real_executor_attaches_itas_token_and_the_gate_accepts_it(ita: Served, quotes: DevQuoteAuthority) -> None:
    from execution.executor_client import ExecutorClient
    from executor.api.app import create_app
    from executor.config import Config

    class Provider:
        name = "dev-authority"

        async def quote(self, data: bytes) -> bytes:
            return quotes.quote(data, mrtd=MRTD)

    from mrmarket.controller import controller_key

    config = Config(
        build_version="test", ita_url=ita.url, ita_api_key=API_KEY, controller_key=controller_key().public_hex
    )
    with serve_in_thread(create_app(config, provider=Provider()), name="executor") as served:
        nonce = "ab" * 32
        evidence = httpx.get(served.url + "/v1/attestation", params={"nonce": nonce}).json()
        assert evidence["ita_token"].count(".") == 2
        assert evidence["quote_b64"]
        with ExecutorClient(served.url) as client:
            identity = gate.attested_identity(client)
        assert identity.evidence_id is not None
        record = AttestationRecord.objects.get(pk=identity.evidence_id)
        assert record.ok
        assert record.ita_token
        assert record.quote_b64
        fault(ita, "down")  # ITA unreachable: the executor still answers, with its quote alone
        evidence = httpx.get(served.url + "/v1/attestation", params={"nonce": nonce}).json()
        assert "ita_token" not in evidence
        assert evidence["quote_b64"]


def test_the_executor_takes_ita_settings_together_or_not_at_all() -> None:
    from executor.config import Config, ConfigError

    controller = {"EXECUTOR_CONTROLLER_KEY": "ab" * 32}
    with pytest.raises(ConfigError, match="together"):
        Config.from_env({**controller, "EXECUTOR_ITA_URL": "https://api.trustauthority.intel.com"})
    config = Config.from_env({**controller, "EXECUTOR_ITA_URL": "https://ita", "EXECUTOR_ITA_API_KEY": "secret-key"})
    assert config.ita_api_key == "secret-key"
    assert "secret-key" not in repr(config)


def test_the_stand_in_runs_from_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from devnet.ports import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devnet.ita", "--tdx-state", str(tmp_path), "--port", str(port), "--api-key", "k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        deadline = time.monotonic() + 20
        while True:
            try:
                keys = httpx.get(f"http://127.0.0.1:{port}/certs").json()["keys"]
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert keys[0]["kty"] == "RSA"
        refused = httpx.post(f"http://127.0.0.1:{port}/appraisal/v2/attest", json={}, headers={"x-api-key": "no"})
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_pinned_ita_root_admits_only_keys_chained_to_it(
    ita: Served, quotes: DevQuoteAuthority, tokens: DevTokenAuthority, settings, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = tmp_path / "ita-root.pem"
    pem.write_bytes(tokens.root.public_bytes(serialization.Encoding.PEM))
    settings.ATTESTATION_ITA_ROOT_CA_FILE = str(pem)
    assert gate.attested_identity(ItaExecutor(quotes, ita)).attested
    other = tmp_path / "other-root.der"
    other.write_bytes(DevTokenAuthority(tokens.key).root_ca_der)
    settings.ATTESTATION_ITA_ROOT_CA_FILE = str(other)
    assert "x5c" in refused_with(ItaExecutor(quotes, ita), "untrusted_key")
    settings.ATTESTATION_ITA_ROOT_CA_FILE = str(tmp_path / "missing.pem")
    refused_with(ItaExecutor(quotes, ita), "ita_unavailable")


async def test_the_executor_asks_ita_at_most_its_limit_a_minute(ita: Served, quotes: DevQuoteAuthority) -> None:
    """`/v1/attestation` is open: a flood of challenges cannot spend the operator's ITA quota."""
    from executor.ita import ItaAppraiser, ItaUnavailable

    now = [1000.0]
    appraiser = ItaAppraiser(ita.url, API_KEY, max_per_minute=2, clock=lambda: now[0])
    quote = quotes.quote(b"x", mrtd=MRTD)
    assert (await appraiser.token(quote)).count(".") == 2
    assert (await appraiser.token(quote)).count(".") == 2
    with pytest.raises(ItaUnavailable, match="2 a minute"):
        await appraiser.token(quote)
    assert requests_to(ita)["attest"] == 2  # the third never reached ITA
    now[0] += 60
    assert (await appraiser.token(quote)).count(".") == 2
