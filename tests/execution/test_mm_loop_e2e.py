"""Acceptance of the market-making loop: the whole loop on the devnet — Anvil, the exchange simulator with a live
market, the EasyEnclave control-plane stand-in, an executor quoting with the dev TDX authority, and a real Celery
worker.
Create an order → funds on the exchange, confirmed by its history and the chain → the executor discovered through
a verified control plane, attested (fresh nonce, DCAP quote, allowlist) and given sealed credentials → job running
→ reports stored and verified against the attested key → stop → funds back in custody; the ledger balances to the
base unit, every fill and fee is an entry, and the exchange holds at most the documented rounding dust."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from web3 import Web3

from attestation import services as attestation_services
from attestation.easyenclave import CONTROL_PLANE_SERVICE as CP_SERVICE
from attestation.models import AttestationRecord, ExecutorRecord
from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint, token
from devnet.easyenclave.app import ControlPlane, ControlPlaneConfig, build_control_plane_app
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from devnet.serving import serve_in_thread
from devnet.tdx.authority import DevQuoteAuthority
from execution import accounts, homeward, orders, selectors, services, tasks
from execution.domain.ledger import asset_totals, transfer
from execution.models import ExchangeAccount, ExecutionReport, LedgerTransaction, MMOrder
from mrmarket.celery_app import app as celery_app
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.attestation.test_gate import PINNED_RTMRS
from tests.execution.executor_thread import running_executor
from tests.executor.harness import busy_markets
from tests.factories import user_with

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(300)]
USDT, MMT = 10**6, 10**18
EXECUTOR_MRTD = bytes(range(48))
CONTROL_PLANE_MRTD = bytes([7]) * 48
CUSTODY = dev_accounts()[3]


@pytest.fixture(scope="module")
def tokens(w3: Web3) -> dict[str, str]:
    minter = dev_accounts()[0]
    usdt = deploy_dev_token(w3, sender=minter)
    mmt = deploy_dev_token(w3, sender=minter, name="Mr.Market Token", symbol="MMT", decimals=18)
    hot = dev_accounts()[9]
    for address, unit in ((usdt, USDT), (mmt, MMT)):
        mint(w3, address, hot.address, 1_000_000 * unit, sender=minter)
        mint(w3, address, CUSTODY.address, 100_000 * unit, sender=minter)
    return {"USDT": usdt, "MMT": mmt}


@pytest.fixture(scope="module")
def sim(anvil: Anvil, tokens: dict[str, str]) -> Iterator[RunningExchange]:
    chain = ChainConfig(
        rpc_url=anvil.url,
        assets=tokens,
        hot_wallet_key=dev_accounts()[9].private_key,
        confirmations=2,
        poll_interval=0.1,
        address_seed="mrmarket-e2e-loop",
    )
    config = SimConfig(markets=busy_markets(), run_market=True, tick_seconds=Decimal("0.2"), chain=chain)
    with run_exchange(config) as running:
        yield running


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture(scope="module")
def executor_url(sim: RunningExchange, authority: DevQuoteAuthority) -> Iterator[str]:
    with running_executor(sim.base_url, provider=DevQuoteProvider(authority, EXECUTOR_MRTD)) as url:
        yield url


@pytest.fixture(scope="module")
def control_plane(authority: DevQuoteAuthority, executor_url: str) -> Iterator[tuple[ControlPlane, str]]:
    cp = ControlPlane(ControlPlaneConfig(mrtd=CONTROL_PLANE_MRTD, health_path="/v1/health"), authority)
    cp.register({"name": "mm-executor", "endpoints": {"devnet": executor_url}, "tags": ["exchange:binance"]})
    with serve_in_thread(build_control_plane_app(cp), name="easyenclave") as served:
        yield cp, served.url


class DevQuoteProvider:
    """The executor's quote provider on a TD built from EXECUTOR_MRTD, quoting with the dev authority."""

    name = "dev-authority"

    def __init__(self, authority: DevQuoteAuthority, mrtd: bytes) -> None:
        self.authority, self.mrtd = authority, mrtd

    async def quote(self, data: bytes) -> bytes:
        return self.authority.quote(data, mrtd=self.mrtd)


