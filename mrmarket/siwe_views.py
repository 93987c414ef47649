"""Sign-In with Ethereum for the site's pages (creators and participants): the browser asks for the message to
sign, the wallet signs it, the signature is verified by the same verifier the recording oracle's joins use
(`mrmarket.siwe`: nonce, domain, chain, expiry, EOA or ERC-1271), and the session then holds the address.

One view per operation, JSON in and out; every refusal is `{"code", "message", "extra"}` with its HTTP status, and
leaves the session as it was. The nonce is bound to the session that asked for it, and the session key is cycled
at sign-in (no fixation)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from rest_framework.request import Request

from mrmarket.chain import get_web3
from mrmarket.errors import ApplicationError
from mrmarket.login_security import AuthRateThrottle
from mrmarket.siwe import SessionNonceStore, SiweMalformed, siwe_sign_in_message, siwe_verify
from wire.canonical import check_depth

SESSION_NONCE = "siwe_nonce"
SESSION_ADDRESS = "siwe_address"


# Messages asked and sign-ins tried, per trusted client address (`SIWE_SIGN_IN_THROTTLE_RATE`): each message stores
# a nonce, and the endpoints need no account. DRF's scoped throttle reads its scope from the view.
_SCOPE = SimpleNamespace(throttle_scope="siwe_sign_in")


def _throttled(request: HttpRequest) -> JsonResponse | None:
    throttle = AuthRateThrottle()
    if throttle.allow_request(Request(request), _SCOPE):  # type: ignore[arg-type]  # reads only throttle_scope
        return None
    wait = throttle.wait()
    response = JsonResponse(
        {"code": "throttled", "message": "too many sign-in requests from this address: try again later", "extra": {}},
        status=429,
    )
    if wait is not None:
        response["Retry-After"] = str(int(wait) + 1)
    return response


def signed_in_address(request: HttpRequest) -> str | None:
    """The lower-case address this browser signed in as, or None."""
    address = request.session.get(SESSION_ADDRESS)
    return address if isinstance(address, str) else None


def _refused(exc: ApplicationError) -> JsonResponse:
    return JsonResponse({"code": exc.code, "message": exc.message, "extra": exc.extra}, status=exc.status)


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        text = (request.body or b"{}").decode()
        check_depth(text)  # before json.loads recurses: a deep body crashed the process (wire/canonical.py)
        body = json.loads(text)
    except ValueError:  # not UTF-8, nested too deep, or not JSON
        raise SiweMalformed("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise SiweMalformed("the request body is not a JSON object")
    return body


def served_chain_id() -> int:
    """The chain this site's RPC serves: the one sign-in messages name (ERC-1271 wallets are checked on it)."""
    return int(get_web3().eth.chain_id)


@never_cache
@require_POST
def siwe_message(request: HttpRequest) -> JsonResponse:
    """`{"address"}` → `{"message", "expires_at"}`: the message to sign, its nonce bound to this session."""
    if (refused := _throttled(request)) is not None:
        return refused
    try:
        message, issued = siwe_sign_in_message(address=_body(request).get("address"), chain_id=served_chain_id())
    except ApplicationError as exc:
        return _refused(exc)
    request.session[SESSION_NONCE] = issued.value
    return JsonResponse({"message": message, "expires_at": issued.expires_at.isoformat()})


@never_cache
@require_POST
def siwe_sign_in(request: HttpRequest) -> JsonResponse:
    """`{"message", "signature"}` → `{"address"}`: verified, the nonce used, the session signed in as the address."""
    if (refused := _throttled(request)) is not None:
        return refused
    try:
        body = _body(request)
        message, signature = body.get("message"), body.get("signature")
        if not isinstance(message, str) or not isinstance(signature, str):
            raise SiweMalformed("message and signature are strings")
        verified = siwe_verify(
            message=message,
            signature=signature,
            chain_id=served_chain_id(),
            nonces=SessionNonceStore(request.session.get(SESSION_NONCE)),
        )
    except ApplicationError as exc:
        return _refused(exc)
    request.session.cycle_key()
    request.session.pop(SESSION_NONCE, None)
    request.session[SESSION_ADDRESS] = verified.address
    return JsonResponse({"address": verified.address})


@never_cache
@require_POST
def siwe_sign_out(request: HttpRequest) -> JsonResponse:
    request.session.pop(SESSION_ADDRESS, None)
    request.session.pop(SESSION_NONCE, None)
    return JsonResponse({"address": None})
