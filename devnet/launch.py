"""`make demo`: the whole system on its embedded defaults, under honcho.

    python -m devnet.launch [--web-port 8000] [--no-executor] [--reset]

Starts an embedded Redis (unless REDIS_URL is set), Anvil with the project's token deployed, the web server,
a Celery worker, beat and one executor; SQLite unless DATABASE_URL is set. Ctrl-C stops every process it
started (honcho signals each process group, then kills what is left after 5 s).

Each Django process runs through `python -m devnet.launch stage NAME`, which waits for what the process
needs, and for `web` also migrates, ensures the demo admin and deploys the token, before exec'ing it.

A second start resumes from the data directory: Anvil reloads its state, the exchange simulator its
customers, the database is the same, the ports are the ones used before when free, and the demo MM order runs
on (a new job when the restarted executor no longer knows the old one). When the chain or the exchange did not
survive (their state files gone), the database is reset to match instead of pointing at a world that no longer
exists. `--reset` (`make demo-reset`) starts from nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from devnet.ports import free_port, port_is_free, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEMO_ADMIN = "admin"
# Every process the demo starts carries this variable; the launcher test uses it to prove none is left.
RUN_MARKER = "MRMARKET_DEMO_RUN"
# The demo executor's "build" as the dev quote authority measures it (a real TD would measure the image).
DEV_EXECUTOR_MRTD = hashlib.sha384(b"mrmarket mm-executor dev build").hexdigest()
DEV_CONTROL_PLANE_MRTD = hashlib.sha384(b"mrmarket easyenclave control plane dev build").hexdigest()
# …and its RTMR0..3 (boot config, kernel, command line and initrd, workload), each pinned in the allowlist as
# every entry must: an MRTD alone admits any workload on the same firmware (docs/attestation.md).
DEV_EXECUTOR_RTMRS = tuple(hashlib.sha384(f"mrmarket mm-executor dev rtmr{i}".encode()).hexdigest() for i in range(4))
DEV_CONTROL_PLANE_RTMRS = tuple(
    hashlib.sha384(f"mrmarket easyenclave control plane dev rtmr{i}".encode()).hexdigest() for i in range(4)
)


def _rtmr_args(rtmrs: tuple[str, ...]) -> list[str]:
    return [arg for i, value in enumerate(rtmrs) for arg in (f"--rtmr{i}", value)]


# Files in the data directory, beside the database.
PORTS_FILE = "ports.json"
EXCHANGE_STATE_FILE = "exchange-state.json"
RESET_MARKER = "reset-database"
DEMO_LABEL = "demo"
# The Anvil dev account whose address the demo order's rewards go to (it joins the campaign as a participant).
DEMO_REWARD_ACCOUNT_INDEX = 5


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


DEFAULT_PORTS = {
    "web": 8000,
    "redis": 6390,
    "anvil": 8545,
    "executor": 8700,
    "exchange": 8710,
    "pccs": 8720,
    "easyenclave": 8730,
}


def _pick_port(asked: int | None, name: str, used_before: dict[str, int]) -> int:
    """The port asked for on the command line, else the default (the URLs the README names), else the one this
    demo fell back to last time (what its database stored stays valid); the first of them that is free, else
    any free one."""
    candidates = [asked] if asked else [DEFAULT_PORTS[name], used_before.get(name)]
    for port in dict.fromkeys(candidates):
        if port and port_is_free(port):
            used_before[name] = port
            return port
    port = free_port()
    _say(f"port {candidates[0] or DEFAULT_PORTS[name]} for {name} is taken; using {port}")
    used_before[name] = port
    return port


def _ports_used_before(data_dir: Path) -> dict[str, int]:
    path = data_dir / PORTS_FILE
    try:
        ports = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # no earlier run, or a file cut short by a kill: the defaults, then free ports
    return {k: int(v) for k, v in ports.items()} if isinstance(ports, dict) else {}


def reset_demo(data_dir: Path) -> None:
    """Forget every piece of the demo's state: the chain, the exchange, the database (SQLite here; a database
    at DATABASE_URL is flushed by the web stage on the next start) and the rest of the data directory."""
    if data_dir.exists():
        for entry in data_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("DATABASE_URL"):
        (data_dir / RESET_MARKER).touch()
    _say(f"reset: {data_dir} is empty; the next start is a fresh demo")


def _data_dir() -> Path:
    return Path(os.environ.get("MRMARKET_DATA_DIR", ROOT / "var"))


def _demo_credentials(data_dir: Path) -> dict[str, str]:
    path = data_dir / "demo-admin.json"
    if path.exists():
        creds: dict[str, str] = json.loads(path.read_text())
        return creds
    creds = {"username": DEMO_ADMIN, "password": secrets.token_urlsafe(12)}
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


def _redis_command(port: int, data_dir: Path) -> str:
    from devnet.redis import server_argv

    workdir = data_dir / "redis"
    workdir.mkdir(exist_ok=True)
    return shlex.join(server_argv(port, str(workdir)))


def _watch_readiness(web_port: int, creds: dict[str, str], started: float, timeout: float = 300) -> None:
    url = f"http://127.0.0.1:{web_port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    _say(f"ready in {time.monotonic() - started:.0f}s: every dependency in {url} is green")
                    _say(f"admin: http://127.0.0.1:{web_port}/admin/  login {creds['username']} / {creds['password']}")
                    return
        except OSError:
            pass
        time.sleep(1)
    _say(f"not ready after {timeout:.0f}s: see {url}")


def _controller_public_key() -> str:
    """The public half of the key Django signs job control with (the dev default unless the environment sets
    one): what the demo's executor pins."""
    from mrmarket.config import DEV_CONTROLLER_SIGNING_KEY
    from wire.keys import SigningKey

    seed = os.environ.get("CONTROLLER_SIGNING_KEY") or DEV_CONTROLLER_SIGNING_KEY
    return SigningKey.from_seed(bytes.fromhex(seed)).public_hex


