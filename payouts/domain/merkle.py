"""Payout Merkle tree, bit-compatible with OpenZeppelin's `StandardMerkleTree` (@openzeppelin/merkle-tree).

Leaves are `(uint256 index, address account, uint256 amount)`, ABI-encoded and hashed twice with keccak256
(the library's standard leaf hash, which rules out second-preimage tricks with 64-byte leaves). The tree is
built with the leaves **in index order** — the library's `{ sortLeaves: false }` — so that a batch of
contiguous indices shares most of its proof (docs/gas.md). Internal nodes hash the sorted pair, as
OpenZeppelin's `MerkleProof` verifies. Anyone can rebuild the same root with:

    StandardMerkleTree.of(leaves.map(l => [l.index, l.account, l.amount]),
                          ["uint256", "address", "uint256"], { sortLeaves: false })

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

LEAF_TYPES = ("uint256", "address", "uint256")
_UINT256 = 2**256


class MerkleError(ValueError):
    pass


@dataclass(frozen=True)
class PayoutLeaf:
    index: int
    account: str  # 0x-prefixed 20-byte address, any case
    amount: int  # token base units

    def encode(self) -> bytes:
        if not 0 <= self.index < _UINT256 or not 0 <= self.amount < _UINT256:
            raise MerkleError("index and amount are uint256")
        account = self.account.lower()
        if len(account) != 42 or not account.startswith("0x"):
            raise MerkleError(f"{self.account!r} is not a 20-byte address")
        try:
            raw_account = bytes.fromhex(account[2:])
        except ValueError:
            raise MerkleError(f"{self.account!r} is not a 20-byte address") from None
        if len(raw_account) != 20:  # bytes.fromhex skips whitespace between bytes: "0x  " and 19 bytes is 42 characters
            raise MerkleError(f"{self.account!r} is not a 20-byte address")
        return self.index.to_bytes(32, "big") + raw_account.rjust(32, b"\0") + self.amount.to_bytes(32, "big")

    def hash(self) -> bytes:
        digest: bytes = keccak(keccak(self.encode()))
        return digest


def node_hash(a: bytes, b: bytes) -> bytes:
    digest: bytes = keccak(min(a, b) + max(a, b))
    return digest


def _sibling(i: int) -> int:
    return i + 1 if i % 2 == 1 else i - 1


def _parent(i: int) -> int:
    return (i - 1) // 2


@dataclass(frozen=True)
class MultiProof:
    leaves: tuple[PayoutLeaf, ...]  # in the order the proof consumes them (descending tree position)
    proof: tuple[bytes, ...]
    flags: tuple[bool, ...]

    def flag_words(self) -> list[int]:
        """The flags packed as bits, 256 to a word (bit i of word i // 256), as Campaign.distribute takes them."""
        words = [0] * ((len(self.flags) + 255) // 256)
        for i, flag in enumerate(self.flags):
            if flag:
                words[i // 256] |= 1 << (i % 256)
        return words


class PayoutTree:
    """The tree as OpenZeppelin lays it out: an array of 2n-1 nodes, root at 0, leaf i at 2n-2-i."""

    def __init__(self, leaves: Sequence[PayoutLeaf]) -> None:
        if not leaves:
            raise MerkleError("a payout tree needs at least one leaf")
        for position, leaf in enumerate(leaves):
            if leaf.index != position:
                raise MerkleError(f"leaf {position} has index {leaf.index}; indices must be 0..n-1 in order")
        self.leaves = tuple(leaves)
        n = len(leaves)
        tree: list[bytes] = [b""] * (2 * n - 1)
        for i, leaf in enumerate(leaves):
            tree[len(tree) - 1 - i] = leaf.hash()
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tree

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def _tree_index(self, leaf_index: int) -> int:
        if not 0 <= leaf_index < len(self.leaves):
            raise MerkleError(f"no leaf {leaf_index}")
        return len(self._tree) - 1 - leaf_index

    def proof(self, leaf_index: int) -> list[bytes]:
        i = self._tree_index(leaf_index)
        proof = []
        while i > 0:
            proof.append(self._tree[_sibling(i)])
            i = _parent(i)
        return proof

    def multiproof(self, leaf_indices: Sequence[int]) -> MultiProof:
        positions = sorted((self._tree_index(i) for i in leaf_indices), reverse=True)
        if len(set(positions)) != len(positions):
            raise MerkleError("cannot prove a leaf twice")
        stack = list(positions)
        proof: list[bytes] = []
        flags: list[bool] = []
        while stack and stack[0] > 0:
            j = stack.pop(0)
            s, p = _sibling(j), _parent(j)
            if stack and s == stack[0]:
                flags.append(True)
                stack.pop(0)
            else:
                flags.append(False)
                proof.append(self._tree[s])
            stack.append(p)
        if not positions:
            proof.append(self._tree[0])
        n = len(self._tree)
        return MultiProof(
            leaves=tuple(self.leaves[n - 1 - pos] for pos in positions), proof=tuple(proof), flags=tuple(flags)
        )


def process_proof(leaf: PayoutLeaf, proof: Sequence[bytes]) -> bytes:
    node = leaf.hash()
    for sibling in proof:
        node = node_hash(node, sibling)
    return node


def process_multiproof(multiproof: MultiProof) -> bytes:
    leaves = [leaf.hash() for leaf in multiproof.leaves]
    proof = list(multiproof.proof)
    if len(leaves) + len(proof) != len(multiproof.flags) + 1:
        raise MerkleError("leaves and multiproof are not compatible")
    stack = leaves
    for flag in multiproof.flags:
        # Counts that fit can still ask for a hash before it exists (flags out of order): refused, as the contract
        # reverts on reading past its arrays.
        if not stack or (flag and len(stack) < 2) or (not flag and not proof):
            raise MerkleError("the multiproof's flags do not match its leaves and proof")
        a = stack.pop(0)
        b = stack.pop(0) if flag else proof.pop(0)
        stack.append(node_hash(a, b))
    return stack[-1] if stack else proof[0]
