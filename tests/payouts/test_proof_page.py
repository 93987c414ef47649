"""The "depth is real" pages: the executors in good standing with measurement, TCB, evidence and what the oracle
saw of them, dev-root ones marked; each running campaign's attested share of in-band depth from the preview;
an executor whose reported orders the oracle's book does not show is flagged and loses rank in selection; and
report pushes beyond an identity's hourly limit are refused with nothing stored."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from attestation import services as attestation_services
from attestation.models import AttestationRecord, ExecutorRecord, IdentityObservation
from attestation.selection import select_executor
from payouts.domain.scoring.inputs import EpochInputs
from payouts.models import EpochPreview
from payouts.proof import epoch_attribution
from payouts.proof_page import campaign_share
from tests.payouts.scoring_fixtures import BOOK, A, document, order, participant
from tests.payouts.test_campaign_page import campaign_with

pytestmark = pytest.mark.django_db
HW_KEY, DEV_KEY, GONE_KEY = "a1" * 32, "d2" * 32, "f3" * 32


def executor(url: str, key: str, *, hardware: bool, state: str = "verified", **fields: Any) -> ExecutorRecord:
    record = ExecutorRecord.objects.create(
        url=url,
        state=state,
        signing_key=key,
        sealing_key="5e" * 32,
        mrtd=("11" if hardware else "22") * 48,
        rtmrs=["00" * 48] * 4,
        tcb_status="UpToDate",
        hardware_attested=hardware,
        build_version="1.2.3",
        last_verified_at=timezone.now(),
        **fields,
    )
    AttestationRecord.objects.create(
        executor=record,
        nonce="00" * 32,
        signing_key=key,
        sealing_key="5e" * 32,
        quote_b64="AAAA",
        ok=True,
        tcb_status="UpToDate",
        mrtd=record.mrtd,
        rtmrs=record.rtmrs,
        hardware_attested=hardware,
    )
    return record


def preview(campaign: Any, by_identity: dict[str, str], book: str = "1000") -> EpochPreview:
    return EpochPreview.objects.create(
        campaign=campaign,
        epoch=2,
        as_of_ms=int(timezone.now().timestamp() * 1000),
        bundle={},
        attested_depth={
            "samples": 10,
            "book_quote": book,
            "by_identity": {
                k: {
                    "depth_quote": v,
                    "orders_checked": 1,
                    "orders_not_visible": 0,
                    "fills_checked": 0,
                    "fills_unconfirmed": 0,
                }
                for k, v in by_identity.items()
            },
        },
    )


def test_the_page_lists_executors_with_their_evidence_and_marks_dev_roots(client: Client) -> None:
    hw = executor("http://hw.internal", HW_KEY, hardware=True, checks_total=8, checks_ok=6, reports_accepted=41)
    dev = executor("http://dev.internal", DEV_KEY, hardware=False)
    executor("http://gone.internal", GONE_KEY, hardware=True, state="revoked")
    html = client.get("/proof/").content.decode()
    assert f'data-executor="{hw.pk}"' in html
    assert f'data-executor="{dev.pk}"' in html
    assert "f3" * 32 not in html  # revoked: not listed
    assert html.count("not hardware-attested (dev root)") == 1
    assert f'data-evidence-url="/proof/executors/{hw.pk}/evidence.json"' in html
    assert "75 % of 8 checks" in html
    assert "41 / 0" in html
    assert "http://hw.internal" not in html  # where an executor runs is not published
    assert "5e" * 32 not in html  # nor its sealing key
    assert "python -m attestation.offline verify evidence.json --allowlist allowlist.json" in html
    assert "dist/proof_verify.js" in html
    assert "No running campaign has been sampled yet." in html


def test_each_campaign_shows_the_share_of_in_band_depth_attested_executors_placed(client: Client) -> None:
    hw = executor("http://hw", HW_KEY, hardware=True)
    dev = executor("http://dev", DEV_KEY, hardware=False)
    executor("http://gone", GONE_KEY, hardware=True, state="failed")
    campaign = campaign_with()
    preview(campaign, {HW_KEY: "400", DEV_KEY: "100", GONE_KEY: "50", "": "25"})
    share = campaign_share(EpochPreview.objects.get())
    assert share is not None
    assert share.attested_text == "50 %"  # 400 + 100 of 1000; the failed executor's and the unknown do not count
    assert share.hardware_text == "40 %"
    assert share.dev_text == "10 %"
    assert share.other_text == "50 %"
    assert [(r.executor_id, r.share_text) for r in share.rows] == [(hw.pk, "40 %"), (dev.pk, "10 %"), (None, "7.5 %")]
    html = client.get("/proof/").content.decode()
    assert "data-attested-share><strong>50 %</strong>" in html
    page = client.get(f"/proof/campaigns/{campaign.chain_id}/{campaign.address}").content.decode()
    assert "<strong>50 %</strong> of the in-band depth" in page
    assert f'data-share-executor="{hw.pk}"' in page
    assert f'data-executor="{dev.pk}"' in page  # the executors behind it are listed with their evidence
    assert "1,000.00 USDT" in page


def test_an_unknown_campaign_is_404_and_the_pages_only_read(client: Client) -> None:
    assert client.get("/proof/campaigns/31337/0x" + "00" * 20).status_code == 404
    assert client.post("/proof/").status_code == 405


def test_an_executor_whose_orders_are_not_in_the_book_loses_rank_and_is_shown_so(client: Client, settings) -> None:
    settings.EXECUTOR_DEVIATION_MIN_CHECKED = 3
    honest = executor("http://honest", HW_KEY, hardware=True, capacity_available=1)
    liar = executor("http://liar", DEV_KEY, hardware=True, capacity_available=5)  # more capacity: it would win
    assert select_executor(["http://honest", "http://liar"]) == "http://liar"
    # The oracle scores an epoch: the liar reports resting orders at prices the book has no level at.
    campaign = campaign_with()
    ghost = [{**order(f"g{i}", "buy", "99.93", "5"), "report_digest": "cc" * 32} for i in range(2)]  # no level at 99.93
    real = [{**order("r", "buy", "99.9", "4"), "report_digest": "aa" * 32}]
    doc = document([participant(A, ghost + real)], books=[BOOK, BOOK, BOOK])
    inputs = SimpleNamespace(epoch=EpochInputs.from_json(doc), source_reports=("aa" * 32, "cc" * 32))
    with mock.patch("payouts.proof.report_keys", return_value={"aa" * 32: HW_KEY, "cc" * 32: DEV_KEY}):
        epoch_attribution(campaign=campaign, epoch=0, inputs=inputs)  # type: ignore[arg-type]
    seen = IdentityObservation.objects.get(signing_key=DEV_KEY)
    assert (seen.executor_id, seen.orders_checked, seen.orders_not_visible) == (liar.pk, 6, 6)
    for _ in range(4):  # whatever the round-robin turn
        assert select_executor(["http://honest", "http://liar"]) == "http://honest"
    html = client.get("/proof/").content.decode()
    assert html.count("data-deviating") == 1
    liar_block = html[html.index(f'data-executor="{liar.pk}"') :]
    assert "orders not seen in the book" in liar_block.split("</article>")[0]
    assert "100 % of 6 order checks not in the book" in liar_block.split("</article>")[0]
    honest_block = html[html.index(f'data-executor="{honest.pk}"') :].split("</article>")[0]
    assert "0 % of 3 order checks not in the book" in honest_block
    # Scored again (a later preview of the same epoch), the counts are replaced, never added.
    with mock.patch("payouts.proof.report_keys", return_value={"aa" * 32: HW_KEY, "cc" * 32: DEV_KEY}):
        epoch_attribution(campaign=campaign, epoch=0, inputs=inputs)  # type: ignore[arg-type]
    assert IdentityObservation.objects.get(signing_key=DEV_KEY).orders_checked == 6
    attestation_services.identity_observations_replace(source="x", figures={})  # another source: nothing changes
    assert IdentityObservation.objects.count() == 2
    # Scored again without the liar's orders, its row of that epoch goes.
    source = f"{campaign.chain_id}:{campaign.address}:0"
    attestation_services.identity_observations_replace(
        source=source,
        figures={HW_KEY: {"orders_checked": 3, "orders_not_visible": 0, "fills_checked": 0, "fills_unconfirmed": 0}},
    )
    assert list(IdentityObservation.objects.values_list("signing_key", flat=True)) == [HW_KEY]