def _prepare_dev_quote_authority(data_dir: Path) -> None:
    """The dev quote authority (its keys made once, before the processes that share them start) and its root CA
    (DER) for Django's verifier; collateral comes from the PCCS stand-in, as it would from a real PCCS."""
    from devnet.tdx.authority import DevQuoteAuthority

    authority = DevQuoteAuthority.load_or_create(data_dir / "tdx")
    (data_dir / "tdx-root.der").write_bytes(authority.root_ca_der)


def run_demo(args: argparse.Namespace) -> int:
    from honcho.manager import Manager

    started = time.monotonic()
    data_dir = _data_dir()
    if args.reset:
        reset_demo(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex
    used = _ports_used_before(data_dir)
    web_port = _pick_port(args.web_port, "web", used)
    anvil_port = _pick_port(args.anvil_port, "anvil", used)
    executor_port = _pick_port(args.executor_port, "executor", used)
    exchange_port = _pick_port(args.exchange_port, "exchange", used)
    pccs_port = _pick_port(args.pccs_port, "pccs", used)
    easyenclave_port = _pick_port(args.easyenclave_port, "easyenclave", used)
    executor_url = f"http://127.0.0.1:{executor_port}"

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.dev")
    env.update(
        {
            RUN_MARKER: run_id,
            "PYTHONUNBUFFERED": "1",
            "MRMARKET_DATA_DIR": str(data_dir),
            "CHAIN_RPC_URL": f"http://127.0.0.1:{anvil_port}",
            # Executors come from EasyEnclave discovery (its control plane verified first), none configured.
            "EXECUTOR_URLS": "",
            "EASYENCLAVE_URL": f"http://127.0.0.1:{easyenclave_port}",
            "EASYENCLAVE_ENVIRONMENT": "devnet",
            # The executor trusts the dev controller key (its public half) and reaches the devnet exchange.
            "EXECUTOR_CONTROLLER_KEY": _controller_public_key(),
            "EXECUTOR_EXCHANGE_API_URLS": json.dumps({"binance": f"http://127.0.0.1:{exchange_port}"}),
            # The devnet exchange is plain http: dev mode, attested as such, which Django's dev profile accepts.
            "EXECUTOR_DEV": "true",
            # Attestation end to end on the dev quote authority: the executor asks the EasyEnclave-runtime socket
            # it serves for quotes; Django fetches collateral from the PCCS stand-in and verifies under the dev
            # root (such executors are marked not hardware-attested).
            "EXECUTOR_QUOTE_PROVIDER": "easyenclave",
            "EXECUTOR_EASYENCLAVE_SOCKET": str(data_dir / "tdx.sock"),
            "ATTESTATION_DEV_ROOT_CA_FILE": str(data_dir / "tdx-root.der"),
            "ATTESTATION_PCCS_URL": f"http://127.0.0.1:{pccs_port}",
            # ccxt's own Binance class, its API hosts replaced by the devnet exchange (docs/devnet.md).
            "EXCHANGE_API_URLS": json.dumps({"binance": f"http://127.0.0.1:{exchange_port}"}),
            "DEMO_EXCHANGE_PORT": str(exchange_port),
            "DEMO_EXECUTOR_URL": "" if args.no_executor else executor_url,
            "DEMO_WEB_PORT": str(web_port),
            # Sign-In with Ethereum messages name the site as the browser shows it (host and port).
            "SIWE_DOMAIN": f"127.0.0.1:{web_port}",
            # The recording oracle: the bundle URI it records on chain, and the demo's short epochs (a few
            # minutes, docs/scoring.md "Epoch close"), so that an epoch is closed and recorded within minutes.
            "ORACLE_PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "ORACLE_REPORT_GRACE_SECONDS": "30",
            "ORACLE_CLOSE_INTERVAL_SECONDS": "10",
            "ORACLE_PREVIEW_INTERVAL_SECONDS": "30",
            # The reputation oracle pays each recorded epoch as soon as beat sees it.
            "ORACLE_PAYOUT_INTERVAL_SECONDS": "10",
        }
    )
    manager = Manager()
    if os.environ.get("REDIS_URL"):
        _say("using REDIS_URL from the environment")
    else:
        redis_port = _pick_port(args.redis_port, "redis", used)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        manager.add_process("redis", _redis_command(redis_port, data_dir), env=env, cwd=str(ROOT))
    tmp = data_dir / f"{PORTS_FILE}.tmp"
    tmp.write_text(json.dumps(used))
    os.replace(tmp, data_dir / PORTS_FILE)  # whole or not at all: a kill mid-write leaves the last run's file

    _prepare_dev_quote_authority(data_dir)
    tdx_cmd = [PY, "-m", "devnet.tdx", "serve", "--socket", str(data_dir / "tdx.sock"), "--state"]
    tdx_cmd += [str(data_dir / "tdx"), "--mrtd", DEV_EXECUTOR_MRTD, *_rtmr_args(DEV_EXECUTOR_RTMRS)]
    manager.add_process("tdx", shlex.join(tdx_cmd), env=env, cwd=str(ROOT))
    pccs_cmd = [PY, "-m", "devnet.tdx", "pccs", "--state", str(data_dir / "tdx"), "--port", str(pccs_port)]
    manager.add_process("pccs", shlex.join(pccs_cmd), env=env, cwd=str(ROOT))
    ee_cmd = [PY, "-m", "devnet.easyenclave", "--state", str(data_dir / "tdx"), "--port", str(easyenclave_port)]
    ee_cmd += ["--mrtd", DEV_CONTROL_PLANE_MRTD, *_rtmr_args(DEV_CONTROL_PLANE_RTMRS), "--health-path", "/v1/health"]
    if not args.no_executor:  # the executor's deployment registers it, as EasyEnclave's launcher would
        registration = {
            "name": "mm-executor",
            "endpoints": {"devnet": executor_url},
            "mrtd": DEV_EXECUTOR_MRTD,
            "source_commit": "working-tree",
            "tags": ["exchange:binance", "region:local", "environment:devnet"],
        }
        ee_cmd += ["--register", json.dumps(registration)]
    manager.add_process("easyenclave", shlex.join(ee_cmd), env=env, cwd=str(ROOT))
    anvil = ROOT / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        _say("node_modules/.bin/anvil is missing: run `npm ci` (make demo does)")
        return 2
    # One block a second, like a real chain: confirmations then advance even when nobody transacts. Its state is
    # written every few seconds as well as on exit, so that even a killed Anvil resumes near where it was.
    anvil_cmd = [str(anvil), "--port", str(anvil_port), "--silent", "--block-time", "1"]
    anvil_cmd += ["--state", str(data_dir / "anvil-state.json"), "--state-interval", "5"]
    manager.add_process("anvil", shlex.join(anvil_cmd), env=env, cwd=str(ROOT))
    # The recorder is one shard of the market-data recorder: the books the recording oracle scores against.
    # depth_feed is one shard of the live-depth producer: the frames the public campaign pages draw.
    for name in ("web", "worker", "beat", "exchange", "recorder", "depth_feed"):
        manager.add_process(name, shlex.join([PY, "-m", "devnet.launch", "stage", name]), env=env, cwd=str(ROOT))
    if not args.no_executor:
        executor_cmd = [PY, "-m", "executor", "--host", "127.0.0.1", "--port", str(executor_port)]
        manager.add_process("executor", shlex.join(executor_cmd), env=env, cwd=str(ROOT))

    creds = _demo_credentials(data_dir)
    _say(f"web:      http://127.0.0.1:{web_port}/  (readiness /readyz, metrics /metrics, API /api/v1/schema)")
    _say(f"admin:    http://127.0.0.1:{web_port}/admin/  (system status: /admin/system-status/)")
    _say(f"login:    {creds['username']} / {creds['password']}")
    _say(f"chain:    {env['CHAIN_RPC_URL']} (Anvil, chain id 31337)")
    _say(f"redis:    {env['REDIS_URL']}")
    if not args.no_executor:
        _say(f"executor: {executor_url}/v1/health")
    _say(f"easyenclave: http://127.0.0.1:{easyenclave_port}/api/v1/services (control-plane stand-in)")
    _say(f"exchange: http://127.0.0.1:{exchange_port}/api/v3/exchangeInfo (devnet simulator, Binance dialect)")
    _say("Ctrl-C stops everything")
    threading.Thread(target=_watch_readiness, args=(web_port, creds, started), daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)


# --- stages: run inside the processes honcho starts ------------------------------------------------------------


def _wait(port_url: str, name: str, timeout: float = 60) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(port_url)
    if not wait_for_port(parts.port or 0, host=parts.hostname or "127.0.0.1", timeout=timeout):
        raise SystemExit(f"[{name}] gave up waiting for {parts.hostname}:{parts.port}")


def _bootstrap_marker() -> Path:
    return _data_dir() / f"bootstrap-{os.environ[RUN_MARKER]}.done"


def _bootstrap_web() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from devnet.bootstrap import ensure_demo_admin

    call_command("migrate", interactive=False, verbosity=0)
    _match_database_to_the_world()
    admin = ensure_demo_admin(**_demo_credentials(_data_dir()))
    _allowlist_dev_build(admin.pk)
    state = _data_dir() / "devnet-chain.json"
    argv = [PY, "-m", "devnet.protocol", "bootstrap", "--rpc", os.environ["CHAIN_RPC_URL"], "--state", str(state)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT)  # noqa: S603 - fixed argv
    print(f"[web] demo contracts: {done.stdout.strip()}", flush=True)
    from campaigns.models import CampaignMetadata

    digest = json.loads(state.read_text())["metadata_hash"]
    document = json.loads((_data_dir() / f"metadata-{digest.removeprefix('0x')}.json").read_text())
    CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": document})
    from devnet.chain import connect, dev_accounts, ensure_base_token

    ensure_base_token(connect(os.environ["CHAIN_RPC_URL"]), state, holders=[dev_accounts()[3]])
    recorded = json.loads(state.read_text())
    _record_custody_holdings({"USDT": recorded["token"], "MMT": recorded["base_token"]})


def _chain_has_the_demo(recorded: dict[str, str]) -> bool:
    """Whether the chain holds the contracts recorded when the demo deployed them (Anvil reloads its state file;
    a chain that started afresh has no code there). Its block 0 is no fingerprint: a reloaded long chain may
    not keep its earliest blocks."""
    from web3 import Web3

    from devnet.chain import connect

    w3 = connect(os.environ["CHAIN_RPC_URL"])
    addresses = [recorded[k] for k in ("token", "base_token", "factory", "campaign") if recorded.get(k)]
    return bool(addresses) and all(w3.eth.get_code(Web3.to_checksum_address(a)) for a in addresses)


def _reset_chain() -> None:
    from devnet.chain import connect

    connect(os.environ["CHAIN_RPC_URL"]).provider.make_request("anvil_reset", [])  # type: ignore[arg-type]


def _match_database_to_the_world() -> None:
    """The database describes one chain and one exchange: their campaigns, transfers, deposits and keys. When
    the chain started afresh (the contracts recorded in `devnet-chain.json` are not on it) or the exchange forgot
    its customers (its state file is gone), what the database says no longer exists anywhere, so it is emptied
    and the demo starts afresh, together with the chain and the exchange (a new exchange on the old chain would
    find the old deposits at the addresses it gives its new accounts); `--reset` asks for the same. Otherwise
    everything resumes as it was."""
    from django.core.management import call_command

    from execution.models import ExchangeAccount, LedgerTransaction

    data_dir = _data_dir()
    chain_state = data_dir / "devnet-chain.json"
    reason = ""
    if (data_dir / RESET_MARKER).exists():
        reason = "a reset was asked for"
    elif chain_state.exists() and not _chain_has_the_demo(json.loads(chain_state.read_text())):
        reason = "the chain started afresh"
    elif not chain_state.exists() and LedgerTransaction.objects.exists():
        reason = "the database names no chain"
    elif not (data_dir / EXCHANGE_STATE_FILE).exists() and ExchangeAccount.objects.exists():
        reason = "the exchange forgot its accounts"
    if not reason:
        return
    print(f"[web] {reason}: the demo starts afresh (database, chain and exchange emptied)", flush=True)
    call_command("flush", interactive=False, verbosity=0)
    for stale in [chain_state, data_dir / EXCHANGE_STATE_FILE, *data_dir.glob("metadata-*")]:
        stale.unlink(missing_ok=True)
    _reset_chain()
    (data_dir / RESET_MARKER).unlink(missing_ok=True)


def _allowlist_dev_build(actor_id: int) -> None:
    """Allowlist the dev builds the dev quote authority measures: the executor and the EasyEnclave control plane."""
    from attestation import services
    from attestation.easyenclave import CONTROL_PLANE_SERVICE, EXECUTOR_SERVICE
    from attestation.models import MeasurementEntry

    builds = (
        (EXECUTOR_SERVICE, DEV_EXECUTOR_MRTD, DEV_EXECUTOR_RTMRS),
        (CONTROL_PLANE_SERVICE, DEV_CONTROL_PLANE_MRTD, DEV_CONTROL_PLANE_RTMRS),
    )
    for service, mrtd, rtmrs in builds:
        r0, r1, r2, r3 = rtmrs
        pinned = {"rtmr0": r0, "rtmr1": r1, "rtmr2": r2, "rtmr3": r3}
        if not MeasurementEntry.objects.filter(service=service, mrtd=mrtd, removed_at__isnull=True, **pinned).exists():
            services.allowlist_add(
                actor_id=actor_id,
                mrtd=mrtd,
                rtmrs=(r0, r1, r2, r3),
                build_version="dev",
                source_commit="working-tree",
                service=service,
                note="devnet: measured by the dev quote authority, not hardware",
            )


def _record_custody_holdings(tokens: dict[str, str]) -> None:
    """What the dev custody wallet holds on chain when the demo first sees it enters the ledger once, as an
    onboarding deposit would, so that reconciliation starts from agreement. Once per token for the life of the
    database: on a later start the wallet holds less (funds went to the exchange) and the ledger already says
    where they went, so a second onboarding would be a second, different deposit under the same key."""
    from django.conf import settings
    from eth_account import Account

    from devnet.chain import connect, token
    from execution.domain.ledger import CUSTODY, EXTERNAL_CHAIN, transfer
    from execution.models import LedgerTransaction
    from execution.services import ledger_record

    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY).address
    for asset, token_address in tokens.items():
        key = f"custody-onboarding-{token_address.lower()}"
        if LedgerTransaction.objects.filter(key=key).exists():
            continue
        held = token(connect(os.environ["CHAIN_RPC_URL"]), token_address).functions.balanceOf(custody).call()
        if held:
            ledger_record(
                tx=transfer(
                    key,
                    "deposit_credit",
                    asset=asset,
                    amount=held,
                    source=EXTERNAL_CHAIN,
                    target=CUSTODY,
                )
            )
    for stale in _data_dir().glob("bootstrap-*.done"):
        stale.unlink(missing_ok=True)
    _bootstrap_marker().touch()


