"""Django's deployment checklist passes under the production profile with a complete production environment, for
the web process and for the others (worker, beat, commands), with no warning: `manage.py check --deploy
--fail-level WARNING --database default` exits 0 against a real PostgreSQL. The same command fails when a
production default is weakened, so the test can tell (docs/deploy.md)."""

from __future__ import annotations

import json
import os

import pytest

from tests.core.test_config import prod_env, run_manage
from tests.core.test_prod_settings import web_env
from tests.plugins.require import require

CHECK = ("check", "--deploy", "--fail-level", "WARNING", "--database", "default")


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    require("PostgreSQL (DATABASE_URL=postgres://...)", url.startswith(("postgres://", "postgresql://")))
    return url


def production(url: str, *, web: bool, **overrides: str) -> dict[str, str]:
    base = web_env if web else prod_env
    env = base(
        DATABASE_URL=url,
        ALLOWED_HOSTS="mrmarket.example",
        CSRF_TRUSTED_ORIGINS="https://mrmarket.example",
        REDIS_URL="rediss://:redis-password-0123456789@redis.internal:6380/0",
        **overrides,
    )
    if web:
        del env["CREDENTIALS_MASTER_KEY"]  # the web process is not given it at all
    return env


@pytest.mark.parametrize("web", [True, False], ids=["web", "worker-beat-commands"])
def test_check_deploy_passes_with_no_warning(postgres_url: str, web: bool) -> None:
    result = run_manage(*CHECK, env=production(postgres_url, web=web))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
        ({"SECURE_HSTS_PRELOAD": "false"}, "security.W021"),
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else v,
)
def test_a_weakened_default_fails_the_check(postgres_url: str, overrides: dict[str, str], check_id: str) -> None:
    result = run_manage(*CHECK, env=production(postgres_url, web=True, **overrides))
    assert result.returncode == 1
    assert check_id in result.stderr


def settings_of(env: dict[str, str], *names: str) -> dict[str, object]:
    code = f"import json; from django.conf import settings as s; print(json.dumps([getattr(s, n) for n in {names!r}]))"
    result = run_manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return dict(zip(names, json.loads(result.stdout.strip().splitlines()[-1]), strict=True))


def test_the_proxy_header_and_hsts_come_from_the_environment_with_production_defaults(postgres_url: str) -> None:
    names = ("SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD")
    defaults = settings_of(production(postgres_url, web=True), *names, "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
    assert defaults == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }
    env = production(postgres_url, web=True, SECURE_PROXY_SSL_HEADER="X-Forwarded-Protocol")
    assert settings_of(env, "SECURE_PROXY_SSL_HEADER") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTOCOL", "https"]
    }
    direct = production(postgres_url, web=True, SECURE_PROXY_SSL_HEADER="")
    assert settings_of(direct, "SECURE_PROXY_SSL_HEADER") == {"SECURE_PROXY_SSL_HEADER": None}


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}, "SECURE_PROXY_SSL_HEADER must be a header name"),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be 0"),
    ],
    ids=["proxy-header", "hsts-seconds"],
)
def test_a_malformed_value_stops_the_process_naming_it(postgres_url: str, overrides: dict[str, str], says: str) -> None:
    result = run_manage(*CHECK, env=production(postgres_url, web=True, **overrides))
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
