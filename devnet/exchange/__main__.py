"""python -m devnet.exchange --host 127.0.0.1 --port P [--chain-rpc URL --asset USDT=0x... ...]"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.server import build_app
from devnet.exchange.simulator import Simulator


def _asset(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not address.startswith("0x") or len(address) != 42:
        raise argparse.ArgumentTypeError("expected ASSET=0x<40 hex>")
    return name.upper(), address


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devnet.exchange", description="Binance-dialect exchange simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8710)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tick", default="0.5", help="seconds between market steps (default 0.5)")
    p.add_argument("--no-market", action="store_true", help="do not run the background agents")
    p.add_argument("--admin-token", default=None, help="require `Authorization: Bearer TOKEN` on /_devnet/")
    p.add_argument("--chain-rpc", default=None, help="JSON-RPC URL of the devnet chain; without it funds are off")
    p.add_argument("--asset", type=_asset, action="append", default=[], help="ASSET=0xTOKEN (repeatable)")
    p.add_argument(
        "--token-state",
        type=Path,
        default=None,
        help='the launcher\'s devnet-chain.json ({"token": "0x..."}): its token becomes the USDT asset',
    )
    p.add_argument(
        "--fund-hot-wallet",
        type=int,
        default=0,
        help="dev chains: mint tokens (whole units, by the dev token's minter) to the hot wallet when it holds less",
    )
    p.add_argument("--hot-wallet-key", default=None, help="hot wallet private key (default: Anvil dev account 9)")
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        help="keep customer accounts, keys, balances, deposits and withdrawals in this file across restarts",
    )
    p.add_argument("--confirmations", type=int, default=3)
    p.add_argument("--poll-interval", type=float, default=1.0)
    return p.parse_args(argv)


def _fund_hot_wallet(rpc_url: str, assets: dict[str, str], hot_key: str, units: int) -> None:
    """Top the hot wallet up on a dev chain, so withdrawals can be paid (the dev token's minter is dev account 0)."""
    from devnet.chain import connect, dev_accounts, mint
    from devnet.exchange.chain import ChainClient

    w3 = connect(rpc_url)
    client = ChainClient(rpc_url, hot_wallet_key=hot_key)
    for token_address in assets.values():
        want = units * 10 ** client.decimals(token_address)
        have = client.balance_of(token_address, client.hot_address)
        if have < want:
            mint(w3, token_address, client.hot_address, want - have, sender=dev_accounts()[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chain = None
    if args.chain_rpc:
        from devnet.chain import dev_accounts

        hot_key = args.hot_wallet_key or dev_accounts()[9].private_key
        assets = dict(args.asset)
        if args.token_state is not None:
            assets.setdefault("USDT", json.loads(args.token_state.read_text())["token"])
        if args.fund_hot_wallet:
            _fund_hot_wallet(args.chain_rpc, assets, hot_key, args.fund_hot_wallet)
        chain = ChainConfig(
            rpc_url=args.chain_rpc,
            assets=assets,
            hot_wallet_key=hot_key,
            confirmations=args.confirmations,
            poll_interval=args.poll_interval,
        )
    config = SimConfig(
        seed=args.seed,
        tick_seconds=Decimal(args.tick),
        run_market=not args.no_market,
        chain=chain,
        admin_token=args.admin_token,
    )
    sim = Simulator(config)
    if chain is None:
        print("devnet exchange: no --chain-rpc, so deposits and withdrawals are off (trading only)", file=sys.stderr)
    else:
        assert sim.funds is not None
        print(
            f"devnet exchange: funds on {chain.rpc_url}, assets {sorted(chain.assets)}, hot wallet "
            f"{sim.funds.hot_wallet}, {chain.confirmations} confirmations",
            file=sys.stderr,
        )
    app = build_app(sim)
    if args.state is not None:
        from devnet.exchange import persist

        if persist.load(sim, args.state):
            print(f"devnet exchange: resumed its accounts from {args.state}", file=sys.stderr)
        persist.attach(app, sim, args.state)
    print(f"devnet exchange: Binance spot dialect on http://{args.host}:{args.port}", file=sys.stderr)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