def _export_protocol_addresses() -> None:
    """Point the Django processes at the demo's factory (recorded by the web stage's bootstrap)."""
    state = json.loads((_data_dir() / "devnet-chain.json").read_text())
    os.environ["CAMPAIGN_FACTORY_ADDRESS"] = state["factory"]
    # The custody wallet (Anvil dev account 3 in the dev profile) holds the demo token as USDT.
    os.environ["CUSTODY_ASSETS"] = json.dumps(
        {
            "USDT": {"token": state["token"], "decimals": 6},
            "MMT": {"token": state["base_token"], "decimals": 18},
        }
    )


def _wait_for_bootstrap(name: str) -> None:
    deadline = time.monotonic() + 180
    while not _bootstrap_marker().exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"[{name}] the web process did not finish bootstrapping")
        time.sleep(0.3)


def _ensure_demo_order() -> None:
    """The demo's market-making order: an operator's trading and treasury keys on the devnet exchange, enrolled,
    and an MM order funded from custody, serving the demo campaign for a reward address that joins it as a
    participant (Sign-In with Ethereum); beat then drives it to a running job on the executor, and the recording
    oracle scores it. Once for the life of the database (the exchange keeps its accounts across restarts): a later
    start resumes that order."""
    import django

    _wait(f"http://127.0.0.1:{os.environ['DEMO_EXCHANGE_PORT']}", "beat", timeout=120)
    django.setup()
    from django.contrib.auth import get_user_model

    from execution import accounts, orders, tasks
    from execution.models import ExchangeAccount, MMOrder
    from mrmarket.exchanges.credentials import ExchangeCredentials

    label = DEMO_LABEL
    existing = MMOrder.objects.filter(exchange_account__label=label).order_by("pk").first()
    if existing is not None:
        print(f"[beat] demo MM order {existing.pk} on {existing.symbol} resumes ({existing.state})", flush=True)
        _say_audit_page(existing.campaign_chain_id, existing.campaign_address)
        _reattest_restarted_executor()
        return
    if ExchangeAccount.objects.filter(label=label).exists():
        # A first start stopped between enrolling the keys and creating the order: `make demo-reset` redoes it.
        print("[beat] the demo's keys are enrolled but it has no MM order: `make demo-reset` starts afresh", flush=True)
        return
    campaign = _indexed_demo_campaign()
    exchange = f"http://127.0.0.1:{os.environ['DEMO_EXCHANGE_PORT']}/_devnet"
    account = _post_json(f"{exchange}/accounts", {"permissions": ["read", "trade"]})
    treasury = _post_json(f"{exchange}/accounts/{account['account_id']}/keys", {"permissions": ["withdraw"]})
    owner = get_user_model().objects.get(username=DEMO_ADMIN)
    trading = accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label=label,
        role="trading",
        credentials=ExchangeCredentials(account["api_key"], account["secret"]),
    )
    accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label=f"{label} treasury",
        role="treasury",
        credentials=ExchangeCredentials(treasury["api_key"], treasury["secret"]),
    )
    order = orders.mm_order_create(
        owner_id=owner.pk,
        exchange_account_id=trading.pk,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=2_000 * 10**6,
        strategy={
            # Quotes stay while the mid wanders within 30 bps, so that they rest long enough to score.
            "params": {
                "bid_spread": "0.002",
                "ask_spread": "0.002",
                "levels": 2,
                "order_amount": "400",
                "refresh_tolerance": "0.003",
            },
            # Reports every 10 s: well inside the oracle's grace for late reports after each short epoch.
            "report_interval_seconds": 10,
        },
        campaign_chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        reward_address=_reward_account().address.lower(),
    )
    _join_demo_campaign(campaign, owner_id=owner.pk, order_id=order.pk)
    tasks.fund_order.delay(order.pk)
    print(
        f"[beat] demo MM order {order.pk} on MMT/USDT for campaign {campaign.address}, rewards to "
        f"{_reward_account().address}: funding queued; beat drives it to a running job",
        flush=True,
    )
    _say_audit_page(campaign.chain_id, campaign.address)


