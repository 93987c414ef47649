"""The no-admin proof of a campaign escrow, read from the chain: what the campaign page shows under "Nobody can
change this campaign" (docs/campaign-page.md). Each check is passed or failed with the values it read:

- the escrow is an EIP-1167 clone, and which implementation it delegates to;
- that implementation is the one the configured factory deploys clones of (`implementation()`);
- the implementation's runtime bytecode hashes to the committed artifact's `deployedBytecode`;
- the immutable parameters read back (`params()`) equal the mirrored row and its metadata hash;
- the ABI has no owner, upgrade, pause or setter, and its state-changing functions are exactly those of the
  permission table (docs/protocol.md, "Permission surface");
- the two oracles the escrow names (who alone record results and publish payouts) are this site's.

When the chain cannot be read, the proof says so (`unreachable`) instead of failing any check."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from eth_account import Account
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from campaigns.domain.clones import NotAClone, decode_args, parse_clone
from campaigns.models import Campaign, CampaignMetadata
from contracts import load_artifact
from mrmarket.chain import get_web3
from mrmarket.oracle_addresses import OracleAddressNotConfigured, oracle_address
from wire.canonical import digest
from wire.errors import CanonicalFormError

# docs/protocol.md, "Permission surface" (tests/campaigns/test_no_admin.py holds the two equal): the
# state-changing functions of the escrow, who may call each, and what it can do.
PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("fund", "anyone", "move exactly the budget from the creator (with the creator's approval) into the escrow, once"),
    (
        "recordResults",
        "the recording oracle named at creation",
        "store one results digest per ended epoch, before `end + disputeWindow`",
    ),
    (
        "publishPayout",
        "the reputation oracle named at creation",
        "publish one root per epoch, total + fee within that epoch's budget",
    ),
    ("claim", "anyone", "pay one proven leaf to its account"),
    ("distribute", "anyone", "pay a contiguous range of proven leaves to their accounts"),
    ("refund", "anyone", "send the unallocated balance to the creator, only after `end + disputeWindow`"),
)
# Names an administrator's function would have: ownership, roles, upgrades, pausing, setters, self-destruction.
ADMIN_NAME = re.compile(
    r"^(owner|transferOwnership|renounceOwnership|acceptOwnership|upgradeTo|upgradeToAndCall|pause|unpause|paused"
    r"|initialize|grantRole|revokeRole|renounceRole|selfdestruct|kill|withdraw|sweep|rescue\w*|set[A-Z_]\w*)$"
)
CALL_REFUSED = (ContractLogicError, BadFunctionCallOutput)  # the chain answered: the call reverted or found no code
CHAIN_TIMEOUT_SECONDS = 5.0  # a page waits at most this long for each RPC answer


@dataclass(frozen=True)
class Check:
    key: str  # clone, implementation, bytecode, params, permissions, oracles
    title: str
    passed: bool
    detail: str  # what the check found, in plain words
    values: tuple[tuple[str, str], ...] = ()  # (what, value read)


@dataclass(frozen=True)
class NoAdminProof:
    checks: tuple[Check, ...] = ()
    unreachable: str = ""  # why the chain could not be read; no check is shown then
    permissions: tuple[tuple[str, str, str], ...] = field(default=PERMISSIONS)

    @property
    def permission_rows(self) -> tuple[tuple[str, str, str], ...]:
        """The table for people: the doc's Markdown code marks dropped."""
        return tuple((name, who.replace("`", ""), what.replace("`", "")) for name, who, what in self.permissions)

    @property
    def passed(self) -> bool:
        return not self.unreachable and bool(self.checks) and all(c.passed for c in self.checks)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _factory_address(campaign: Campaign) -> str:
    """The factory this site trusts: the configured one; the row's own factory when none is configured."""
    return str(settings.CAMPAIGN_FACTORY_ADDRESS or campaign.factory).lower()


def _clone_check(code: bytes) -> tuple[Check, str | None, bytes]:
    try:
        clone = parse_clone(code)
    except NotAClone as exc:
        return Check("clone", "An EIP-1167 clone", False, str(exc), (("code length", f"{len(code)} bytes"),)), None, b""
    values = (
        ("implementation", clone.implementation),
        ("code length", f"{len(code)} bytes: the 45-byte proxy and {len(clone.args)} bytes of parameters"),
    )
    detail = "Its code only delegates every call to the implementation; its parameters are part of its code."
    return Check("clone", "An EIP-1167 clone", True, detail, values), clone.implementation, clone.args


