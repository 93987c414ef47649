"""Sign-In with Ethereum (EIP-4361): issue nonces, verify a signed message, consume its nonce once.

The `siwe` package parses the message (its ABNF grammar is the reference one); the signature is checked here with
eth_account (an EOA) or the wallet's own ERC-1271 `isValidSignature` (a contract wallet), so that the chain call goes
through our web3 connection with its timeout, and every refusal is one of the typed errors below.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from eth_utils.exceptions import ValidationError as EthValidationError
from siwe import SiweMessage
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

from mrmarket.chain import get_web3
from mrmarket.config import ConfigError
from mrmarket.errors import ApplicationError
from mrmarket.models import SiweNonce

CAMPAIGN_RESOURCE_PREFIX = "urn:mrmarket:campaign:"
ERC1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")  # bytes4(keccak256("isValidSignature(bytes32,bytes)"))
ERC1271_ABI = [
    {
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "name": "isValidSignature",
        "outputs": [{"name": "", "type": "bytes4"}],
        "stateMutability": "view",
        "type": "function",
    }
]
NONCE_LENGTH = 22  # 62 symbols: about 131 bits; EIP-4361 wants at least 8 alphanumerics
_NONCE_ALPHABET = string.ascii_letters + string.digits
# Line 2 of an EIP-4361 message is the address; the throttles read it before anything is verified.
_ADDRESS_LINE = re.compile(r"\A[^\n]* wants you to sign in with your Ethereum account:\n(0x[0-9a-fA-F]{40})\n")
# A plain-http URI is accepted only for a local run; anything served to others signs an https URI.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


class SiweError(ApplicationError):
    code = "siwe_error"
    status = 400


class SiweMalformed(SiweError):
    code = "siwe_malformed"


class SiweBadSignature(SiweError):
    code = "siwe_bad_signature"


class SiweExpired(SiweError):
    code = "siwe_expired"


class SiweNotYetValid(SiweError):
    code = "siwe_not_yet_valid"


class SiweWrongDomain(SiweError):
    code = "siwe_wrong_domain"


class SiweWrongChain(SiweError):
    code = "siwe_wrong_chain"


class SiweWrongCampaign(SiweError):
    code = "siwe_wrong_campaign"


class SiweNonceUnknown(SiweError):
    code = "siwe_nonce_unknown"


class SiweNonceUsed(SiweError):
    code = "siwe_nonce_used"
    status = 409


class SiweChainUnavailable(SiweError):
    """A contract wallet's signature could not be asked about: the chain did not answer. Nothing was decided."""

    code = "siwe_chain_unavailable"
    status = 503


@dataclass(frozen=True)
class IssuedNonce:
    value: str
    expires_at: datetime


@dataclass(frozen=True)
class VerifiedSiwe:
    """A message whose fields, signature and nonce all passed; `address` is lower-case."""

    address: str
    chain_id: int
    domain: str
    nonce: str
    resources: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    message: str
    signature: str
    contract_wallet: bool


class NonceStore(Protocol):
    def consume(self, nonce: str, *, now: datetime) -> None:
        """Mark the nonce used, or raise SiweNonceUnknown / SiweNonceUsed / SiweExpired; safe under concurrency."""


class DatabaseNonceStore:
    """Nonces in `core.SiweNonce`: consumed by one conditional UPDATE, so of two concurrent uses exactly one
    passes (the second waits on the row lock, then finds `used_at` set). Inside the caller's transaction: a
    sign-in that fails after this (and rolls back) leaves the nonce unused. With `user_id`, a nonce issued to
    another user is refused as unknown (one issued to nobody, by an in-process caller, is taken); without, only one
    issued to nobody."""

    def __init__(self, *, user_id: int | None = None) -> None:
        self.user_id = user_id

    def consume(self, nonce: str, *, now: datetime) -> None:
        with transaction.atomic():
            owner = (
                Q(issued_to__isnull=True)
                if self.user_id is None
                else Q(issued_to__isnull=True) | Q(issued_to_id=self.user_id)
            )
            mine = SiweNonce.objects.filter(owner, value=nonce)
            taken = mine.filter(used_at__isnull=True, expires_at__gt=now).update(used_at=now)
            if taken == 1:
                return
            row = mine.first()
        if row is None:
            raise SiweNonceUnknown("this nonce was not issued here, to you: ask for a new one")
        if row.used_at is not None:
            raise SiweNonceUsed("this nonce was used already: ask for a new one")
        raise SiweExpired("the nonce expired: ask for a new one", extra={"expired": "nonce"})


