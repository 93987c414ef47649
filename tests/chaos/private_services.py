"""A Redis and a PostgreSQL of the test's own, on free loopback ports in a temporary directory, that the restart
tests stop and start again mid-flow. Never the machine's shared servers: other tests run against those."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from devnet.ports import free_port
from tests.plugins.require import require


class PrivateRedis:
    """`redis-server` on its own port and directory. `persist` keeps an append-only file, fsynced at every write,
    so a restart keeps what was queued (a broker configured to persist); without it a restart loses everything."""

    def __init__(self, workdir: Path, *, persist: bool) -> None:
        binary = shutil.which("redis-server")
        require("redis-server", binary, "apt-get install redis-server")
        assert binary is not None
        self.binary, self.workdir, self.persist = binary, workdir, persist
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--loglevel", "warning"]  # fmt: skip
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(15)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    require(f"PostgreSQL's {name} (/usr/lib/postgresql/*/bin)", found, "apt-get install postgresql")
    return found[-1]


def _as_server_user() -> list[str]:
    """PostgreSQL's server refuses to run as root: as root (a CI container), its commands run as `postgres`."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        require("an OS user 'postgres' to run a private PostgreSQL as (the tests run as root)", False)
    return ["runuser", "-u", "postgres", "--"]


class PrivatePostgres:
    """A cluster of its own (initdb into a temporary directory, trust auth, its own port), started and stopped with
    pg_ctl. `restart` is a fast shutdown and a start: every open connection is cut."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mrmarket-chaos-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.pg_ctl = _pg_bin("pg_ctl")
        self.prefix = _as_server_user()
        if self.prefix:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        initdb = [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        try:
            subprocess.run([*self.prefix, *initdb], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"]
        subprocess.run([*self.prefix, *start], check=True, capture_output=True)
        return self

    def stop(self) -> None:
        stop = [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run([*self.prefix, *stop], check=False, capture_output=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database_from(self, name: str, source_url: str) -> None:
        """A database holding `source_url`'s schema and rows (pg_dump piped into psql: faster than migrating)."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        dump = subprocess.run([_pg_bin("pg_dump"), "--no-owner", source_url], check=True, capture_output=True)
        subprocess.run(
            [_pg_bin("psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url(name)], input=dump.stdout, check=True,
            capture_output=True,
        )  # fmt: skip

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
