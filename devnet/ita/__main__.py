"""The Intel Trust Authority stand-in from the command line.

    python -m devnet.ita --tdx-state DIR --port N --api-key KEY [--host H] [--issuer URL]

It appraises quotes of the dev quote authority whose state is in DIR (`python -m devnet.tdx … --state DIR`) and
signs tokens with a key made at start (a restart is a key rotation: relying parties refetch `/certs`).
The API key is read from the argument or, when that is `-`, from the environment variable `DEVNET_ITA_API_KEY`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aiohttp import web

from devnet.ita.app import build_ita_app
from devnet.ita.authority import ISSUER, DevTokenAuthority
from devnet.tdx.authority import DevQuoteAuthority


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devnet.ita", description="Intel Trust Authority stand-in")
    p.add_argument("--tdx-state", type=Path, required=True, help="the dev quote authority's state directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-key", required=True, help="the x-api-key attesters must send ('-': $DEVNET_ITA_API_KEY)")
    p.add_argument("--issuer", default=ISSUER)
    args = p.parse_args(argv)
    api_key = os.environ.get("DEVNET_ITA_API_KEY", "") if args.api_key == "-" else args.api_key
    if not api_key:
        print("devnet.ita: an API key is required", file=sys.stderr)
        return 2
    tokens = DevTokenAuthority.ephemeral(issuer=args.issuer)
    app = build_ita_app(tokens, DevQuoteAuthority.load_or_create(args.tdx_state), api_key=api_key)
    print(f"devnet.ita listening on http://{args.host}:{args.port} (issuer {args.issuer})", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
