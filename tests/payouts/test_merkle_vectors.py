"""Known answers for the payout Merkle tree, pinned from OpenZeppelin's StandardMerkleTree, and its refusals.

Pure and fast (no node at test time), so the mutation run (docs/reliability.md, section 8) can use them on every
mutant; `test_merkle.py` keeps the live comparison with the npm library over random and larger trees.

How the constants were produced (once, with @openzeppelin/merkle-tree from node_modules under node 20): the eight
leaves below, `[index, account, amount]` for index 0..7, were given to
`StandardMerkleTree.of(leaves.slice(0, n), ["uint256", "address", "uint256"], { sortLeaves: false })` for each n in
`NODES`; `NODES[n]` is `tree.dump().tree` (root at 0, leaf i at 2n-2-i), `LEAF_HASHES` is `tree.leafHash(leaf)`,
`PROOFS[n][i]` is `tree.getProof(i)` and each `MULTIPROOFS[n]` row is `tree.getMultiProof(indices)`: the indices
asked for, the leaf indices in the order the proof consumes them, `proof`, `proofFlags`. Proof elements are written as
their position in `NODES[n]` (each was looked up with `nodes.indexOf(hash)`), to keep the file readable.
"""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from payouts.domain.merkle import (
    MerkleError,
    MultiProof,
    PayoutLeaf,
    PayoutTree,
    node_hash,
    process_multiproof,
    process_proof,
)

UINT256_MAX = 2**256 - 1
# keccak256("mrmarket merkle vector <i>")[-20:], any 20 bytes would do; the amounts take in 0 and the uint256 bounds.
ACCOUNTS = [
    "0x6a01bc26e149ed17dff6958133245291b1ed7906",
    "0xf602094c315ec9effc339cb5ab8f23253587e295",
    "0xc803f83a02f7cb4f85623720349acc5495fb6820",
    "0xcf228c62cbc04ad0798e00c08df8d65b418df8bd",
    "0x78fb561b187118da949dd80eeadadafaa0ce7839",
    "0x75da0979aba7e0dd56742f4f84d0f69e00bcc1a2",
    "0x2494eada263d24943af0148a078c2bd999b2485a",
    "0x7c0499123134307f086f34c9b33b7ee4a86b1361",
]
AMOUNTS = [0, 1, 10**18, UINT256_MAX, 123456789, 10**24 + 7, 2**128, 42]
LEAVES = [PayoutLeaf(i, account, amount) for i, (account, amount) in enumerate(zip(ACCOUNTS, AMOUNTS, strict=True))]

