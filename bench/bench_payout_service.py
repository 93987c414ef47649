"""Gas per recipient of the batches the reputation oracle's service actually sends (`payouts.paying`), on Anvil.

One campaign, one recorded epoch paying 2,000 fresh recipients (addresses that hold no token: the costly case),
paid by the service with its default gas cap: every `distribute` it signs is counted by its receipt's `gasUsed`
(base cost and calldata included), and the sum is divided by the recipients. The target (issue 14): within 2 % of
the contract's marginal cost per recipient, `gas_distribute_marginal_per_recipient` of `bench/bench_gas.py`
(27,321 gas, docs/adr/0010). Prints `BENCH <name> <value> <unit>` lines.

Runs on a throwaway SQLite database and the embedded Redis, like the other benches, so `make bench` needs nothing
running.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

RECIPIENTS = 2_000
CONTRACT_MARGINAL = 27_321  # bench/bench_gas.py, gas_distribute_marginal_per_recipient (docs/adr/0010)


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.2f} {unit}", flush=True)


def main() -> None:
    from devnet.redis import EmbeddedRedis

    with tempfile.TemporaryDirectory() as work:
        os.environ["DATABASE_URL"] = f"sqlite:///{work}/bench.sqlite3"
        redis = None
        if not os.environ.get("REDIS_URL"):
            redis = EmbeddedRedis().start()
            os.environ["REDIS_URL"] = redis.url
        try:
            run(Path(work))
        finally:
            if redis is not None:
                redis.stop()


def run(work: Path) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages
    from django.core.management import call_command
    from eth_account import Account
    from web3 import Web3

    from campaigns.indexer import chain_index
    from campaigns.models import Campaign
    from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint, token
    from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, factory, now, travel_to
    from devnet.protocol import campaign as campaign_contract
    from payouts import paying
    from payouts.domain.manifest import manifest_bytes
    from payouts.domain.payout import manifest, manifest_json
    from payouts.models import EpochClose, PayoutBatch

    call_command("migrate", verbosity=0)
    deployer, creator, recorder, reputation = dev_accounts()[:4]
    with Anvil() as node:
        settings.CHAIN_RPC_URL = node.url
        settings.CHAIN_CONFIRMATIONS = 1  # Anvil mines only on a transaction: the last batch would never be buried
        settings.RECORDING_ORACLE_PRIVATE_KEY = recorder.private_key
        settings.REPUTATION_ORACLE_PRIVATE_KEY = reputation.private_key
        settings.STORAGES = {
            **settings.STORAGES,
            "oracle_artifacts": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(work / "oracle")},
            },
        }
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        tok = deploy_dev_token(w3, sender=deployer)
        budget = 10**15
        mint(w3, tok, creator.address, budget, sender=deployer)
        factory_address = deploy_factory(w3, sender=deployer)
        start = now(w3) + 10
        params = CampaignParams(
            tok, recorder.address, reputation.address, deployer.address, start, start + 3600, 3600, 3600, budget, 0,
            b"\x11" * 32,
        )  # fmt: skip
        salt = b"\x00" * 32
        address = (
            factory(w3, factory_address)
            .functions.predictCampaignAddress(params.as_tuple(), creator.address, salt)
            .call()
        )
        call(w3, token(w3, tok).functions.approve(address, budget), creator)
        create_campaign(w3, factory_address, params, creator=creator, salt=salt, fund_now=True)
        chain_index(w3=w3, factory=factory_address, confirmations=0)
        campaign = Campaign.objects.get(address=address.lower())
        travel_to(w3, start + 3600)

        accounts = [Account.from_key((i + 1).to_bytes(32, "big")).address.lower() for i in range(RECIPIENTS)]
        paid = {a: budget // RECIPIENTS for a in accounts}
        digest = hashlib.sha256(b"bench bundle").hexdigest()
        escrow = campaign_contract(w3, address)
        receipt = call(w3, escrow.functions.recordResults(0, bytes.fromhex(digest), "https://bench/b"), recorder)
        data = manifest_bytes(
            manifest_json(
                manifest(paid),
                campaign={"chain_id": campaign.chain_id, "address": campaign.address},
                epoch={"index": 0, "start_ms": start * 1000, "end_ms": (start + 3600) * 1000},
                results_digest=digest,
                budget=sum(paid.values()),
                software={"version": "bench", "commit": "0" * 40},
            )
        )
        manifest_digest = hashlib.sha256(data).hexdigest()
        name = storages["oracle_artifacts"].save(f"bench/manifest-{manifest_digest}.json", ContentFile(data))
        at = datetime.fromtimestamp(start, tz=UTC)
        EpochClose.objects.create(
            campaign=campaign,
            epoch=0,
            state="recorded",
            epoch_start=at,
            epoch_end=at,
            bundle_digest=digest,
            manifest_digest=manifest_digest,
            manifest_name=name,
            block_number=int(receipt["blockNumber"]),
        )
        (payout_id,) = paying.epoch_payouts_due()
        for _ in range(100):
            if paying.epoch_payout_advance(payout_id=payout_id).state == "paid":
                break
        else:
            raise SystemExit("the service did not pay the epoch")
        batches = list(PayoutBatch.objects.filter(payout_id=payout_id, status="paid").select_related("tx"))
        recipients = sum(b.count for b in batches)
        if recipients != RECIPIENTS:
            raise SystemExit(f"the service paid {recipients} recipients, not {RECIPIENTS}")
        gas = sum(b.gas_used or 0 for b in batches)
        per_recipient = gas / recipients
        bench("payout_distribute_service_per_recipient_gas", per_recipient, "gas")
        bench("payout_distribute_service_batches", len(batches), "count")
        bench("payout_distribute_service_largest_batch", max(b.count for b in batches), "recipients")
        bench("payout_distribute_service_vs_contract_marginal", 100 * per_recipient / CONTRACT_MARGINAL, "percent")


if __name__ == "__main__":
    main()
