"""The controller-request signature covers its audience; REPORTDATA covers the runtime configuration."""

from __future__ import annotations

import pytest

from wire.attestation import BindingError, normalize_api_url, report_data, runtime_config, runtime_config_digest
from wire.control import AUDIENCE_HEADER, SIGNATURE_HEADER, sign_request, verify_request
from wire.errors import SignatureError
from wire.keys import SigningKey

KEY = SigningKey.from_seed(b"k" * 32)
A, B = "aa" * 32, "bb" * 32


def signed_for(audience: str) -> dict[str, str]:
    return sign_request(KEY, method="POST", path_qs="/v1/jobs/stop", body=b"{}", audience=audience, timestamp_ms=1)


def verify(headers: dict[str, str], audience: str) -> None:
    verify_request(
        KEY.public_hex,
        method="POST",
        path_qs="/v1/jobs/stop",
        body=b"{}",
        audience=audience,
        timestamp_ms=1,
        nonce=headers["X-Controller-Nonce"],
        signature_hex=headers[SIGNATURE_HEADER],
    )


def test_the_signature_covers_the_audience() -> None:
    headers = signed_for(A)
    assert headers[AUDIENCE_HEADER] == A
    verify(headers, A)
    with pytest.raises(SignatureError):
        verify(headers, B)  # the same request presented to executor B


def test_an_audience_must_be_an_identity_key() -> None:
    with pytest.raises(SignatureError):
        signed_for("")
    with pytest.raises(SignatureError):
        verify(signed_for(A), "not-a-key")


def test_report_data_binds_the_runtime_configuration() -> None:
    doc = runtime_config(controller_key=A, exchange_api_urls={}, quote_provider="configfs-tsm", dev=False)
    other = runtime_config(
        controller_key=A,
        exchange_api_urls={"binance": "https://proxy.example"},
        quote_provider="configfs-tsm",
        dev=False,
    )
    keys = {"nonce": "01" * 32, "signing_key": A, "sealing_key": B}
    assert report_data(**keys, runtime_config_digest=runtime_config_digest(doc)) != report_data(
        **keys, runtime_config_digest=runtime_config_digest(other)
    )
    with pytest.raises(BindingError):
        report_data(**keys, runtime_config_digest="zz")


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://API.Binance.com/", "https://api.binance.com"),
        ("https://testnet.binance.vision:443/base/", "https://testnet.binance.vision:443/base"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_urls_are_compared_in_normal_form(url: str, normal: str) -> None:
    assert normalize_api_url(url) == normal


@pytest.mark.parametrize("url", ["ws://x", "https://", "https://u:p@host", "https://host/?q=1", "https://h:99999"])
def test_urls_that_cannot_be_attested_are_refused(url: str) -> None:
    with pytest.raises(BindingError):
        normalize_api_url(url)