LEAF_HASHES: list[str] = [
    "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
    "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
    "bbd109f36f60111fa43c861aa38e1d3b872d4a2f6f3945fb57c794b864523a62",
    "4ac59f6b2059f8292f0b88243469d5aa2c050be10c2bbd1d11bbd76b43ae3ed4",
    "d39cf17dc72f2a3831192fb39f3762a5228864942c47c428014f41ee94771a5f",
    "e9530b8daa0b08bdd394200bb9bc2a99dad08c9fc22ba63919a6e7d2711a6628",
    "bf08efd83d525482510d035f903180cdead83762f89c1e9a8340e8090b8e84b7",
]
NODES: dict[int, list[str]] = {
    1: [
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    2: [
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    3: [
        "0eaab8ac35992f441d35b91545235e2828e43e11402c0106c3f416f33680e6ba",
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    4: [
        "31beac89bfcfc068e0d911adcfe55fd4a1cb575e3c805d488769d83c0a33966c",
        "f026d8545806d66be64413100b5c82f0f14a8d93c54c293569afeec28f1d4640",
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "bbd109f36f60111fa43c861aa38e1d3b872d4a2f6f3945fb57c794b864523a62",
        "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    5: [
        "3c30448026407d139a91766477f233c0fdb31584f85a52e0bf7196a55b0e941e",
        "0411e8cf3a5f79831d1665ffb6659cd6c6f058fccda3563bfc3c54d9a1c8c79a",
        "f026d8545806d66be64413100b5c82f0f14a8d93c54c293569afeec28f1d4640",
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "4ac59f6b2059f8292f0b88243469d5aa2c050be10c2bbd1d11bbd76b43ae3ed4",
        "bbd109f36f60111fa43c861aa38e1d3b872d4a2f6f3945fb57c794b864523a62",
        "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    7: [
        "4a3f3ebfb914c02ffdbebc5d3943ca6c3d89adf4db2913d70a47257d507088fd",
        "7952e2fe3d05b24385a73f9af1bdafc843f64e860abce4753b8f4facbd145239",
        "166547cb410b271a20ae367c5ea50d6a5916438f40de77712f052d33300c56ec",
        "df20eb7f5857c5ed100012de57e385c0bfd8b85b93161878368e899e28f7347a",
        "f026d8545806d66be64413100b5c82f0f14a8d93c54c293569afeec28f1d4640",
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "e9530b8daa0b08bdd394200bb9bc2a99dad08c9fc22ba63919a6e7d2711a6628",
        "d39cf17dc72f2a3831192fb39f3762a5228864942c47c428014f41ee94771a5f",
        "4ac59f6b2059f8292f0b88243469d5aa2c050be10c2bbd1d11bbd76b43ae3ed4",
        "bbd109f36f60111fa43c861aa38e1d3b872d4a2f6f3945fb57c794b864523a62",
        "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
    8: [
        "d0e2a7b45881c7bb97a29b18d4029f578c7b8fe63dddb13701bbf02d5129cccd",
        "c554dbd19b7d09633b5e00d655e969d4aeec1e0783ba759699e62816e7560ca5",
        "31beac89bfcfc068e0d911adcfe55fd4a1cb575e3c805d488769d83c0a33966c",
        "d6e3ac9a1e30d74c2329c6cf939a1769f2497482179f5fbf5333fa208986b6c1",
        "df20eb7f5857c5ed100012de57e385c0bfd8b85b93161878368e899e28f7347a",
        "f026d8545806d66be64413100b5c82f0f14a8d93c54c293569afeec28f1d4640",
        "76859ebfd94cbf1d57f2ae43147ed083e6b788d3eadaf2286a84d6e0dca8710e",
        "bf08efd83d525482510d035f903180cdead83762f89c1e9a8340e8090b8e84b7",
        "e9530b8daa0b08bdd394200bb9bc2a99dad08c9fc22ba63919a6e7d2711a6628",
        "d39cf17dc72f2a3831192fb39f3762a5228864942c47c428014f41ee94771a5f",
        "4ac59f6b2059f8292f0b88243469d5aa2c050be10c2bbd1d11bbd76b43ae3ed4",
        "bbd109f36f60111fa43c861aa38e1d3b872d4a2f6f3945fb57c794b864523a62",
        "984c1b46db53a1aa203c9788827d16311e716781f2f26186c5548ea30c198c5a",
        "0186d13345964eb8b1566291d66cc1efd450ffe6706bda48d3ebdab7036af860",
        "e5570335301914a815f32d1172d602ad41e1a10ad3e04e9e6b07d4c71ab4aaba",
    ],
}
PROOFS: dict[int, list[list[int]]] = {
    1: [[]],
    2: [[1], [2]],
    3: [[3, 2], [4, 2], [1]],
    4: [[5, 1], [6, 1], [3, 2], [4, 2]],
    5: [[7, 4, 2], [8, 4, 2], [5, 1], [6, 1], [3, 2]],
    7: [[11, 6, 1], [12, 6, 1], [9, 3, 2], [10, 3, 2], [7, 4, 2], [8, 4, 2], [5, 1]],
    8: [[13, 5, 1], [14, 5, 1], [11, 6, 1], [12, 6, 1], [9, 3, 2], [10, 3, 2], [7, 4, 2], [8, 4, 2]],
}
Row = tuple[list[int], list[int], list[int], list[bool]]
MULTIPROOFS: dict[int, list[Row]] = {
    1: [
        ([], [], [0], []),
        ([0], [0], [], []),
    ],
    2: [
        ([], [], [0], []),
        ([0], [0], [1], [False]),
        ([1], [1], [2], [False]),
        ([1, 0], [0, 1], [], [True]),
    ],
    3: [
        ([], [], [0], []),
        ([0], [0], [3, 2], [False, False]),
        ([2], [2], [1], [False]),
        ([2, 1, 0], [0, 1, 2], [], [True, True]),
        ([0, 2], [0, 2], [3], [False, True]),
        ([2, 1], [1, 2], [4], [False, True]),
    ],
    4: [
        ([], [], [0], []),
        ([0], [0], [5, 1], [False, False]),
        ([3], [3], [4, 2], [False, False]),
        ([3, 2, 1, 0], [0, 1, 2, 3], [], [True, True, True]),
        ([0, 2], [0, 2], [5, 3], [False, False, True]),
        ([3, 1], [1, 3], [6, 4], [False, False, True]),
    ],
    5: [
        ([], [], [0], []),
        ([0], [0], [7, 4, 2], [False, False, False]),
        ([4], [4], [3, 2], [False, False]),
        ([4, 3, 2, 1, 0], [0, 1, 2, 3, 4], [], [True, True, True, True]),
        ([0, 2], [0, 2], [7, 5, 4], [False, False, False, True]),
        ([4, 1], [1, 4], [8, 2], [False, True, False]),
        ([1, 2, 3], [1, 2, 3], [8, 4], [False, True, False, True]),
        ([4, 0, 3], [0, 3, 4], [7, 6], [False, False, True, True]),
    ],
    7: [
        ([], [], [0], []),
        ([0], [0], [11, 6, 1], [False, False, False]),
        ([6], [6], [5, 1], [False, False]),
        ([6, 5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5, 6], [], [True, True, True, True, True, True]),
        ([0, 2], [0, 2], [11, 9, 6, 3], [False, False, False, False, True]),
        ([6, 1], [1, 6], [12, 1], [False, True, False]),
        ([1, 2, 3], [1, 2, 3], [12, 6, 3], [False, True, False, False, True]),
        ([4, 0, 3], [0, 3, 4], [11, 10, 7, 6], [False, False, False, False, True, True]),
    ],
    8: [
        ([], [], [0], []),
        ([0], [0], [13, 5, 1], [False, False, False]),
        ([7], [7], [8, 4, 2], [False, False, False]),
        ([7, 6, 5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5, 6, 7], [], [True, True, True, True, True, True, True]),
        ([0, 2], [0, 2], [13, 11, 1], [False, False, True, False]),
        ([7, 1], [1, 7], [14, 8, 5, 4], [False, False, False, False, True]),
        ([1, 2, 3], [1, 2, 3], [14, 1], [False, True, True, False]),
        ([4, 0, 3], [0, 3, 4], [13, 12, 9, 3], [False, False, False, True, False, True]),
    ],
}


def nodes(n: int, positions: list[int]) -> list[bytes]:
    return [bytes.fromhex(NODES[n][k]) for k in positions]


# --- leaves ---


def test_leaf_hashes_match_openzeppelin() -> None:
    assert [leaf.hash().hex() for leaf in LEAVES] == LEAF_HASHES


def test_a_leaf_is_abi_encoded_as_three_32_byte_words() -> None:
    leaf = PayoutLeaf(1, "0x" + "ab" * 20, 2)
    assert leaf.encode() == bytes.fromhex("00" * 31 + "01" + "00" * 12 + "ab" * 20 + "00" * 31 + "02")
    # hashed twice: keccak256(bytes.concat(keccak256(abi.encode(...)))), the library's standard leaf
    assert leaf.hash() == keccak(keccak(leaf.encode()))
    assert leaf.hash().hex() == "36c7c2f3053f126d7484a4c009ea3b70523c24c5f8089881189ebb303c77f5f2"  # tree.root, n = 1


def test_the_largest_index_is_encoded_in_full() -> None:
    leaf = PayoutLeaf(UINT256_MAX, "0x" + "ab" * 20, 2)
    assert leaf.encode() == bytes.fromhex("ff" * 32 + "00" * 12 + "ab" * 20 + "00" * 31 + "02")
    assert leaf.hash().hex() == "97dc1155a0f3d6bdc0c8c495f52fbe11b6b989c5999c19823856c724e86d9e40"  # tree.leafHash


def test_the_account_case_does_not_change_the_leaf() -> None:
    checksummed = PayoutLeaf(3, "0xCf228C62cBc04aD0798e00C08dF8D65b418Df8Bd", UINT256_MAX)
    upper = PayoutLeaf(3, "0X" + ACCOUNTS[3][2:].upper(), UINT256_MAX)
    assert checksummed.encode() == upper.encode() == LEAVES[3].encode()
    assert checksummed.hash().hex() == upper.hash().hex() == LEAF_HASHES[3]


@pytest.mark.parametrize(
    ("index", "amount"),
    [(-1, 5), (2**256, 5), (0, -1), (0, 2**256), (-1, -1)],
)
def test_index_and_amount_outside_uint256_are_refused(index: int, amount: int) -> None:
    leaf = PayoutLeaf(index, "0x" + "11" * 20, amount)
    with pytest.raises(MerkleError) as error:
        leaf.encode()
    assert str(error.value) == "index and amount are uint256"
    with pytest.raises(MerkleError) as error:
        leaf.hash()
    assert str(error.value) == "index and amount are uint256"


@pytest.mark.parametrize(
    "account",
    [
        "0x1234",
        "0x" + "11" * 19,  # 19 bytes
        "0x" + "11" * 20 + "1",  # 41 hex digits
        "0x" + "11" * 21,  # 21 bytes
        "00" + "11" * 20,  # 42 characters, no 0x
        "1x" + "11" * 20,
        "0x" + "g1" * 20,  # not hex
        "0x" + "11" * 19 + " 1",
        # bytes.fromhex skips whitespace between bytes: 42 characters that are 19 bytes, which padded to 32 would be
        # another account (0x00 followed by these 19 bytes)
        "0x  " + "11" * 19,
        "0x" + "11" * 19 + "\t\n",
        "0x" + "11" * 9 + "  " + "11" * 10,
        "",
    ],
)
def test_an_account_that_is_not_a_20_byte_address_is_refused(account: str) -> None:
    with pytest.raises(MerkleError) as error:
        PayoutLeaf(0, account, 5).encode()
    assert str(error.value) == f"{account!r} is not a 20-byte address"
    assert error.value.__cause__ is None


def test_a_merkle_error_is_a_value_error() -> None:
    assert issubclass(MerkleError, ValueError)


# --- internal nodes ---


def test_node_hash_hashes_the_sorted_pair() -> None:
    low, high = b"\x01" * 32, b"\x02" * 32
    # standardNodeHash from @openzeppelin/merkle-tree/dist/hashes, both argument orders
    expected = "346d8c96a2454213fcc0daff3c96ad0398148181b9fa6488f7ae2c0af5b20aa0"
    assert node_hash(low, high).hex() == expected
    assert node_hash(high, low).hex() == expected
    assert node_hash(b"\xff" * 32, b"\xff" * 32).hex() == (
        "bd8b151773dbbefd7b0df67f2dcc482901728b6df477f4fb2f192733a005d396"
    )
    # the sort is by bytes, not by the first byte alone
    a, b = b"\x01" + b"\x00" * 31, b"\x01" + b"\x00" * 30 + b"\x01"
    assert node_hash(a, b) == node_hash(b, a) == keccak(a + b)


# --- trees, proofs, multiproofs ---


@pytest.mark.parametrize("n", sorted(NODES))
def test_root_matches_openzeppelin(n: int) -> None:
    assert PayoutTree(LEAVES[:n]).root.hex() == NODES[n][0]


@pytest.mark.parametrize("n", sorted(NODES))
def test_tree_keeps_its_leaves(n: int) -> None:
    tree = PayoutTree(LEAVES[:n])
    assert tree.leaves == tuple(LEAVES[:n])


@pytest.mark.parametrize("n", sorted(NODES))
def test_every_proof_matches_openzeppelin_and_leads_to_the_root(n: int) -> None:
    tree = PayoutTree(LEAVES[:n])
    for i, leaf in enumerate(LEAVES[:n]):
        proof = tree.proof(i)
        assert proof == nodes(n, PROOFS[n][i])
        assert process_proof(leaf, proof) == tree.root


@pytest.mark.parametrize(("n", "row"), [(n, row) for n in sorted(MULTIPROOFS) for row in MULTIPROOFS[n]])
def test_multiproofs_match_openzeppelin_and_lead_to_the_root(n: int, row: Row) -> None:
    indices, leaf_order, proof, flags = row
    tree = PayoutTree(LEAVES[:n])
    multiproof = tree.multiproof(indices)
    assert multiproof == MultiProof(
        leaves=tuple(LEAVES[i] for i in leaf_order), proof=tuple(nodes(n, proof)), flags=tuple(flags)
    )
    assert process_multiproof(multiproof) == tree.root


def test_a_multiproof_takes_any_iterable_of_indices() -> None:
    tree = PayoutTree(LEAVES[:5])
    assert tree.multiproof(range(1, 4)) == tree.multiproof([3, 1, 2])
    assert tree.multiproof((4, 0, 3)) == tree.multiproof([0, 3, 4])


# --- refusals ---


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(MerkleError) as error:
        PayoutTree([])
    assert str(error.value) == "a payout tree needs at least one leaf"


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([1], "leaf 0 has index 1; indices must be 0..n-1 in order"),
        ([0, 2, 1], "leaf 1 has index 2; indices must be 0..n-1 in order"),
        ([0, 0], "leaf 1 has index 0; indices must be 0..n-1 in order"),
        ([0, 1, 3], "leaf 2 has index 3; indices must be 0..n-1 in order"),
    ],
)
def test_leaves_out_of_index_order_are_refused(indices: list[int], message: str) -> None:
    with pytest.raises(MerkleError) as error:
        PayoutTree([PayoutLeaf(i, ACCOUNTS[i], AMOUNTS[i]) for i in indices])
    assert str(error.value) == message


def test_a_bad_leaf_is_refused_when_the_tree_is_built() -> None:
    with pytest.raises(MerkleError) as error:
        PayoutTree([LEAVES[0], PayoutLeaf(1, "0x1234", 5)])
    assert str(error.value) == "'0x1234' is not a 20-byte address"


@pytest.mark.parametrize(("n", "index"), [(1, 1), (1, -1), (4, 4), (4, -1), (5, 5), (5, 7), (8, 8), (8, -8)])
def test_a_proof_of_a_missing_leaf_is_refused(n: int, index: int) -> None:
    tree = PayoutTree(LEAVES[:n])
    with pytest.raises(MerkleError) as error:
        tree.proof(index)
    assert str(error.value) == f"no leaf {index}"
    with pytest.raises(MerkleError) as error:
        tree.multiproof([0, index])
    assert str(error.value) == f"no leaf {index}"


@pytest.mark.parametrize("indices", [[1, 1], [0, 2, 0], [4, 3, 4, 3]])
def test_a_multiproof_of_a_leaf_twice_is_refused(indices: list[int]) -> None:
    tree = PayoutTree(LEAVES[:5])
    with pytest.raises(MerkleError) as error:
        tree.multiproof(indices)
    assert str(error.value) == "cannot prove a leaf twice"


def test_a_proof_does_not_prove_another_leaf() -> None:
    tree = PayoutTree(LEAVES[:7])
    proof = tree.proof(2)
    for forged in [
        PayoutLeaf(2, ACCOUNTS[2], AMOUNTS[2] + 1),
        PayoutLeaf(2, ACCOUNTS[3], AMOUNTS[2]),
        PayoutLeaf(3, ACCOUNTS[2], AMOUNTS[2]),
        LEAVES[3],
    ]:
        assert process_proof(forged, proof) != tree.root
    assert process_proof(LEAVES[2], proof[:-1]) != tree.root
    assert process_proof(LEAVES[2], [*proof, proof[0]]) != tree.root
    assert process_proof(LEAVES[2], tree.proof(3)) != tree.root


def test_processing_an_empty_proof_gives_the_leaf_hash() -> None:
    assert process_proof(LEAVES[5], []).hex() == LEAF_HASHES[5]
    assert process_proof(LEAVES[0], nodes(2, [1])).hex() == NODES[2][0]


def test_a_multiproof_does_not_prove_a_changed_leaf() -> None:
    tree = PayoutTree(LEAVES[:8])
    multiproof = tree.multiproof([1, 2, 3])
    forged = PayoutLeaf(2, ACCOUNTS[2], AMOUNTS[2] + 1)
    changed = MultiProof(leaves=(LEAVES[1], forged, LEAVES[3]), proof=multiproof.proof, flags=multiproof.flags)
    assert process_multiproof(changed) != tree.root
    swapped = MultiProof(leaves=(LEAVES[2], LEAVES[1], LEAVES[3]), proof=multiproof.proof, flags=multiproof.flags)
    assert process_multiproof(swapped) != tree.root


@pytest.mark.parametrize(
    ("leaves", "proof", "flags"),
    [
        ((1, 2, 3), (14,), (False, True, True, False)),  # one proof element short
        ((1, 2, 3), (14, 1, 1), (False, True, True, False)),  # one too many
        ((1, 2), (14, 1), (False, True, True, False)),  # one leaf short
        ((1, 2, 3), (14, 1), (False, True, True)),  # one flag short
        ((1, 2, 3), (14, 1), (False, True, True, False, True)),  # one flag too many
        ((), (), ()),  # nothing at all: no root to give
    ],
)
def test_process_multiproof_refuses_counts_that_do_not_fit(
    leaves: tuple[int, ...], proof: tuple[int, ...], flags: tuple[bool, ...]
) -> None:
    multiproof = MultiProof(leaves=tuple(LEAVES[i] for i in leaves), proof=tuple(nodes(8, list(proof))), flags=flags)
    with pytest.raises(MerkleError) as error:
        process_multiproof(multiproof)
    assert str(error.value) == "leaves and multiproof are not compatible"


@pytest.mark.parametrize(
    ("leaves", "proof", "flags"),
    [
        ((0,), (1, 2), (True, False)),  # hashes two from the stack while it holds one leaf
        ((0, 1), (2,), (False, False)),  # takes a proof element when none is left
        ((), (1, 2, 3), (False, False)),  # starts with nothing on the stack
    ],
)
def test_flags_that_ask_for_a_hash_before_it_exists_are_refused_with_a_typed_error(
    leaves: tuple[int, ...], proof: tuple[int, ...], flags: tuple[bool, ...]
) -> None:
    multiproof = MultiProof(leaves=tuple(LEAVES[i] for i in leaves), proof=tuple(nodes(8, list(proof))), flags=flags)
    with pytest.raises(MerkleError) as error:
        process_multiproof(multiproof)
    assert str(error.value) == "the multiproof's flags do not match its leaves and proof"


def test_a_multiproof_of_no_leaf_is_the_root() -> None:
    tree = PayoutTree(LEAVES[:3])
    assert process_multiproof(MultiProof(leaves=(), proof=(tree.root,), flags=())) == tree.root
    other = bytes.fromhex(NODES[4][0])
    assert process_multiproof(MultiProof(leaves=(), proof=(other,), flags=())) == other


# --- flags packed for Campaign.distribute ---


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ((), []),
        ((False,), [0]),
        ((True,), [1]),
        ((False, True, True), [0b110]),
        ((True, False, False, True), [0b1001]),
        ((True,) * 256, [2**256 - 1]),
        ((False,) * 255 + (True,), [2**255]),
        ((False,) * 256 + (True,), [0, 1]),
        ((True,) + (False,) * 255 + (False, True), [1, 2]),
        ((False,) * 511 + (True,), [0, 2**255]),
        ((False,) * 512 + (True,), [0, 0, 1]),
    ],
)
def test_flag_words_pack_256_flags_to_a_word(flags: tuple[bool, ...], words: list[int]) -> None:
    assert MultiProof(leaves=(), proof=(), flags=flags).flag_words() == words


def test_flag_words_of_a_real_multiproof() -> None:
    multiproof = PayoutTree(LEAVES[:8]).multiproof([4, 0, 3])
    assert multiproof.flags == (False, False, False, True, False, True)
    assert multiproof.flag_words() == [0b101000]
