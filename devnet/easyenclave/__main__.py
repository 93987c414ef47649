"""The EasyEnclave control-plane stand-in from the command line.

    python -m devnet.easyenclave --state DIR --port N --mrtd HEX [--rtmr0..3 HEX] [--host H] [--health-path P]
                                 [--health-interval S] [--register JSON ...]

`--state DIR` is the dev quote authority's state (`python -m devnet.tdx`), so the control plane's quotes chain to
the same dev root as the executors'. Each `--register` is a registration body (what a deployment would POST to
/api/v1/register), registered at start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiohttp import web

from devnet.easyenclave.app import ControlPlane, ControlPlaneConfig, build_control_plane_app
from devnet.tdx.args import measurement
from devnet.tdx.authority import DevQuoteAuthority


def _registration(text: str) -> dict[str, object]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--register takes a JSON object: {exc.msg}") from None
    if not isinstance(body, dict):
        raise argparse.ArgumentTypeError("--register takes a JSON object")
    return body


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devnet.easyenclave", description="EasyEnclave control-plane stand-in")
    p.add_argument("--state", type=Path, required=True, help="the dev quote authority's state directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mrtd", type=measurement, required=True, help="the control plane's own MRTD")
    for i in range(4):
        p.add_argument(f"--rtmr{i}", type=measurement, default=b"\0" * 48, help=f"its RTMR{i} (default zeros)")
    p.add_argument("--health-path", default="/health")
    p.add_argument("--health-interval", type=float, default=5.0)
    p.add_argument("--register", type=_registration, action="append", default=[])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = ControlPlaneConfig(
        mrtd=args.mrtd,
        rtmrs=(args.rtmr0, args.rtmr1, args.rtmr2, args.rtmr3),
        health_path=args.health_path,
        health_interval=args.health_interval,
    )
    control_plane = ControlPlane(config, DevQuoteAuthority.load_or_create(args.state))
    for body in args.register:
        try:
            control_plane.register(body)
        except ValueError as exc:
            print(f"--register: {exc}", file=sys.stderr)
            return 2
    print(f"devnet.easyenclave listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(build_control_plane_app(control_plane), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
