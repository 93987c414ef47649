"""`python -m executor --host H --port P`: serve the executor API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from executor import runtime
from executor.api.app import create_app
from executor.config import Config, ConfigError
from executor.logging import configure, get_logger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor", description="mm-executor API server")
    parser.add_argument("--host", help="listen address (EXECUTOR_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (EXECUTOR_PORT, default 8700)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    config = Config(**{**config.__dict__, **overrides})
    configure(level=config.log_level, version=config.build_version)
    log = get_logger("executor")
    log.info("executor_starting", host=config.host, port=config.port)
    # One event loop for every job of the process, uvloop's, and the collector tuned for latency
    # (executor/runtime.py). run_app creates the loop through this policy.
    runtime.configure()
    # run_app handles SIGINT and SIGTERM with a graceful shutdown and returns normally.
    web.run_app(create_app(config), host=config.host, port=config.port, print=None, handle_signals=True)
    log.info("executor_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
