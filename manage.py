#!/usr/bin/env python
"""Django's command-line utility; configuration errors print one line and exit 2 instead of a traceback."""

from __future__ import annotations

import os
import sys

# The process each serving command is, for settings that load secrets only where they are needed.
PROCESS_OF_COMMAND = {"serve": "web", "runserver": "web", "worker": "worker", "beat": "beat"}


def main() -> None:
    # A forgotten DJANGO_SETTINGS_MODULE means production (which refuses to start without its variables),
    # never the dev profile with its public keys and its acceptance of executors running in dev mode.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.prod")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    os.environ.setdefault("MRMARKET_PROCESS", PROCESS_OF_COMMAND.get(command, "all"))
    # Imported once the environment above is set: Django reads it when it loads.
    from django.core.management import execute_from_command_line  # noqa: PLC0415

    from mrmarket.config import ConfigError  # noqa: PLC0415

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