def _say_audit_page(chain_id: int | None, address: str | None) -> None:
    """Where the campaign's epochs show as they are closed, recorded and paid (the first within about ten minutes)."""
    from django.conf import settings

    if chain_id is None or not address:
        return
    base = settings.ORACLE_PUBLIC_BASE_URL.rstrip("/")
    print(f"[beat] campaign page: {base}/campaigns/{chain_id}/{address}/ (live depth, budget left, no-admin checks)")
    print(
        f"[beat] audit page: {base}/campaigns/{chain_id}/{address}/audit (each epoch closed, recorded, paid)",
        flush=True,
    )
    print(f"[beat] stability reports: {base}/campaigns/{chain_id}/{address}/stability (uptime, spread, drawdown)")
    print(f"[beat] depth is real: {base}/proof/ (each executor's evidence, checked again in your browser)")
    print(f"[beat] operator panel: {base}/admin/operator/ (the demo order's exposure, PnL, alerts)", flush=True)
    print(
        f"[beat] create a campaign: {base}/campaigns/new with a browser wallet on {settings.CHAIN_RPC_URL} (chain id "
        f"{chain_id}); Anvil's dev accounts 0-3 (its well-known test mnemonic) hold the demo's USDT",
        flush=True,
    )


def _reward_account() -> Any:
    from devnet.chain import dev_accounts

    return dev_accounts()[DEMO_REWARD_ACCOUNT_INDEX]


