"""Reading a campaign escrow's code: an EIP-1167 minimal proxy with immutable arguments appended, as OpenZeppelin's
`Clones.cloneDeterministicWithImmutableArgs` (v5.1+) deploys it, and the factory's argument layout
(`CampaignFactory._args`, read back by `Campaign.params()`). Pure: bytes in, values out."""

from __future__ import annotations

from dataclasses import dataclass

# The 45-byte proxy: calldata copied, DELEGATECALL to the 20-byte implementation address, returndata bubbled up.
PROXY_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
PROXY_LENGTH = len(PROXY_PREFIX) + 20 + len(PROXY_SUFFIX)  # 45

# abi.encodePacked(token, creator, recordingOracle, reputationOracle, feeRecipient, start, end, epochLength,
# disputeWindow, budget, feeBps, metadataHash): five addresses, four uint64, a uint128, a uint16, a bytes32.
ARG_FIELDS: tuple[tuple[str, int], ...] = (
    ("token", 20),
    ("creator", 20),
    ("recording_oracle", 20),
    ("reputation_oracle", 20),
    ("fee_recipient", 20),
    ("start", 8),
    ("end", 8),
    ("epoch_length", 8),
    ("dispute_window", 8),
    ("budget", 16),
    ("fee_bps", 2),
    ("metadata_hash", 32),
)
ARGS_LENGTH = sum(size for _, size in ARG_FIELDS)  # 182


class NotAClone(ValueError):
    """The code is not an EIP-1167 proxy with arguments appended; says what differs."""


@dataclass(frozen=True)
class CloneCode:
    implementation: str  # 0x + 40 lower-case hex digits
    args: bytes


def parse_clone(code: bytes) -> CloneCode:
    """The implementation address and the appended arguments of a clone's runtime code. Raises `NotAClone`."""
    if len(code) < PROXY_LENGTH:
        raise NotAClone(f"the code is {len(code)} bytes, shorter than the {PROXY_LENGTH}-byte EIP-1167 proxy")
    if code[: len(PROXY_PREFIX)] != PROXY_PREFIX:
        raise NotAClone(f"the code does not start with the EIP-1167 proxy ({code[:10].hex()}…)")
    if code[len(PROXY_PREFIX) + 20 : PROXY_LENGTH] != PROXY_SUFFIX:
        raise NotAClone("the bytes after the implementation address are not the EIP-1167 proxy's")
    implementation = "0x" + code[len(PROXY_PREFIX) : len(PROXY_PREFIX) + 20].hex()
    return CloneCode(implementation, bytes(code[PROXY_LENGTH:]))


def decode_args(args: bytes) -> dict[str, str | int]:
    """The factory's packed arguments by name: addresses as 0x lower-case hex, the hash as 0x hex, numbers as int.
    Raises `NotAClone` when the length is not the factory's layout."""
    if len(args) != ARGS_LENGTH:
        raise NotAClone(f"the appended arguments are {len(args)} bytes, not the factory's {ARGS_LENGTH}")
    out: dict[str, str | int] = {}
    offset = 0
    for name, size in ARG_FIELDS:
        chunk = args[offset : offset + size]
        offset += size
        out[name] = "0x" + chunk.hex() if size in (20, 32) else int.from_bytes(chunk, "big")
    return out
