// Reference: OpenZeppelin's own merkle-tree library, for cross-checking payouts/domain/merkle.py.
// stdin: [{leaves: [[index, account, amount], ...], proofOf: i, multi: [i, ...]}, ...]; stdout: results.
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => {
    const tree = StandardMerkleTree.of(c.leaves, ["uint256", "address", "uint256"], { sortLeaves: false });
    const multi = tree.getMultiProof(c.multi);
    return {
      root: tree.root,
      proof: tree.getProof(c.proofOf),
      multi: { leaves: multi.leaves.map((l) => l[0]), proof: multi.proof, flags: multi.proofFlags },
    };
  });
  process.stdout.write(JSON.stringify(out));
});