def _indexed_demo_campaign() -> Any:
    """The demo campaign as the indexer mirrors it (indexed here at once rather than at the next beat)."""
    from django.conf import settings

    from campaigns.indexer import chain_index
    from campaigns.models import Campaign
    from mrmarket.chain import get_web3

    address = json.loads((_data_dir() / "devnet-chain.json").read_text())["campaign"].lower()
    deadline = time.monotonic() + 120
    while True:
        chain_index(
            w3=get_web3(), factory=settings.CAMPAIGN_FACTORY_ADDRESS, confirmations=settings.CHAIN_CONFIRMATIONS
        )
        campaign = Campaign.objects.filter(address=address, funded=True).first()
        if campaign is not None:
            return campaign
        if time.monotonic() > deadline:
            raise SystemExit(f"[beat] the demo campaign {address} was not indexed in time")
        time.sleep(1)


def _join_demo_campaign(campaign: Any, *, owner_id: int, order_id: int) -> None:
    """The reward address joins the campaign as a participant would from a wallet: an EIP-4361 message naming the
    campaign, signed with its key, checked by the same verifier (nonce, domain, chain, expiry)."""
    from datetime import UTC, datetime, timedelta

    from django.conf import settings
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from siwe import SiweMessage

    from mrmarket.siwe import campaign_resource
    from payouts import services

    reward = _reward_account()
    now = datetime.now(UTC)

    def iso(at: datetime) -> str:
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    message = SiweMessage(
        domain=settings.SIWE_DOMAIN,
        address=reward.address,
        statement="Join the campaign as a market maker.",
        uri=f"http://{settings.SIWE_DOMAIN}/participants",
        version="1",
        chain_id=campaign.chain_id,
        nonce=services.participant_nonce_issue(owner_id=owner_id).value,
        issued_at=iso(now),
        expiration_time=iso(now + timedelta(minutes=5)),
        resources=[campaign_resource(campaign.chain_id, campaign.address)],
    ).prepare_message()
    signature = Account.from_key(reward.private_key).sign_message(encode_defunct(text=message)).signature.hex()
    services.participant_join(
        chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        message=message,
        signature="0x" + signature.removeprefix("0x"),
        owner_id=owner_id,
        mm_order_ids=(order_id,),
    )


