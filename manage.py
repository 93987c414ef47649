#!/usr/bin/env python
"""Django's command-line utility; configuration errors print one line and exit 2 instead of a traceback."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.dev")
    from django.core.management import execute_from_command_line

    from mrmarket.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
