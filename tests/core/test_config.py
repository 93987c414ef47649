"""Configuration errors: one clear line naming the setting, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devnet.ports import free_port
from mrmarket.config import ConfigError, parse_database_url, parse_master_key, parse_redis_url, redact_url

ROOT = Path(__file__).resolve().parents[2]
PROD_REQUIRED = [
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CREDENTIALS_MASTER_KEY",
    "CONTROLLER_SIGNING_KEY",
    "METRICS_TOKEN",
    "CREDENTIALS_SIGNING_KEY",
    "CREDENTIALS_VERIFY_KEYS",
]
# Fixed random values (generated once), so that a failing run can be repeated exactly.
GOOD_KEY = "q4Xr0VzJ0a7m3Q9hX2pG9wq1sK0bNf5tYy3uE8cLd2I="
GOOD_CONTROLLER_KEY = "9f2c4e1a7b3d5f60a8c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5"
GOOD_SECRET_KEY = "pR7#vX2!kQ9@mZ4$wL8%tN3^bH6&jF1*yC5(gD0)sA-uE=oI+rK_eM~qP"
GOOD_METRICS_TOKEN = "mT4kPq8ZrX2vB7nY5cW9dF3gH6jL1sA0"
GOOD_ROW_SIGNING_KEY = "38f4e00d8101fe412cbcd2ec2ca585da0681be86298348fe127625b8e662864c"
GOOD_ROW_VERIFY_KEY = "f7b5a4f0ff14a17d85ce641bbf2e6cabd11161935066c4811d5ad06bec2931c5"  # its public half


def _clean_environ() -> dict[str, str]:
    drop = {*PROD_REQUIRED, "DJANGO_SETTINGS_MODULE", "MRMARKET_PROCESS", "CUSTODY_PRIVATE_KEY", "CELERY_BROKER_URL"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = _clean_environ()
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgres_url_parses() -> None:
    db = parse_database_url("DATABASE_URL", "postgres://app:s3cret@db.internal:6432/mrmarket", conn_max_age=60)
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "mrmarket",
        "app",
        "s3cret",
        "db.internal",
        "6432",
    )
    assert db["CONN_MAX_AGE"] == 60


def test_sqlite_url_needs_an_absolute_path() -> None:
    assert parse_database_url("DATABASE_URL", "sqlite:////tmp/x.db")["NAME"] == "/tmp/x.db"
    assert parse_database_url("DATABASE_URL", "sqlite:///:memory:")["NAME"] == ":memory:"
    with pytest.raises(ConfigError, match="DATABASE_URL is malformed: SQLite needs"):
        parse_database_url("DATABASE_URL", "sqlite:///relative.db")


@pytest.mark.parametrize(
    "url",
    ["garbage", "http://example.com/db", "postgres://u@h:notaport/db", "postgres:///nodb", "postgres://h"],
)
def test_malformed_database_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is malformed"):
        parse_database_url("DATABASE_URL", url)


@pytest.mark.parametrize("url", ["localhost:6379", "http://h:1/0", "redis://h:port/0"])
def test_malformed_redis_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^REDIS_URL is malformed"):
        parse_redis_url("REDIS_URL", url)


def test_master_key_must_be_32_bytes_of_base64() -> None:
    assert len(parse_master_key("CREDENTIALS_MASTER_KEY", GOOD_KEY)) == 32
    with pytest.raises(ConfigError, match="must decode to 32 bytes"):
        parse_master_key("CREDENTIALS_MASTER_KEY", "c2hvcnQ=")
    with pytest.raises(ConfigError, match="not valid base64"):
        parse_master_key("CREDENTIALS_MASTER_KEY", "!!!!")


def test_redact_url_hides_the_password_only() -> None:
    assert redact_url("postgres://app:s3cret@h:5432/db") == "postgres://app:***@h:5432/db"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_prod_without_variables_lists_every_missing_one() -> None:
    result = run_manage("check", env={"DJANGO_SETTINGS_MODULE": "mrmarket.settings.prod"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in PROD_REQUIRED:
        assert name in lines[0]


def test_prod_with_some_variables_lists_only_the_missing() -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.prod",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "a.example",
    }
    result = run_manage("check", env=env)
    assert result.returncode == 2
    assert "DATABASE_URL, REDIS_URL, CREDENTIALS_MASTER_KEY, CONTROLLER_SIGNING_KEY, METRICS_TOKEN" in result.stderr
    assert "SECRET_KEY" not in result.stderr


def prod_env(**overrides: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.prod",
        "SECRET_KEY": GOOD_SECRET_KEY,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "REDIS_URL": "rediss://:redis-password@127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "mrmarket.example",
        "CREDENTIALS_MASTER_KEY": GOOD_KEY,
        "CONTROLLER_SIGNING_KEY": GOOD_CONTROLLER_KEY,
        "METRICS_TOKEN": GOOD_METRICS_TOKEN,
        "CREDENTIALS_SIGNING_KEY": GOOD_ROW_SIGNING_KEY,
        "CREDENTIALS_VERIFY_KEYS": GOOD_ROW_VERIFY_KEY,
        **overrides,
    }


def test_prod_malformed_database_url_is_one_line_naming_it() -> None:
    result = run_manage("check", env=prod_env(DATABASE_URL="postgress//nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL is malformed" in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_refuses_debug() -> None:
    result = run_manage("check", env=prod_env(DEBUG="true"))
    assert result.returncode == 2
    assert "DEBUG must be off" in result.stderr


def test_prod_refuses_an_ita_jwks_over_plain_http() -> None:
    result = run_manage("check", env=prod_env(ATTESTATION_ITA_JWKS_URL="http://portal.example/certs"))
    assert result.returncode == 2
    assert "Intel Trust Authority JWKS over https only" in result.stderr


def test_prod_settings_are_hardened() -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_HSTS_SECONDS > 0, s.SECURE_SSL_REDIRECT)"
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=prod_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["False", "True", "True", "True", "True"]


def test_unreachable_redis_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    env = {
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.dev",
        "MRMARKET_DATA_DIR": str(tmp_path),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
    }
    result = run_manage("worker", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"configuration error: REDIS_URL: cannot reach Redis at redis://127.0.0.1:{port}/0")
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.dev",
        "MRMARKET_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres:pw@127.0.0.1:{port}/nothing",
    }
    result = run_manage("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL: cannot connect to the database")
    assert ":pw@" not in result.stderr  # the password never appears
    assert result.stderr.strip().count("\n") == 0, result.stderr