def _implementation_check(implementation: str | None, factory: str, expected: str) -> Check:
    values = (("clone's implementation", implementation or "none"), (f"factory {factory} implementation()", expected))
    passed = implementation is not None and implementation == expected
    detail = (
        "The clone delegates to the implementation the factory deploys every campaign with."
        if passed
        else "The clone delegates to another contract than the factory's implementation."
    )
    return Check("implementation", "The factory's implementation", passed, detail, values)


def _bytecode_check(code: bytes) -> Check:
    committed = bytes.fromhex(load_artifact("Campaign").deployed_bytecode.removeprefix("0x"))
    on_chain, expected = _hex(Web3.keccak(code)), _hex(Web3.keccak(committed))
    # The implementation has no immutables and is compiled without a metadata hash: the bytes compare as they are.
    passed = bool(code) and on_chain == expected
    detail = (
        "The implementation runs exactly the committed, reviewed code (contracts/artifacts/Campaign.json)."
        if passed
        else "The implementation's code is not the committed Campaign bytecode."
    )
    values = (("keccak256 on chain", on_chain), ("keccak256 of the artifact", expected), ("size", f"{len(code)} bytes"))
    return Check("bytecode", "The committed bytecode", passed, detail, values)


def _row_params(campaign: Campaign) -> dict[str, str | int]:
    return {
        "token": campaign.token.lower(),
        "creator": campaign.creator.lower(),
        "recording_oracle": campaign.recording_oracle.lower(),
        "reputation_oracle": campaign.reputation_oracle.lower(),
        "fee_recipient": campaign.fee_recipient.lower(),
        "start": int(campaign.start.timestamp()),
        "end": int(campaign.end.timestamp()),
        "epoch_length": campaign.epoch_seconds,
        "dispute_window": campaign.dispute_window_seconds,
        "budget": int(campaign.budget),
        "fee_bps": campaign.fee_bps,
        "metadata_hash": campaign.metadata_hash.lower(),
    }


def _params_check(campaign: Campaign, read: Callable[[], Any], args: bytes) -> Check:
    title = "Immutable parameters"
    try:
        p = read()
    except Exception as exc:  # the chain answered the other reads: a revert, no code, or a call that never ends
        return Check("params", title, False, f"params() could not be read: {type(exc).__name__}")
    chain: dict[str, str | int] = {
        "token": p[0].lower(),
        "creator": p[1].lower(),
        "recording_oracle": p[2].lower(),
        "reputation_oracle": p[3].lower(),
        "fee_recipient": p[4].lower(),
        "start": p[5],
        "end": p[6],
        "epoch_length": p[7],
        "dispute_window": p[8],
        "budget": p[9],
        "fee_bps": p[10],
        "metadata_hash": _hex(p[11]),
    }
    row = _row_params(campaign)
    differ = [name for name in row if row[name] != chain[name]]
    try:
        appended_differ = [name for name, value in decode_args(args).items() if chain[name] != value]
    except NotAClone as exc:
        appended_differ = [str(exc)]
    document, document_differs = _document_text(str(chain["metadata_hash"]))
    values = (*((name, str(chain[name])) for name in chain), ("metadata document", document))
    if differ:
        detail = "params() differs from this site's record in: " + ", ".join(
            f"{name} ({chain[name]} on chain, {row[name]} here)" for name in differ
        )
    elif appended_differ:
        detail = "params() differs from the parameters appended to the clone's code: " + ", ".join(appended_differ)
    elif document_differs:
        detail = "The metadata document held here does not hash to params().metadataHash."
    else:
        detail = (
            "params() equals this site's record, the metadata hash included, and the parameters appended to the "
            "clone's code: nothing can change them."
        )
    return Check("params", title, not (differ or appended_differ or document_differs), detail, values)


def _document_text(metadata_hash: str) -> tuple[str, bool]:
    """Whether the metadata document held under this hash hashes to it (RFC 8785 canonical form, SHA-256), in
    words; and whether it does not."""
    row = CampaignMetadata.objects.filter(hash=metadata_hash.lower()).only("document").first()
    if row is None:
        return "not held here: the rules and market shown cannot be checked against the hash", False
    try:
        held = "0x" + digest(row.document)
    except CanonicalFormError as exc:
        return f"held, but has no canonical form ({exc})", True
    if held != metadata_hash.lower():
        return f"held, but its SHA-256 is {held}", True
    return "held; its canonical SHA-256 is this hash", False


