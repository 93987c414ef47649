"""The PostgreSQL client tools the restore drill runs, against the test's own database only: a custom-format
dump, and a drop (connections ended) and restore under the same name, as a recovery on a new server would do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.plugins.require import require, require_postgresql

TOOLS = ("pg_dump", "pg_restore", "createdb", "dropdb")


def require_tools() -> None:
    require_postgresql("the drill restores a PostgreSQL dump")
    for tool in TOOLS:
        require(f"{tool} (the PostgreSQL client tools)", shutil.which(tool), "apt-get install postgresql-client")


def _target(settings_dict: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    args = ["-h", str(settings_dict.get("HOST") or "127.0.0.1"), "-p", str(settings_dict.get("PORT") or 5432)]
    if settings_dict.get("USER"):
        args += ["-U", str(settings_dict["USER"])]
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    return args, env


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


def dump(settings_dict: dict[str, Any], path: Path) -> None:
    """`pg_dump -Fc` of the database, taken while the system runs (a consistent snapshot, one transaction)."""
    args, env = _target(settings_dict)
    _run(["pg_dump", *args, "-Fc", "-f", str(path), str(settings_dict["NAME"])], env)


def drop_and_restore(settings_dict: dict[str, Any], path: Path) -> None:
    """The disaster and the recovery: the database is dropped (its sessions ended), created empty and the dump
    restored into it. The caller closes its own connections first."""
    name = str(settings_dict["NAME"])
    assert name.startswith("test_"), f"the drill only ever drops a test database, not {name!r}"
    args, env = _target(settings_dict)
    _run(["dropdb", *args, "--force", name], env)
    _run(["createdb", *args, "-T", "template0", name], env)
    _run(["pg_restore", *args, "--exit-on-error", "--no-owner", "-d", name, str(path)], env)
