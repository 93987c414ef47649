"""The payout tree matches OpenZeppelin's StandardMerkleTree bit for bit (checked against the npm library)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.merkle import (
    MerkleError,
    PayoutLeaf,
    PayoutTree,
    process_multiproof,
    process_proof,
)
from tests.plugins.require import requires

ROOT = Path(__file__).resolve().parents[2]
NODE_LIB = ROOT / "node_modules" / "@openzeppelin" / "merkle-tree"


def random_leaves(rng: random.Random, n: int) -> list[PayoutLeaf]:
    return [PayoutLeaf(i, "0x" + rng.randbytes(20).hex(), rng.randrange(1, 10**24)) for i in range(n)]


@requires("node and @openzeppelin/merkle-tree", shutil.which("node") and NODE_LIB.exists(), "npm ci")
def test_roots_and_proofs_match_openzeppelin() -> None:
    rng = random.Random(7)
    cases, trees = [], []
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 100, 257]:
        leaves = random_leaves(rng, n)
        multi = sorted(rng.sample(range(n), k=rng.randint(1, n)))
        values = [[str(leaf.index), leaf.account, str(leaf.amount)] for leaf in leaves]
        cases.append({"leaves": values, "proofOf": n // 2, "multi": multi})
        trees.append((PayoutTree(leaves), n // 2, multi))
    script = str(Path(__file__).with_name("oz_merkle.cjs"))
    result = subprocess.run(
        ["node", script], input=json.dumps(cases), capture_output=True, text=True, cwd=ROOT, check=True, timeout=60
    )
    for (tree, proof_of, multi), expected in zip(trees, json.loads(result.stdout), strict=True):
        assert "0x" + tree.root.hex() == expected["root"]
        assert ["0x" + p.hex() for p in tree.proof(proof_of)] == expected["proof"]
        mp = tree.multiproof(multi)
        assert [str(leaf.index) for leaf in mp.leaves] == expected["multi"]["leaves"]
        assert ["0x" + p.hex() for p in mp.proof] == expected["multi"]["proof"]
        assert list(mp.flags) == expected["multi"]["flags"]


@given(st.integers(1, 60), st.randoms(use_true_random=False), st.data())
def test_every_proof_and_multiproof_leads_to_the_root(n: int, rnd, data) -> None:
    leaves = random_leaves(random.Random(rnd.random()), n)
    tree = PayoutTree(leaves)
    for leaf in leaves:
        assert process_proof(leaf, tree.proof(leaf.index)) == tree.root
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    assert process_multiproof(tree.multiproof(range(start, end))) == tree.root


def test_a_changed_amount_does_not_prove() -> None:
    leaves = random_leaves(random.Random(1), 10)
    tree = PayoutTree(leaves)
    forged = PayoutLeaf(3, leaves[3].account, leaves[3].amount + 1)
    assert process_proof(forged, tree.proof(3)) != tree.root


@pytest.mark.parametrize(
    ("leaves", "message"),
    [
        ([], "at least one leaf"),
        ([PayoutLeaf(1, "0x" + "11" * 20, 5)], "indices must be 0..n-1"),
        ([PayoutLeaf(0, "0x1234", 5)], "not a 20-byte address"),
        ([PayoutLeaf(0, "0x" + "11" * 20, -1)], "uint256"),
    ],
)
def test_bad_leaves_are_refused(leaves: list[PayoutLeaf], message: str) -> None:
    with pytest.raises(MerkleError, match=message):
        PayoutTree(leaves)


def test_proving_a_leaf_twice_or_a_missing_leaf_is_refused() -> None:
    tree = PayoutTree(random_leaves(random.Random(2), 4))
    with pytest.raises(MerkleError, match="twice"):
        tree.multiproof([1, 1])
    with pytest.raises(MerkleError, match="no leaf 4"):
        tree.proof(4)