def _site_oracles() -> tuple[set[str], set[str], str]:
    """This site's recording and reputation oracle addresses (current, and retired ones whose keys it still
    holds), lower-case; or why it does not know them."""
    try:
        recording = {oracle_address("recording").lower()}
        reputation = {oracle_address("reputation").lower()}
    except OracleAddressNotConfigured as exc:
        return set(), set(), exc.message
    for key in settings.RECORDING_ORACLE_RETIRED_KEYS:
        recording.add(str(Account.from_key(key).address).lower())
    for key in settings.REPUTATION_ORACLE_RETIRED_KEYS:
        reputation.add(str(Account.from_key(key).address).lower())
    return recording, reputation, ""


def _oracles_check(campaign: Campaign) -> Check:
    """The two oracles alone decide what the escrow pays: are they this site's? A campaign naming others is
    mirrored and shown like any other, but its payouts are not this site's to make or to vouch for."""
    recording, reputation, unknown = _site_oracles()
    named_recording, named_reputation = campaign.recording_oracle.lower(), campaign.reputation_oracle.lower()
    values = (
        ("recording oracle named", named_recording),
        ("reputation oracle named", named_reputation),
        ("fee", f"{campaign.fee_bps / 100:g} % of each payout, to {campaign.fee_recipient.lower()}"),
        ("this site's recording oracle", ", ".join(sorted(recording)) or "unknown"),
        ("this site's reputation oracle", ", ".join(sorted(reputation)) or "unknown"),
    )
    title = "This site's oracles"
    if unknown:
        return Check("oracles", title, False, f"This site cannot say who its oracles are: {unknown}.", values)
    strangers = [
        role
        for role, named, ours in (
            ("recording", named_recording, recording),
            ("reputation", named_reputation, reputation),
        )
        if named not in ours
    ]
    if strangers:
        detail = (
            f"The {' and '.join(strangers)} oracle named at creation is not this site's: whoever holds that key "
            "decides what this campaign records and pays, and this site's scoring does not bind it."
        )
        return Check("oracles", title, False, detail, values)
    detail = "Both oracles named at creation are this site's: the scoring and payouts shown here are the ones it makes."
    return Check("oracles", title, True, detail, values)


def _permissions_check() -> Check:
    abi = load_artifact("Campaign").abi
    functions = [item for item in abi if item.get("type") == "function"]
    admin = sorted(item["name"] for item in functions if ADMIN_NAME.match(item["name"]))
    changing = sorted(item["name"] for item in functions if item.get("stateMutability") not in ("view", "pure"))
    tabled = sorted(name for name, _, _ in PERMISSIONS)
    passed = not admin and changing == tabled
    values = (
        ("state-changing functions in the ABI", ", ".join(changing)),
        ("in the permission table", ", ".join(tabled)),
        ("owner, upgrade, pause or setter functions", ", ".join(admin) or "none"),
    )
    if admin:
        detail = "The ABI has administrator functions: " + ", ".join(admin)
    elif changing != tabled:
        detail = "The ABI's state-changing functions are not those of the permission table."
    else:
        detail = "No owner, upgrade, pause or setter: every state-changing function is in the table below."
    return Check("permissions", "No administrator", passed, detail, values)


def no_admin_proof(*, campaign: Campaign, w3: Web3 | None = None) -> NoAdminProof:
    """Read the escrow, its implementation and its factory from the chain and check each. Never raises for the
    chain: an unreachable one, or one of another chain id, is `unreachable`."""
    factory = _factory_address(campaign)
    try:
        w3 = w3 or get_web3(timeout=CHAIN_TIMEOUT_SECONDS)
        chain_id = w3.eth.chain_id
        if chain_id != campaign.chain_id:
            return NoAdminProof(unreachable=f"the configured RPC serves chain {chain_id}, not {campaign.chain_id}")
        address = Web3.to_checksum_address(campaign.address)
        code = bytes(w3.eth.get_code(address))
        factory_contract = w3.eth.contract(
            address=Web3.to_checksum_address(factory), abi=load_artifact("CampaignFactory").abi
        )
        try:
            expected = str(factory_contract.functions.implementation().call()).lower()
        except CALL_REFUSED:
            expected = "none: no factory answers implementation() at this address"
        clone, implementation, args = _clone_check(code)
        implementation_code = (
            bytes(w3.eth.get_code(Web3.to_checksum_address(implementation))) if implementation else b""
        )
        escrow = w3.eth.contract(address=address, abi=load_artifact("Campaign").abi)
        params = _params_check(campaign, escrow.functions.params().call, args)
    except Exception as exc:  # refused, timed out, misconfigured: the page says the chain is out of reach
        return NoAdminProof(unreachable=f"chain unreachable ({type(exc).__name__})")
    checks = (
        clone,
        _implementation_check(implementation, factory, expected),
        _bytecode_check(implementation_code),
        params,
        _permissions_check(),
        _oracles_check(campaign),
    )
    return NoAdminProof(checks=checks)
