"""The dev TDX quote authority from the command line.

    python -m devnet.tdx serve --socket PATH --state DIR --mrtd HEX [--rtmr0..3 HEX] [--token T]
    python -m devnet.tdx pccs --state DIR [--host H] --port N       (the PCCS stand-in, HTTP)
    python -m devnet.tdx root-ca --state DIR --out FILE          (the root CA certificate, DER)
    python -m devnet.tdx collateral --state DIR [--at UNIX]      (collateral JSON on stdout)
    python -m devnet.tdx quote --state DIR --report-data HEX --mrtd HEX --out FILE [--rtmr0..3 HEX]

`--state DIR` holds the authority's keys and certificates; every process given the same DIR shares one root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from devnet.tdx.args import measurement, report_data
from devnet.tdx.authority import TEE_TCB_SVNS, DevQuoteAuthority
from devnet.tdx.pccs import build_pccs_app
from devnet.tdx.runtime import serve_runtime


def _add_measurements(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mrtd", type=measurement, required=True, help="MRTD, 96 hex characters")
    for i in range(4):
        p.add_argument(f"--rtmr{i}", type=measurement, default=b"\0" * 48, help=f"RTMR{i} (default zeros)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devnet.tdx", description="dev TDX quote authority")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the EasyEnclave-runtime socket stand-in")
    serve.add_argument("--socket", type=Path, required=True)
    serve.add_argument("--state", type=Path, required=True)
    serve.add_argument("--token", default=None, help="boot token every request must carry")
    _add_measurements(serve)

    pccs = sub.add_parser("pccs", help="serve the PCCS stand-in (collateral over the PCS v4 HTTP API)")
    pccs.add_argument("--state", type=Path, required=True)
    pccs.add_argument("--host", default="127.0.0.1")
    pccs.add_argument("--port", type=int, required=True)

    root = sub.add_parser("root-ca", help="write the root CA certificate (DER)")
    root.add_argument("--state", type=Path, required=True)
    root.add_argument("--out", type=Path, required=True)

    coll = sub.add_parser("collateral", help="print collateral JSON valid around --at")
    coll.add_argument("--state", type=Path, required=True)
    coll.add_argument("--at", type=int, default=None, help="Unix time (default now)")

    quote = sub.add_parser("quote", help="write one raw quote")
    quote.add_argument("--state", type=Path, required=True)
    quote.add_argument("--report-data", type=report_data, required=True, help="≤ 64 bytes hex, zero-padded")
    quote.add_argument("--out", type=Path, required=True)
    quote.add_argument("--debug", action="store_true", help="set the TD attributes' DEBUG bit")
    quote.add_argument("--tcb", choices=sorted(TEE_TCB_SVNS), default="UpToDate")
    _add_measurements(quote)
    return p.parse_args(argv)


def _rtmrs(args: argparse.Namespace) -> tuple[bytes, bytes, bytes, bytes]:
    return (args.rtmr0, args.rtmr1, args.rtmr2, args.rtmr3)


async def _serve(args: argparse.Namespace) -> None:
    authority = DevQuoteAuthority.load_or_create(args.state)
    server = await serve_runtime(args.socket, authority, mrtd=args.mrtd, rtmrs=_rtmrs(args), token=args.token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"devnet.tdx runtime listening on {args.socket}", flush=True)
    async with server:
        await stop.wait()
    with contextlib.suppress(FileNotFoundError):
        args.socket.unlink()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve(args))
        return 0
    if args.command == "pccs":
        app = build_pccs_app(DevQuoteAuthority.load_or_create(args.state))
        print(f"devnet.tdx PCCS listening on http://{args.host}:{args.port}", flush=True)
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
        return 0
    authority = DevQuoteAuthority.load_or_create(args.state)
    if args.command == "root-ca":
        args.out.write_bytes(authority.root_ca_der)
    elif args.command == "collateral":
        print(authority.collateral_json(now=int(time.time()) if args.at is None else args.at))
    elif args.command == "quote":
        raw = authority.quote(args.report_data, mrtd=args.mrtd, rtmrs=_rtmrs(args), debug=args.debug, tcb=args.tcb)
        args.out.write_bytes(raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
