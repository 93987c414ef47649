"""Executor settings from the environment; a bad value stops the process with one line naming the variable.

Runtime configuration only: what a deployment chooses. The policy (ADR 0012) sorts it in two: operational
settings (where to listen, log level, tick, timeouts, capacity) that change nothing a verifier relies on, and
trust-relevant ones — the controller key to obey, exchange API base URLs other than ccxt's built-in ones, the
quote provider, dev mode — which go into the runtime-configuration document (`runtime_config()`, schema in
`wire/attestation.py`) whose digest is bound into every quote's REPORTDATA, so Django sees exactly what the host
chose and refuses what it does not expect. What may never come at runtime is in the measured image: the code,
ccxt and its exchanges' production URLs, and the rule that outside dev mode exchange traffic is https with
certificate verification (`check()`). Nothing here is a secret baked into the image; the EasyEnclave runtime
token, when one is used, arrives in the environment of the running TD.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor import __version__
from wire.attestation import BindingError, normalize_api_url, runtime_config

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
QUOTE_PROVIDERS = ("none", "configfs-tsm", "easyenclave")
UNKNOWN_ORDER_POLICIES = ("cancel", "leave")


class ConfigError(ValueError):
    """A configuration problem; printed as one line by __main__ (exit code 2)."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8700
    log_level: str = "INFO"
    build_version: str = __version__
    max_jobs: int = 10
    tick_ms: int = 1000
    streams: bool = True
    reconcile_ms: int = 30_000
    stream_stall_ms: int = 3_000
    request_timeout_ms: int = 10_000
    quote_provider: str = "none"
    tsm_path: Path = Path("/sys/kernel/config/tsm/report")
    easyenclave_socket: Path = Path("/var/lib/easyenclave/agent.sock")
    easyenclave_token: str | None = field(default=None, repr=False)
    controller_key: str | None = None
    exchange_api_urls: dict[str, str] = field(default_factory=dict)
    unknown_orders: str = "cancel"
    ita_url: str | None = None
    ita_api_key: str | None = field(default=None, repr=False)
    dev: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """The build-time rules runtime values must obey: outside dev mode every exchange API URL is https (and
        the gateway always verifies certificates), so a host cannot re-root exchange traffic through a plain
        http endpoint of its own; every URL is absolute and normalizable (it is attested as written)."""
        for name, url in self.exchange_api_urls.items():
            try:
                normal = normalize_api_url(url)
            except BindingError as exc:
                raise ConfigError(f"EXECUTOR_EXCHANGE_API_URLS[{name!r}]: {exc}") from None
            if not self.dev and not normal.startswith("https://"):
                raise ConfigError(
                    f"EXECUTOR_EXCHANGE_API_URLS[{name!r}] is {url!r}: outside dev mode (EXECUTOR_DEV) exchange APIs"
                    " are https only"
                )

    def runtime_config(self, *, quote_provider: str | None = None) -> dict[str, Any]:
        """The trust-relevant runtime configuration as a canonical document; its digest goes into REPORTDATA."""
        return runtime_config(
            controller_key=self.controller_key,
            exchange_api_urls=self.exchange_api_urls,
            quote_provider=quote_provider or self.quote_provider,
            dev=self.dev,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        port = _int(env, "EXECUTOR_PORT", cls.port, 1, 65535)
        level = env.get("EXECUTOR_LOG_LEVEL", cls.log_level).upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"EXECUTOR_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        # Required: the controller is configuration (attested with the rest), never whoever signs first.
        controller = (env.get("EXECUTOR_CONTROLLER_KEY") or "").strip().lower()
        try:
            if len(bytes.fromhex(controller)) != 32:
                raise ValueError
        except ValueError:
            raise ConfigError("EXECUTOR_CONTROLLER_KEY must be 64 hex characters (an Ed25519 public key)") from None
        dev_text = env.get("EXECUTOR_DEV", "false").strip().lower()
        if dev_text not in ("true", "false", "1", "0"):
            raise ConfigError(f"EXECUTOR_DEV must be true or false, got {dev_text!r}")
        urls_text = env.get("EXECUTOR_EXCHANGE_API_URLS", "")
        try:
            urls = json.loads(urls_text) if urls_text else {}
            if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
                raise ValueError
        except ValueError:
            raise ConfigError('EXECUTOR_EXCHANGE_API_URLS must be a JSON object {"exchange": "https://…"}') from None
        ita_url, ita_api_key = env.get("EXECUTOR_ITA_URL") or None, env.get("EXECUTOR_ITA_API_KEY") or None
        if (ita_url is None) != (ita_api_key is None):
            raise ConfigError("EXECUTOR_ITA_URL and EXECUTOR_ITA_API_KEY are set together or not at all")
        return cls(
            host=env.get("EXECUTOR_HOST", cls.host),
            port=port,
            log_level=level,
            build_version=env.get("EXECUTOR_BUILD_VERSION", __version__),
            max_jobs=_int(env, "EXECUTOR_MAX_JOBS", cls.max_jobs, 1, 1000),
            tick_ms=_int(env, "EXECUTOR_TICK_MS", cls.tick_ms, 50, 60_000),
            streams=_choice(env, "EXECUTOR_STREAMS", "true", ("true", "false")) == "true",
            reconcile_ms=_int(env, "EXECUTOR_RECONCILE_MS", cls.reconcile_ms, 1_000, 600_000),
            stream_stall_ms=_int(env, "EXECUTOR_STREAM_STALL_MS", cls.stream_stall_ms, 200, 60_000),
            request_timeout_ms=_int(env, "EXECUTOR_REQUEST_TIMEOUT_MS", cls.request_timeout_ms, 100, 120_000),
            quote_provider=_choice(env, "EXECUTOR_QUOTE_PROVIDER", cls.quote_provider, QUOTE_PROVIDERS),
            tsm_path=Path(env.get("EXECUTOR_TSM_PATH", str(cls.tsm_path))),
            easyenclave_socket=Path(env.get("EXECUTOR_EASYENCLAVE_SOCKET", str(cls.easyenclave_socket))),
            easyenclave_token=env.get("EXECUTOR_EASYENCLAVE_TOKEN") or None,
            controller_key=controller,
            exchange_api_urls=urls,
            unknown_orders=_choice(env, "EXECUTOR_UNKNOWN_ORDERS", cls.unknown_orders, UNKNOWN_ORDER_POLICIES),
            ita_url=ita_url,
            ita_api_key=ita_api_key,
            dev=dev_text in ("true", "1"),
        )