@pytest.fixture
def worker() -> Iterator[None]:
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        yield


@pytest.fixture
def configured(
    settings,
    transactional_db: None,
    tmp_path: Path,
    anvil: Anvil,
    sim: RunningExchange,
    tokens: dict[str, str],
    authority: DevQuoteAuthority,
    control_plane: tuple[ControlPlane, str],
) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 2
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": tokens["USDT"], "decimals": 6},
        "MMT": {"token": tokens["MMT"], "decimals": 18},
    }
    settings.CUSTODY_PRIVATE_KEY = CUSTODY.private_key
    # Executors only from discovery, and only attested ones get work, secrets, or their reports accepted.
    settings.EXECUTOR_URLS = []
    settings.EASYENCLAVE_URL = control_plane[1]
    settings.EASYENCLAVE_ENVIRONMENT = "devnet"
    (tmp_path / "root.der").write_bytes(authority.root_ca_der)
    (tmp_path / "collateral.json").write_text(authority.collateral_json(now=int(time.time())))
    settings.ATTESTATION_DEV_ROOT_CA_FILE = str(tmp_path / "root.der")
    settings.ATTESTATION_COLLATERAL_FILE = str(tmp_path / "collateral.json")
    admin = user_with().pk
    attestation_services.allowlist_add(
        actor_id=admin,
        mrtd=CONTROL_PLANE_MRTD.hex(),
        rtmrs=PINNED_RTMRS,
        build_version="cp",
        source_commit="829f8a9",
        service=CP_SERVICE,
    )
    attestation_services.allowlist_add(
        actor_id=admin, mrtd=EXECUTOR_MRTD.hex(), rtmrs=PINNED_RTMRS, build_version="1", source_commit="c0"
    )
    cache.clear()


def seed_custody(w3: Web3, tokens: dict[str, str]) -> None:
    for asset, address in tokens.items():
        held = token(w3, address).functions.balanceOf(CUSTODY.address).call()
        services.ledger_record(
            tx=transfer(
                f"custody-seed-{asset}",
                "deposit_credit",
                asset=asset,
                amount=held,
                source="external:chain",
                target="custody",
            )
        )


def keys(sim: RunningExchange, owner_id: int) -> tuple[ExchangeAccount, ExchangeAccount]:
    trading_key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    treasury_key = sim.sim.create_key(trading_key.account_id, permissions=frozenset({Permission.WITHDRAW}))
    trading = accounts.exchange_account_enrol(
        owner_id=owner_id,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(trading_key.key, trading_key.secret),
    )
    treasury = accounts.exchange_account_enrol(
        owner_id=owner_id,
        exchange="binance",
        label="treasury",
        role="treasury",
        credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
    )
    return trading, treasury


