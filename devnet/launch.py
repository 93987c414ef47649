"""`make demo`: the whole system on its embedded defaults, under honcho.

    python -m devnet.launch [--web-port 8000] [--no-executor]

Starts an embedded Redis (unless REDIS_URL is set), Anvil with the project's token deployed, the web server,
a Celery worker, beat and one executor; SQLite unless DATABASE_URL is set. Ctrl-C stops every process it
started (honcho signals each process group, then kills what is left after 5 s).

Each Django process runs through `python -m devnet.launch stage NAME`, which waits for what the process
needs, and for `web` also migrates, ensures the demo admin and deploys the token, before exec'ing it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.request import urlopen

from devnet.ports import free_port, port_is_free, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEMO_ADMIN = "admin"
# Every process the demo starts carries this variable; the launcher test uses it to prove none is left.
RUN_MARKER = "MRMARKET_DEMO_RUN"


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _pick_port(preferred: int, name: str) -> int:
    if port_is_free(preferred):
        return preferred
    port = free_port()
    _say(f"port {preferred} for {name} is taken; using {port}")
    return port


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


def run_demo(args: argparse.Namespace) -> int:
    from honcho.manager import Manager

    started = time.monotonic()
    data_dir = _data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex
    web_port = _pick_port(args.web_port, "web")
    anvil_port = _pick_port(args.anvil_port, "anvil")
    executor_port = _pick_port(args.executor_port, "executor")
    exchange_port = _pick_port(args.exchange_port, "exchange")

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.dev")
    env.update(
        {
            RUN_MARKER: run_id,
            "PYTHONUNBUFFERED": "1",
            "MRMARKET_DATA_DIR": str(data_dir),
            "CHAIN_RPC_URL": f"http://127.0.0.1:{anvil_port}",
            "EXECUTOR_URLS": f"http://127.0.0.1:{executor_port}",
            # ccxt's own Binance class, its API hosts replaced by the devnet exchange (docs/devnet.md).
            "EXCHANGE_API_URLS": json.dumps({"binance": f"http://127.0.0.1:{exchange_port}"}),
            "DEMO_EXCHANGE_PORT": str(exchange_port),
            "DEMO_WEB_PORT": str(web_port),
        }
    )
    manager = Manager()
    if os.environ.get("REDIS_URL"):
        _say("using REDIS_URL from the environment")
    else:
        redis_port = _pick_port(args.redis_port, "redis")
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        manager.add_process("redis", _redis_command(redis_port, data_dir), env=env, cwd=str(ROOT))

    anvil = ROOT / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        _say("node_modules/.bin/anvil is missing: run `npm ci` (make demo does)")
        return 2
    # One block a second, like a real chain: confirmations then advance even when nobody transacts.
    anvil_cmd = [str(anvil), "--port", str(anvil_port), "--silent", "--block-time", "1"]
    anvil_cmd += ["--state", str(data_dir / "anvil-state.json")]
    manager.add_process("anvil", shlex.join(anvil_cmd), env=env, cwd=str(ROOT))
    for name in ("web", "worker", "beat", "exchange"):
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
        _say(f"executor: http://127.0.0.1:{executor_port}/v1/health")
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
    ensure_demo_admin(**_demo_credentials(_data_dir()))
    state = _data_dir() / "devnet-chain.json"
    argv = [PY, "-m", "devnet.protocol", "bootstrap", "--rpc", os.environ["CHAIN_RPC_URL"], "--state", str(state)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT)  # noqa: S603 - fixed argv
    print(f"[web] demo contracts: {done.stdout.strip()}", flush=True)
    from campaigns.models import CampaignMetadata

    digest = json.loads(state.read_text())["metadata_hash"]
    document = json.loads((_data_dir() / f"metadata-{digest.removeprefix('0x')}.json").read_text())
    CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": document})
    _record_custody_holdings(json.loads(state.read_text())["token"])


def _record_custody_holdings(token_address: str) -> None:
    """What the dev custody wallet holds on chain enters the ledger once, as an onboarding deposit would, so that
    reconciliation starts from agreement (idempotent by key: the token's address)."""
    from django.conf import settings
    from eth_account import Account

    from devnet.chain import connect, token
    from execution.domain.ledger import transfer
    from execution.services import ledger_record

    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY).address
    held = token(connect(os.environ["CHAIN_RPC_URL"]), token_address).functions.balanceOf(custody).call()
    if held:
        ledger_record(
            tx=transfer(
                f"custody-onboarding-{token_address.lower()}",
                "deposit_credit",
                asset="USDT",
                amount=held,
                source="external:chain",
                target="custody",
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
    os.environ["CUSTODY_ASSETS"] = json.dumps({"USDT": {"token": state["token"], "decimals": 6}})


def _wait_for_bootstrap(name: str) -> None:
    deadline = time.monotonic() + 180
    while not _bootstrap_marker().exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"[{name}] the web process did not finish bootstrapping")
        time.sleep(0.3)


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
    else:
        _wait_for_bootstrap(name)
        argv = [PY, "manage.py", name]
    _export_protocol_addresses()
    os.execv(PY, argv)  # noqa: S606 - replace this process: honcho then signals the real server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.launch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    stage = sub.add_parser("stage", help=argparse.SUPPRESS)
    stage.add_argument("name", choices=["web", "worker", "beat", "exchange"])
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("DEMO_WEB_PORT", 8000)))
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--anvil-port", type=int, default=8545)
    parser.add_argument("--executor-port", type=int, default=8700)
    parser.add_argument("--exchange-port", type=int, default=8710)
    parser.add_argument("--no-executor", action="store_true")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.command == "stage":
        run_stage(args.name)
        return 0
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
