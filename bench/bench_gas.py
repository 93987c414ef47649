"""Gas of the campaign escrow on Anvil (receipts' gasUsed: base cost and calldata included).

Targets (docs/gas.md): create well under a tenth of HuFi's 2.5 M; publish constant and under 80 k;
distribute no more per fresh recipient than HuFi's bulkPayOut (27.5 k). Prints `BENCH <name> <value> <unit>`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3

from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint, token
from devnet.protocol import CampaignParams, call, campaign, create_campaign, deploy_factory, now, travel_to
from payouts.domain.merkle import PayoutLeaf, PayoutTree

DAY = 86_400
HUFI_CREATE = 2_506_382
HUFI_PER_RECIPIENT = 27_500
HUFI_BULK_BASE = 233_000


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.0f} {unit}", flush=True)


def tree_of(n: int, seed: int) -> tuple[PayoutTree, list[PayoutLeaf]]:
    rng = random.Random(seed)
    leaves = [PayoutLeaf(i, Web3.to_checksum_address("0x" + rng.randbytes(20).hex()), 1) for i in range(n)]
    return PayoutTree(leaves), leaves


def main() -> None:
    deployer, creator, recorder, reputation = dev_accounts()[:4]
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        tok = deploy_dev_token(w3, sender=deployer)
        mint(w3, tok, creator.address, 10**18, sender=deployer)
        factory_address = deploy_factory(w3, sender=deployer)
        start = now(w3) + 10
        epochs = 4
        params = CampaignParams(
            tok,
            recorder.address,
            reputation.address,
            deployer.address,
            start,
            start + epochs * DAY,
            DAY,
            DAY,
            10**9 * epochs,
            0,
            b"\x11" * 32,
        )
        address, receipt = create_campaign(w3, factory_address, params, creator=creator)
        bench("gas_create_campaign", receipt["gasUsed"], "gas")
        bench("gas_create_vs_hufi", 100 * receipt["gasUsed"] / HUFI_CREATE, "percent")
        c = campaign(w3, address)
        call(w3, token(w3, tok).functions.approve(address, params.budget), creator)
        bench("gas_fund", call(w3, c.functions.fund(), creator)["gasUsed"], "gas")

        for epoch, n in enumerate([10, 1_000, 100_000]):
            travel_to(w3, c.functions.epochEnd(epoch).call())
            rec = call(w3, c.functions.recordResults(epoch, b"\x22" * 32, "ipfs://results/epoch"), recorder)
            bench(f"gas_record_results_epoch{epoch}", rec["gasUsed"], "gas")
            tree, leaves = tree_of(n, seed=n)
            pub = call(w3, c.functions.publishPayout(epoch, tree.root, b"\x33" * 32, n), reputation)
            bench(f"gas_publish_payout_{n}_recipients", pub["gasUsed"], "gas")
            if n >= 1_000:
                leaf = leaves[n // 2]
                proof = tree.proof(leaf.index)
                claim = call(w3, c.functions.claim(epoch, leaf.index, leaf.account, leaf.amount, proof), creator)
                bench(f"gas_claim_depth{len(proof)}_{n}_leaves", claim["gasUsed"], "gas")
            if n == 100_000:
                first, totals = 0, {}
                for batch in (10, 100, 500):
                    mp = tree.multiproof(range(first, first + batch))
                    packed = [(int(x.account, 16) << 96) | x.amount for x in leaves[first : first + batch]]
                    fn = c.functions.distribute(epoch, first, packed, list(mp.proof), mp.flag_words())
                    totals[batch] = gas = call(w3, fn, creator)["gasUsed"]
                    bench(f"gas_distribute_batch{batch}_per_recipient", gas / batch, "gas")
                    bench(f"gas_distribute_batch{batch}_vs_hufi_total", 100 * gas / hufi_bulk_payout(batch), "percent")
                    first += batch
                marginal = (totals[500] - totals[100]) / 400
                bench("gas_distribute_marginal_per_recipient", marginal, "gas")
                bench("gas_distribute_marginal_vs_hufi", 100 * marginal / HUFI_PER_RECIPIENT, "percent")


def hufi_bulk_payout(recipients: int) -> int:
    """HuFi's bulkPayOut for the same payees: ≈ 233 k + 27.5 k per recipient, at most 100 per transaction."""
    full, rest = divmod(recipients, 100)
    return full * (HUFI_BULK_BASE + 100 * HUFI_PER_RECIPIENT) + (
        HUFI_BULK_BASE + rest * HUFI_PER_RECIPIENT if rest else 0
    )


if __name__ == "__main__":
    main()