def drive(w3: Web3, until: Callable[[], bool], *, what: str, timeout: float = 90.0) -> None:
    """Act as beat (queue the periodic tasks) and as the chain (mine) until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        tasks.track_deposits.delay()
        tasks.drive_jobs.delay()
        tasks.track_withdrawals.delay()
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.5)


def state_of(order: MMOrder) -> str:
    return MMOrder.objects.get(pk=order.pk).state


@pytest.mark.django_db(transaction=True)
def test_the_loop_funds_runs_reports_stops_and_returns_every_unit(
    configured: None,
    worker: None,
    w3: Web3,
    sim: RunningExchange,
    tokens: dict[str, str],
    executor_url: str,
    control_plane: tuple[ControlPlane, str],
) -> None:
    seed_custody(w3, tokens)
    owner = user_with()
    trading, treasury = keys(sim, owner.pk)
    order = orders.mm_order_create(
        owner_id=owner.pk,
        exchange_account_id=trading.pk,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=1_000 * USDT,
        strategy={
            "params": {"bid_spread": "0.001", "ask_spread": "0.001", "order_amount": "200", "levels": 2},
            "report_interval_seconds": 10,
            "sample_seconds": 1,
        },
    )
    tasks.fund_order.delay(order.pk)
    drive(w3, lambda: state_of(order) == "running", what="the job to run")

    def reports_with_fills() -> bool:
        tasks.sync_job.delay(order.pk)
        return ExecutionReport.objects.filter(order=order, fills__gt=0).exists()

    drive(w3, reports_with_fills, what="a verified report with fills", timeout=60)
    order.refresh_from_db()
    assert order.executor_signing_key
    assert order.job_spec is not None
    # Routed through discovery after the control plane verified; the executor attested before its secret.
    assert order.executor_url == executor_url
    assert control_plane[0].requests["GET /api/v1/attestation"] >= 1
    assert control_plane[0].requests["GET /api/v1/services"] >= 1
    attested = AttestationRecord.objects.filter(ok=True, executor__url=executor_url).order_by("-id").first()
    assert attested is not None
    assert attested.signing_key == order.executor_signing_key
    assert attested.mrtd == EXECUTOR_MRTD.hex()
    assert not ExecutorRecord.objects.get(url=executor_url).hardware_attested  # the dev root, and marked so
    assert order.job_spec["strategy"]["params"]["order_amount"] == "200"

    services.mm_order_stop(order_id=order.pk)
    tasks.wind_down.delay(order.pk)
    drive(w3, lambda: MMOrder.objects.get(pk=order.pk).job_id == "", what="the job to stop")
    open_orders = sim.make_ccxt(*_trading_key(trading)).fetch_open_orders("MMT/USDT")
    assert open_orders == []

    order = homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    # The beat's withdrawal tracking runs too and may be the one that sends a withdrawal while this call waits for
    # its lock: the order moves on to withdrawing_back by whichever call saw the last one sent.
    assert order.state in ("stopping", "withdrawing_back")
    drive(w3, lambda: state_of(order) == "settled", what="the funds to come home")
    steps = list(MMOrder.objects.get(pk=order.pk).transitions.order_by("pk").values_list("to_state", flat=True))
    assert steps[-2:] == ["withdrawing_back", "settled"]
    assert steps.count("withdrawing_back") == 1

    # Every verified report is stored once, chained, and every fill in them is one ledger entry.
    reports = list(ExecutionReport.objects.filter(order=order).order_by("sequence"))
    assert [r.sequence for r in reports] == list(range(len(reports)))
    fills = sum(r.fills for r in reports)
    assert fills > 0
    assert LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count() == fills
    # The registry's reputation counts each stored report once (the worker and the wind-down both pulled).
    registry = ExecutorRecord.objects.get(url=executor_url)
    assert (registry.reports_accepted, registry.reports_refused) == (len(reports), 0)
    # The ledger is balanced per asset and agrees with the chain to the base unit.
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}
    for asset, address in tokens.items():
        on_chain = token(w3, address).functions.balanceOf(CUSTODY.address).call()
        assert selectors.ledger_balance(account=f"custody:{asset}") == on_chain, asset
    assert selectors.order_holdings(order) == {}
    assert selectors.ledger_balances(prefix=f"transit:o{order.pk}:") == {}
    # What stayed on the exchange is only the dust of rounded entries (≤ one base unit each).
    left = sim.make_ccxt(*_trading_key(trading)).fetch_balance()["total"]
    rounded = LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-", memo="rounded").count()
    for asset, unit in (("USDT", USDT), ("MMT", MMT)):
        dust = Decimal(str(left.get(asset) or 0)) * unit
        assert 0 <= dust <= rounded, (asset, dust, rounded)
    events = list(MMOrder.objects.get(pk=order.pk).transitions.values_list("event", flat=True))
    assert events == [
        "fund",
        "transfer_sent",
        "transfer_mined",
        "deposit_confirmed",
        "start",
        "job_running",
        "stop",
        "orders_settled",
        "withdrawal_arrived",
    ]


def _trading_key(account: ExchangeAccount) -> tuple[str, str]:
    creds = accounts.exchange_account_credentials(account=account)
    return creds.api_key, creds.secret
