"""Executor settings from the environment; a bad value stops the process with one line naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from executor import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """A configuration problem; printed as one line by __main__ (exit code 2)."""


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8700
    log_level: str = "INFO"
    build_version: str = __version__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        port_text = env.get("EXECUTOR_PORT", str(cls.port))
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"EXECUTOR_PORT must be an integer port number, got {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"EXECUTOR_PORT must be between 1 and 65535, got {port}")
        level = env.get("EXECUTOR_LOG_LEVEL", cls.log_level).upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"EXECUTOR_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        return cls(
            host=env.get("EXECUTOR_HOST", cls.host),
            port=port,
            log_level=level,
            build_version=env.get("EXECUTOR_BUILD_VERSION", __version__),
        )
