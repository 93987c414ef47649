"""Reports from executors elsewhere: the operator of an attested executor that trades a participant's enrolled
read-only account pushes the signed reports; each batch is stored whole once every report verified (signature,
schema, an attested key, the campaign's market, the job's chain), or refused typed with nothing stored. The
oracle's inputs then read those chains like MM orders' reports, cross-checked with the read-only account's key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from attestation.models import AttestationRecord, ExecutorRecord
from campaigns.models import Campaign
from devnet.exchange.fixtures import RunningExchange, run_exchange
from execution.accounts import exchange_account_revoke
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from mrmarket.errors import NotFound
from mrmarket.roles import Role
from payouts import crosscheck, inputs_build, services
from payouts.domain.scoring.inputs import FillConfirmation, Links, OrderConfirmation
from payouts.errors import (
    AccountNotForParticipant,
    ExternalReportChainBroken,
    ExternalReportClaimed,
    ExternalReportInvalid,
    ExternalReportWrongMarket,
    IdentityRateLimited,
    ReportKeyNotAttested,
)
from payouts.models import ExternalReport, Participant
from tests.factories import user_with
from tests.wire.builders import KEY, OTHER_KEY, mutated, report
from wire.canonical import parse
from wire.keys import SigningKey
from wire.reports import SignedReport, sign_report

pytestmark = pytest.mark.django_db
PAIR = "MRM/USDT"  # the builders' market
START_MS = 1_700_000_000_000  # the builders' first window


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.fixture(autouse=True)
def _site(settings, sim: RunningExchange) -> Iterator[None]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    cache.clear()  # the throttles' counters (this run's own Redis database)
    yield
    cache.clear()


def attest(key: SigningKey, *, url: str = "https://executor.elsewhere.example") -> None:
    """Bind the key by an accepted attestation of a verified executor (what `signing_key_attested` looks for)."""
    executor = ExecutorRecord.objects.create(url=url, state=ExecutorRecord.State.VERIFIED, signing_key=key.public_hex)
    AttestationRecord.objects.create(executor=executor, nonce="00" * 32, signing_key=key.public_hex, ok=True)


def signed_chain(
    n: int, *, key: SigningKey = KEY, job_id: str = "job-1", first: int = 0, after: str | None = None
) -> list[SignedReport]:
    """Reports `first`..`first + n - 1` of one job, each placing and partly filling its own exchange order."""
    out: list[SignedReport] = []
    for sequence in range(first, first + n):
        doc = report(sequence, prev_digest=out[-1].digest if out else after, key=key, job_id=job_id)
        doc = mutated(doc, "order_events.0.exchange_order_id", f"{job_id}-{sequence}")
        doc = mutated(doc, "fills.0.exchange_order_id", f"{job_id}-{sequence}")
        doc = mutated(doc, "fills.0.trade_id", f"{job_id}-t{sequence}")
        out.append(sign_report(doc, key))
    return out


def envelopes(reports: list[SignedReport]) -> list[dict[str, Any]]:
    return [r.as_json() for r in reports]


@pytest.fixture
def enrolled(sim: RunningExchange, make_campaign: Callable[..., Campaign]):
    """An operator's participant in a campaign on the builders' market, with one enrolled read-only account."""
    owner = user_with(Role.OPERATOR)
    campaign = make_campaign(start_ms=START_MS, end_ms=START_MS + 120_000, pair=PAIR)
    participant = Participant.objects.create(
        campaign=campaign,
        reward_address="0x" + "5a" * 20,
        owner=owner,
        joined_at=datetime.now(UTC),
        siwe_message="(joined in another test)",
        siwe_signature="0x00",
    )
    key = sim.sim.create_account(permissions=frozenset())
    link = services.participant_account_enrol(
        participant_id=participant.pk,
        owner_id=owner.pk,
        exchange="binance",
        label="elsewhere",
        api_key=key.key,
        secret=key.secret,
    )
    attest(KEY)
    return owner, participant, link.exchange_account


def submit(owner, participant, account, reports: list[Any]) -> int:
    return services.external_reports_submit(
        participant_id=participant.pk, account_id=account.pk, owner_id=owner.pk, envelopes=reports
    )


def test_reports_are_stored_once_and_a_retried_push_stores_nothing(enrolled) -> None:
    owner, participant, account = enrolled
    chain = signed_chain(3)
    assert submit(owner, participant, account, envelopes(chain[:2])) == 2
    # A retry of what is stored, with the next report: only the next is new.
    assert submit(owner, participant, account, envelopes(chain)) == 1
    assert submit(owner, participant, account, envelopes(chain)) == 0
    rows = list(ExternalReport.objects.order_by("sequence"))
    assert [(r.job_id, r.sequence, r.digest) for r in rows] == [("job-1", i, chain[i].digest) for i in range(3)]
    assert [r.prev_digest for r in rows] == ["", chain[0].digest, chain[1].digest]
    assert {r.signing_key for r in rows} == {KEY.public_hex}
    assert rows[0].account.exchange_account == account
    assert SignedReport.from_json(parse(rows[2].envelope)) == chain[2]


def _bad_signature(job_id: str = "job-1") -> list[Any]:
    chain = envelopes(signed_chain(2, job_id=job_id))
    chain[1] = {**chain[1], "signature": OTHER_KEY.sign(bytes.fromhex(chain[1]["digest"]))}
    return chain


def _bad_digest() -> list[Any]:
    chain = envelopes(signed_chain(2))
    chain[1] = {**chain[1], "report": mutated(chain[1]["report"], "fills.0.amount", "99.5")}
    return chain


def _gap() -> list[Any]:
    chain = signed_chain(3)
    return envelopes([chain[0], chain[2]])


def _starts_late() -> list[Any]:
    return envelopes(signed_chain(1, first=1, after="cd" * 32))


def _wrong_prev() -> list[Any]:
    chain = signed_chain(1)
    return envelopes(chain + signed_chain(1, first=1, after="cd" * 32))


def _wrong_market(job_id: str = "job-1") -> list[Any]:
    chain = envelopes(signed_chain(1, job_id=job_id))
    other = report(1, prev_digest=chain[0]["digest"], job_id=job_id)
    return [*chain, sign_report(mutated(other, "symbol", "MMT/USDT"), KEY).as_json()]


def _not_attested() -> list[Any]:
    return envelopes(signed_chain(1)) + envelopes(signed_chain(1, key=OTHER_KEY, job_id="job-2"))


def _not_an_envelope() -> list[Any]:
    return [*envelopes(signed_chain(1)), {"report": {}, "digest": "00"}]


@pytest.mark.parametrize(
    ("build", "error", "reason"),
    [
        (_bad_signature, ExternalReportInvalid, "bad_signature"),
        (_bad_digest, ExternalReportInvalid, "digest_mismatch"),
        (_not_an_envelope, ExternalReportInvalid, "schema"),
        (_gap, ExternalReportChainBroken, "chain_broken"),
        (_starts_late, ExternalReportChainBroken, "chain_broken"),
        (_wrong_prev, ExternalReportChainBroken, "chain_broken"),
        (_wrong_market, ExternalReportWrongMarket, None),
        (_not_attested, ReportKeyNotAttested, None),
    ],
)
def test_a_bad_report_refuses_the_whole_batch_typed_and_stores_nothing(enrolled, build, error, reason) -> None:
    owner, participant, account = enrolled
    batch = build()
    with pytest.raises(error) as caught:
        submit(owner, participant, account, batch)
    assert caught.value.extra["index"] == len(batch) - 1  # the first report was good: it is not stored either
    if reason is not None:
        assert caught.value.extra["reason_code"] == reason
    assert not ExternalReport.objects.exists()


def test_a_report_that_rewrites_a_stored_one_is_refused(enrolled) -> None:
    owner, participant, account = enrolled
    chain = signed_chain(2)
    submit(owner, participant, account, envelopes(chain))
    rewritten = sign_report(mutated(chain[1].report, "fills.0.amount", "30"), KEY)
    with pytest.raises(ExternalReportChainBroken):
        submit(
            owner,
            participant,
            account,
            [rewritten.as_json(), *envelopes(signed_chain(1, first=2, after=rewritten.digest))],
        )
    assert ExternalReport.objects.count() == 2


def test_a_key_whose_executor_lost_its_standing_is_not_attested(enrolled) -> None:
    owner, participant, account = enrolled
    ExecutorRecord.objects.filter(signing_key=KEY.public_hex).update(state=ExecutorRecord.State.REVOKED)
    with pytest.raises(ReportKeyNotAttested):
        submit(owner, participant, account, envelopes(signed_chain(1)))
    assert not ExternalReport.objects.exists()


def test_another_users_participant_or_an_account_not_the_participants_is_refused(enrolled, sim) -> None:
    owner, participant, account = enrolled
    stranger = user_with(Role.OPERATOR)
    with pytest.raises(NotFound):
        services.external_reports_submit(
            participant_id=participant.pk,
            account_id=account.pk,
            owner_id=stranger.pk,
            envelopes=envelopes(signed_chain(1)),
        )
    # The owner's own read-only account, enrolled for another of its participants.
    mine = Participant.objects.create(
        campaign=participant.campaign,
        reward_address="0x" + "6b" * 20,
        owner=owner,
        joined_at=datetime.now(UTC),
        siwe_message="(joined in another test)",
        siwe_signature="0x00",
    )
    key = sim.sim.create_account(permissions=frozenset())
    other = services.participant_account_enrol(
        participant_id=mine.pk,
        owner_id=owner.pk,
        exchange="binance",
        label="other",
        api_key=key.key,
        secret=key.secret,
    )
    with pytest.raises(AccountNotForParticipant):
        submit(owner, participant, other.exchange_account, envelopes(signed_chain(1)))
    assert submit(owner, mine, other.exchange_account, []) == 0  # it is that participant's
    assert not ExternalReport.objects.exists()


def test_a_report_stored_for_another_account_or_an_mm_order_is_claimed(enrolled, sim) -> None:
    owner, participant, account = enrolled
    chain = signed_chain(1)
    key = sim.sim.create_account(permissions=frozenset())
    second = services.participant_account_enrol(
        participant_id=participant.pk,
        owner_id=owner.pk,
        exchange="binance",
        label="second",
        api_key=key.key,
        secret=key.secret,
    ).exchange_account
    submit(owner, participant, account, envelopes(chain))
    with pytest.raises(ExternalReportClaimed):
        submit(owner, participant, second, envelopes(chain))
    # One of this system's own MM orders' reports, pushed as if from elsewhere.
    mine = signed_chain(1, job_id="job-mm")
    order = MMOrder.objects.create(
        owner=owner, exchange_account=account, symbol=PAIR, funding_asset="USDT", funding_amount=10, job_id="job-mm"
    )
    ExecutionReport.objects.create(
        order=order,
        job_id="job-mm",
        sequence=0,
        digest=mine[0].digest,
        signing_key=KEY.public_hex,
        window_start_ms=START_MS,
        window_end_ms=START_MS + 10_000,
        envelope="{}",
    )
    with pytest.raises(ExternalReportClaimed):
        submit(owner, participant, second, envelopes(mine))
    assert list(ExternalReport.objects.values_list("digest", flat=True)) == [chain[0].digest]


# --- the API ----------------------------------------------------------------------------------------------------


def test_the_api_stores_reports_and_answers_each_refusal_with_its_code(enrolled) -> None:
    owner, participant, account = enrolled
    client = APIClient()
    client.force_authenticate(owner)
    url = f"/api/v1/participants/{participant.pk}/reports"
    chain = signed_chain(2)
    ok = client.post(url, {"account_id": account.pk, "reports": envelopes(chain)}, format="json")
    assert ok.status_code == 200, ok.json()
    assert ok.json() == {"stored": 2}
    again = client.post(url, {"account_id": account.pk, "reports": envelopes(chain)}, format="json")
    assert again.json() == {"stored": 0}
    refusals = [
        (envelopes(signed_chain(1, first=3, after=chain[1].digest)), account.pk, 400, "report_chain_broken"),
        (_bad_signature("job-4"), account.pk, 400, "report_invalid"),
        (envelopes(signed_chain(1, key=OTHER_KEY, job_id="job-2")), account.pk, 403, "report_key_not_attested"),
        (_wrong_market("job-5"), account.pk, 400, "report_market_mismatch"),
        (envelopes(signed_chain(1, job_id="job-3")), account.pk + 1000, 400, "account_not_for_participant"),
    ]
    for reports, account_id, status, code in refusals:
        response = client.post(url, {"account_id": account_id, "reports": reports}, format="json")
        assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    stranger = user_with(Role.OPERATOR)
    client.force_authenticate(stranger)
    response = client.post(url, {"account_id": account.pk, "reports": envelopes(chain)}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert ExternalReport.objects.count() == 2


def test_report_pushes_are_limited_per_user(enrolled) -> None:
    owner, participant, _ = enrolled
    rate = int(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["participant_reports"].split("/")[0])
    client = APIClient()
    client.force_authenticate(owner)
    url = f"/api/v1/participants/{participant.pk}/reports"
    for _ in range(rate):
        assert client.post(url, {}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 429
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post(url, {}, format="json").status_code == 400


def test_report_pushes_are_limited_per_signing_key_and_a_refused_batch_stores_nothing(enrolled, settings) -> None:
    owner, participant, account = enrolled
    settings.REPORTS_PER_IDENTITY_PER_HOUR = 3
    chain = signed_chain(5)
    assert submit(owner, participant, account, envelopes(chain[:2])) == 2
    with pytest.raises(IdentityRateLimited) as caught:
        submit(owner, participant, account, envelopes(chain[:4]))  # 2 stored + 2 new > 3
    assert caught.value.extra == {"signing_key": KEY.public_hex, "limit": 3, "stored": 2, "pushed": 2}
    assert ExternalReport.objects.count() == 2  # all or nothing
    assert submit(owner, participant, account, envelopes(chain[:3])) == 1  # within the limit: the third goes in
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(
        f"/api/v1/participants/{participant.pk}/reports",
        {"account_id": account.pk, "reports": envelopes(chain[:4])},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (429, "identity_rate_limited")
    assert ExternalReport.objects.count() == 3


# --- the oracle's inputs ----------------------------------------------------------------------------------------


def test_the_inputs_score_a_pushed_job_checked_with_the_read_only_accounts_key(enrolled, monkeypatch) -> None:
    owner, participant, account = enrolled
    chain = signed_chain(3)
    submit(owner, participant, account, envelopes(chain))
    asked: list[int] = []
    real_client = inputs_build.exchange_account_client

    def client_of(*, account: ExchangeAccount) -> Any:
        asked.append(account.pk)
        return real_client(account=account)

    # The real cross-checks against an exchange are tested elsewhere (tests/payouts/crosscheck, the forged-orders
    # tests): here the exchange confirms every order and fill as reported, and no account shows link keys.
    def confirm_orders(*, client, symbol, orders):
        return tuple(
            replace(o, exchange=OrderConfirmation(o.side, o.price, o.amount, o.created_ms, o.closed_ms)) for o in orders
        )

    def confirm_fills(*, client, symbol, fills, since_ms, until_ms):
        return tuple(
            replace(f, exchange=FillConfirmation(f.trade_id, f.side, f.price, f.amount, f.maker)) for f in fills
        )

    monkeypatch.setattr(inputs_build, "exchange_account_client", client_of)
    monkeypatch.setattr(crosscheck, "confirm_orders", confirm_orders)
    monkeypatch.setattr(crosscheck, "confirm_fills", confirm_fills)
    monkeypatch.setattr(crosscheck, "link_keys", lambda *, client, assets: Links())
    built = inputs_build.build_inputs(campaign=participant.campaign, epoch=0)
    assert built.notes == []
    [scored] = built.document["participants"]
    assert scored["address"] == participant.reward_address
    assert [(o["order_id"], o["report_digest"]) for o in scored["orders"]] == [
        (f"job-1-{i}", chain[i].digest) for i in range(3)
    ]
    assert all(o["exchange"] is not None for o in scored["orders"])
    assert [(f["trade_id"], f["report_digest"]) for f in scored["fills"]] == [
        (f"job-1-t{i}", chain[i].digest) for i in range(3)
    ]
    assert built.document["source_reports"] == sorted(r.digest for r in chain)
    # The job's cross-checks and the link keys were asked with the read-only account's key, the only account.
    assert set(asked) == {account.pk}
    assert len(asked) == 2


def test_a_revoked_account_leaves_its_participant_out_with_a_note_and_holds_back_nobody(enrolled) -> None:
    """The account cannot be asked any more (its credentials destroyed after the epoch): its job is left out and
    its link keys unreadable, so the participant is not scored, and the inputs are still built for everyone."""
    owner, participant, account = enrolled
    submit(owner, participant, account, envelopes(signed_chain(2)))
    exchange_account_revoke(account_id=account.pk)
    built = inputs_build.build_inputs(campaign=participant.campaign, epoch=0)
    assert built.document["participants"] == []
    assert [(n["participant"], n["left_out"]) for n in built.notes] == [
        (participant.reward_address, "exchange_account_revoked"),
        (participant.reward_address, "exchange_account_revoked"),
    ]
    assert "secret" not in json.dumps(built.notes).lower()