def _reattest_restarted_executor() -> None:
    """The executor restarted with the demo (new keys, no jobs), perhaps on another port: have the registry
    verify every executor it knows now rather than at the next scheduled pass, so that the demo order's next
    job is routed at once (a record that failed while the demo was down would otherwise wait for that pass)."""
    url = os.environ.get("DEMO_EXECUTOR_URL")
    if not url:
        return
    _wait(url, "beat", timeout=60)
    from attestation.tasks import reattest_executors

    reattest_executors.delay()


def _post_json(url: str, body: dict[str, object]) -> dict[str, str]:
    from urllib.request import Request

    request = Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})  # noqa: S310
    with urlopen(request, timeout=10) as response:  # noqa: S310 - loopback devnet URL
        answer: dict[str, str] = json.loads(response.read())
        return answer


def run_stage(name: str) -> None:
    _wait(os.environ["REDIS_URL"], name)
    if name == "web":
        _wait(os.environ["CHAIN_RPC_URL"], name)
        _bootstrap_web()
        argv = [PY, "manage.py", "serve", "--host", "127.0.0.1", "--port", os.environ["DEMO_WEB_PORT"]]
    elif name == "exchange":
        _wait_for_bootstrap(name)  # the simulator takes the demo token recorded by the bootstrap as its USDT
        state = str(_data_dir() / "devnet-chain.json")
        argv = [PY, "-m", "devnet.exchange", "--host", "127.0.0.1", "--port", os.environ["DEMO_EXCHANGE_PORT"]]
        argv += ["--chain-rpc", os.environ["CHAIN_RPC_URL"], "--token-state", state, "--fund-hot-wallet", "1000000"]
        argv += ["--asset", f"MMT={json.loads(Path(state).read_text())['base_token']}"]
        argv += ["--state", str(_data_dir() / EXCHANGE_STATE_FILE)]
    elif name == "recorder":
        _wait_for_bootstrap(name)
        argv = [PY, "manage.py", "run_recorder", "--shard", "0", "--shards", "1"]
    elif name == "depth_feed":
        _wait_for_bootstrap(name)
        argv = [PY, "manage.py", "run_depth_feed", "--shard", "0", "--shards", "1"]
    else:
        _wait_for_bootstrap(name)
        argv = [PY, "manage.py", name]
    _export_protocol_addresses()
    if name == "beat":
        _ensure_demo_order()
    os.execv(PY, argv)  # noqa: S606 - replace this process: honcho then signals the real server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.launch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    stage = sub.add_parser("stage", help=argparse.SUPPRESS)
    stage.add_argument("name", choices=["web", "worker", "beat", "exchange", "recorder", "depth_feed"])
    web_port = os.environ.get("DEMO_WEB_PORT")
    parser.add_argument("--web-port", type=int, default=int(web_port) if web_port else None)
    parser.add_argument("--redis-port", type=int, default=None)
    parser.add_argument("--anvil-port", type=int, default=None)
    parser.add_argument("--executor-port", type=int, default=None)
    parser.add_argument("--exchange-port", type=int, default=None)
    parser.add_argument("--pccs-port", type=int, default=None)
    parser.add_argument("--easyenclave-port", type=int, default=None)
    parser.add_argument("--no-executor", action="store_true")
    parser.add_argument("--reset", action="store_true", help="forget the demo's state and start afresh")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.command == "stage":
        run_stage(args.name)
        return 0
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