class SessionNonceStore:
    """A sign-in's nonce, bound to the browser session it was issued to: only a message carrying the nonce this
    session asked for is taken (a signed message that leaks cannot be played from another browser), then it is
    used once in the database like any other."""

    def __init__(self, expected: str | None) -> None:
        self.expected = expected

    def consume(self, nonce: str, *, now: datetime) -> None:
        if not self.expected or not secrets.compare_digest(nonce, self.expected):
            raise SiweNonceUnknown("this nonce was not issued to this browser: ask for a new one")
        DatabaseNonceStore().consume(nonce, now=now)


def siwe_sign_in_message(*, address: object, chain_id: int, now: datetime | None = None) -> tuple[str, IssuedNonce]:
    """The EIP-4361 message this site asks a wallet to sign to sign in as `address` (any case), with a fresh nonce:
    this site's domain and URI, the chain, a lifetime of `SIWE_NONCE_TTL_SECONDS`. The caller binds the nonce to
    the session."""
    if not isinstance(address, str) or not Web3.is_address(address):
        raise SiweMalformed("the address is not a 0x-prefixed 20-byte hex address", extra={"address": str(address)})
    at = now or timezone.now()
    issued = siwe_nonce_issue(now=at)
    scheme = "http" if urlsplit(f"//{settings.SIWE_DOMAIN}").hostname in _LOCAL_HOSTS else "https"
    message = SiweMessage(
        domain=settings.SIWE_DOMAIN,
        address=Web3.to_checksum_address(address),
        statement="Sign in to Mr.Market with this address.",
        uri=f"{scheme}://{settings.SIWE_DOMAIN}/",
        version="1",
        chain_id=chain_id,
        nonce=issued.value,
        issued_at=_iso(at),
        expiration_time=_iso(issued.expires_at),
    ).prepare_message()
    return message, issued


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_resource(chain_id: int, campaign_address: str) -> str:
    """The resource URI a message must list to act on one campaign."""
    return f"{CAMPAIGN_RESOURCE_PREFIX}{int(chain_id)}:{campaign_address.lower()}"


def siwe_nonce_issue(*, now: datetime | None = None, user_id: int | None = None) -> IssuedNonce:
    """A fresh nonce; with `user_id`, usable only by that signed-in user's sign-in."""
    issued = now or timezone.now()
    value = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    expires_at = issued + timedelta(seconds=settings.SIWE_NONCE_TTL_SECONDS)
    SiweNonce.objects.create(value=value, issued_at=issued, expires_at=expires_at, issued_to_id=user_id)
    return IssuedNonce(value=value, expires_at=expires_at)


def siwe_claimed_address(message: str) -> str | None:
    """The address a message claims (lower-case), unverified: for rate limits keyed on it, nothing else."""
    match = _ADDRESS_LINE.match(message)
    return match.group(1).lower() if match else None


def siwe_verify(
    *,
    message: str,
    signature: str,
    chain_id: int,
    resource: str | None = None,
    nonces: NonceStore | None = None,
    now: datetime | None = None,
) -> VerifiedSiwe:
    """Verify an EIP-4361 message for this site, on `chain_id` (and naming `resource` when given), then use its
    nonce. Every check runs before the nonce is touched: a message refused for any reason leaves its nonce
    unused, so a stranger who learns a nonce cannot burn it with a bad signature."""
    at = now or timezone.now()
    parsed = _parse(message)
    _check_domain(parsed)
    if parsed.chain_id != chain_id:
        raise SiweWrongChain(
            f"the message is for chain {parsed.chain_id}, not {chain_id}",
            extra={"expected": chain_id, "got": parsed.chain_id},
        )
    resources = tuple(parsed.resources or ())
    if resource is not None and resource not in resources:
        raise SiweWrongCampaign(f"the message's resources do not name {resource}", extra={"expected": resource})
    issued_at, expires_at = _check_times(parsed, at)
    sig = _signature_bytes(signature)
    contract_wallet = _check_signature(message, parsed.address, sig, chain_id)
    (nonces or DatabaseNonceStore()).consume(parsed.nonce, now=at)
    return VerifiedSiwe(
        address=parsed.address.lower(),
        chain_id=parsed.chain_id,
        domain=parsed.domain,
        nonce=parsed.nonce,
        resources=resources,
        issued_at=issued_at,
        expires_at=expires_at,
        message=message,
        signature="0x" + sig.hex(),
        contract_wallet=contract_wallet,
    )


def _parse(message: str) -> SiweMessage:
    try:
        return SiweMessage.from_message(message)
    except ValueError as exc:  # the grammar's and pydantic's refusals are both ValueErrors
        raise SiweMalformed(f"not an EIP-4361 message: {str(exc)[:200]}") from None


def _check_domain(parsed: SiweMessage) -> None:
    expected = settings.SIWE_DOMAIN
    if parsed.domain != expected:
        raise SiweWrongDomain(
            f"the message is for {parsed.domain}, not {expected}", extra={"expected": expected, "got": parsed.domain}
        )
    uri = urlsplit(parsed.uri)
    if uri.netloc != expected:
        raise SiweWrongDomain(
            f"the message's URI is not on {expected}", extra={"expected": expected, "got": uri.netloc}
        )
    allowed = {"https"} if (uri.hostname or "") not in _LOCAL_HOSTS else {"https", "http"}
    for scheme in (uri.scheme, parsed.scheme):
        if scheme is not None and scheme not in allowed:
            raise SiweWrongDomain(f"the scheme {scheme!r} is not accepted here", extra={"allowed": sorted(allowed)})


def _check_times(parsed: SiweMessage, at: datetime) -> tuple[datetime, datetime]:
    if parsed.expiration_time is None:
        raise SiweMalformed("the message needs an Expiration Time")
    issued_at = parsed.issued_at._datetime
    expires_at = parsed.expiration_time._datetime
    if issued_at.tzinfo is None or expires_at.tzinfo is None:
        raise SiweMalformed("the message's times need a time zone")
    if at >= expires_at:
        raise SiweExpired("the message expired", extra={"expired": "message"})
    if issued_at > at + timedelta(seconds=settings.SIWE_CLOCK_SKEW_SECONDS):
        raise SiweNotYetValid("the message is issued in the future")
    if parsed.not_before is not None and at < parsed.not_before._datetime:
        raise SiweNotYetValid("the message is not valid yet (Not Before)")
    return issued_at, expires_at


def _signature_bytes(signature: str) -> bytes:
    text = signature[2:] if signature.startswith(("0x", "0X")) else signature
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SiweBadSignature("the signature is not hex") from None


def _check_signature(message: str, address: str, sig: bytes, chain_id: int) -> bool:
    """True for a contract wallet, False for an EOA; raises SiweBadSignature when neither signed."""
    try:
        if len(sig) == 65 and Account.recover_message(encode_defunct(text=message), signature=sig) == address:
            return False
    except (ValueError, EthValidationError):
        pass  # not a valid ECDSA signature: perhaps a contract wallet's
    if _erc1271_valid(address, defunct_hash_message(text=message), sig, chain_id):
        return True
    raise SiweBadSignature("the signature is not the address's")


def _erc1271_valid(address: str, digest: bytes, sig: bytes, chain_id: int) -> bool:
    try:
        w3 = get_web3()
    except ConfigError:
        return False  # no chain configured: only EOA signatures can be checked, and this one did not recover
    try:
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            return False  # no code: an EOA, whose signature did not recover
        if w3.eth.chain_id != chain_id:
            raise SiweChainUnavailable(f"our chain connection is not chain {chain_id}")
        contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=ERC1271_ABI)
        answer = contract.functions.isValidSignature(digest, sig).call()
    except (BadFunctionCallOutput, ContractLogicError):
        return False  # a contract without ERC-1271, or one that reverts on a signature it refuses
    except (Web3Exception, OSError) as exc:
        raise SiweChainUnavailable(f"the chain could not be asked about a contract wallet: {exc}") from None
    return bytes(answer) == ERC1271_MAGIC_VALUE
