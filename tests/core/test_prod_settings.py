"""The prod profile refuses what would run production on dev or guessable secrets, and it is what a process
gets when no profile is named. Each refusal is checked by importing the module in a fresh interpreter."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from execution.domain.envelope import public_key_of
from mrmarket.config import (
    DEV_CHAIN_PRIVATE_KEYS,
    DEV_CONTROLLER_SIGNING_KEY,
    DEV_CREDENTIALS_SIGNING_KEY,
    DEV_CUSTODY_PRIVATE_KEY,
    DEV_MASTER_KEY,
    DEV_SECRET_KEY,
    ed25519_public_hex,
    parse_master_key,
)
from tests.core.test_config import GOOD_KEY, GOOD_ROW_SIGNING_KEY, GOOD_ROW_VERIFY_KEY, ROOT, _clean_environ, prod_env

GOOD_CUSTODY_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

# Imports the settings module alone and reports, as one JSON line, either the typed refusal or what we ask for.
PROBE = """
import json, sys
from mrmarket.config import ConfigError
try:
    import mrmarket.settings.prod as s
except ConfigError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(3)
print(json.dumps({name: getattr(s, name, None) for name in sys.argv[1:]}, default=str))
"""


def probe(env: dict[str, str], *names: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        cwd=ROOT,
        env={**_clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 3), result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def refusal(**overrides: str) -> str:
    answer = probe(prod_env(**overrides))
    assert answer.get("error") == "ConfigError", answer
    return str(answer["message"])


def test_the_crafted_prod_environment_is_accepted() -> None:
    answer = probe(prod_env(), "DEBUG", "ALLOWED_HOSTS")
    assert answer == {"DEBUG": False, "ALLOWED_HOSTS": ["mrmarket.example"]}


_typed_master_key = base64.b64encode(b"correct-horse-battery-staple-32b").decode()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "mrmarket.example,*"}, "ALLOWED_HOSTS"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is a dev/insecure value"),
        ({"SECRET_KEY": "django-insecure-" + "a1b2c3d4e5" * 5}, "SECRET_KEY is a dev/insecure value"),
        ({"SECRET_KEY": "short-but-random-Qw8#"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "ab" * 30}, "SECRET_KEY is weak"),
        ({"CREDENTIALS_MASTER_KEY": DEV_MASTER_KEY}, "CREDENTIALS_MASTER_KEY is the dev value"),
        ({"CREDENTIALS_MASTER_KEY": _typed_master_key}, "CREDENTIALS_MASTER_KEY is weak"),
        ({"CREDENTIALS_RETIRED_KEYS": f"k0:{DEV_MASTER_KEY}"}, "CREDENTIALS_MASTER_KEYS (k0) is the dev value"),
        ({"CONTROLLER_SIGNING_KEY": DEV_CONTROLLER_SIGNING_KEY}, "CONTROLLER_SIGNING_KEY is the dev value"),
        ({"CONTROLLER_SIGNING_KEY": "00" * 32}, "CONTROLLER_SIGNING_KEY is weak"),
        ({"CONTROLLER_SIGNING_KEY": "not-hex"}, "CONTROLLER_SIGNING_KEY is not hex"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is weak"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "REDIS_URL must use rediss:// or carry a password"),
        ({"CELERY_BROKER_URL": "redis://broker:6379/1"}, "CELERY_BROKER_URL must use rediss://"),
        ({"CUSTODY_PRIVATE_KEY": DEV_CUSTODY_PRIVATE_KEY}, "CUSTODY_PRIVATE_KEY is a public dev-chain key"),
        ({"CUSTODY_PRIVATE_KEY": DEV_CHAIN_PRIVATE_KEYS[0][2:]}, "CUSTODY_PRIVATE_KEY is a public dev-chain key"),
        ({"CUSTODY_PRIVATE_KEY": "0x" + "11" * 32}, "CUSTODY_PRIVATE_KEY is weak"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_prod_refuses_dev_and_weak_values(overrides: dict[str, str], says: str) -> None:
    message = refusal(**overrides)
    assert says in message
    for value in overrides.values():
        if len(value) > 8 and value not in ("mrmarket.example,*",):
            assert value not in message  # a refusal names the variable, never echoes the secret


def test_prod_requires_a_metrics_token() -> None:
    env = prod_env()
    del env["METRICS_TOKEN"]
    answer = probe(env)
    assert answer["error"] == "ConfigError"
    assert "METRICS_TOKEN" in str(answer["message"])


def test_a_redis_password_or_tls_is_enough() -> None:
    assert "error" not in probe(prod_env(REDIS_URL="redis://:pw-0123456789@redis.internal:6379/0"))
    assert "error" not in probe(prod_env(REDIS_URL="rediss://redis.internal:6380/0"))


GOOD_PUBLIC_KEY = base64.b64encode(public_key_of(parse_master_key("good", GOOD_KEY))).decode()


def web_env(**overrides: str) -> dict[str, str]:
    """A web process as deployed: the credentials master key's public half, never the key itself."""
    return prod_env(
        **{
            "MRMARKET_PROCESS": "web",
            "CREDENTIALS_MASTER_KEY": "",
            "CREDENTIALS_PUBLIC_KEY": GOOD_PUBLIC_KEY,
            **overrides,
        }
    )


def test_the_web_process_holds_no_credentials_master_key() -> None:
    names = ("PROCESS_ROLE", "CREDENTIALS_MASTER_KEY", "CREDENTIALS_MASTER_KEYS", "CREDENTIALS_PUBLIC_KEY")
    web = probe(web_env(), *names)
    assert web == {
        "PROCESS_ROLE": "web",
        "CREDENTIALS_MASTER_KEY": "b''",
        "CREDENTIALS_MASTER_KEYS": {},
        "CREDENTIALS_PUBLIC_KEY": str(base64.b64decode(GOOD_PUBLIC_KEY)),
    }
    # The worker holds the key; the public half it derives is the one the web process seals for.
    worker = probe(prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_PUBLIC_KEY=GOOD_PUBLIC_KEY), *names)
    assert worker["CREDENTIALS_MASTER_KEYS"] == {"k1": str(parse_master_key("good", GOOD_KEY))}
    assert worker["CREDENTIALS_PUBLIC_KEY"] == web["CREDENTIALS_PUBLIC_KEY"]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (web_env(CREDENTIALS_MASTER_KEY=GOOD_KEY), "the web process is never given CREDENTIALS_MASTER_KEY"),
        (web_env(CREDENTIALS_RETIRED_KEYS=f"k0:{GOOD_KEY}"), "the web process is never given CREDENTIALS_RETIRED_KEYS"),
        (web_env(CREDENTIALS_PUBLIC_KEY=""), "missing required environment variables: CREDENTIALS_PUBLIC_KEY"),
        (web_env(CREDENTIALS_PUBLIC_KEY="c2hvcnQ="), "CREDENTIALS_PUBLIC_KEY must decode to 32 bytes"),
        (
            web_env(
                CREDENTIALS_PUBLIC_KEY=base64.b64encode(public_key_of(parse_master_key("d", DEV_MASTER_KEY))).decode()
            ),
            "CREDENTIALS_PUBLIC_KEY is the dev value",
        ),
        (
            prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_PUBLIC_KEY=base64.b64encode(bytes(32)).decode()),
            "CREDENTIALS_PUBLIC_KEY is not the public half of CREDENTIALS_MASTER_KEY",
        ),
    ],
)
def test_the_credentials_keys_each_process_is_given_are_checked(env: dict[str, str], says: str) -> None:
    answer = probe(env)
    assert answer.get("error") == "ConfigError", answer
    assert says in str(answer["message"])


_DEV_ROW_VERIFY_KEY = ed25519_public_hex(bytes.fromhex(DEV_CREDENTIALS_SIGNING_KEY))
_OTHER_VERIFY_KEY = ed25519_public_hex(bytes.fromhex("5a" * 16 + "c3" * 16))


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # The processes that write credential rows sign them: web (enrolment), worker and commands (rewrap).
        (web_env(CREDENTIALS_SIGNING_KEY=""), "missing required environment variables: CREDENTIALS_SIGNING_KEY"),
        (
            prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_SIGNING_KEY=""),
            "missing required environment variables: CREDENTIALS_SIGNING_KEY",
        ),
        (web_env(CREDENTIALS_SIGNING_KEY=DEV_CREDENTIALS_SIGNING_KEY), "CREDENTIALS_SIGNING_KEY is the dev value"),
        (prod_env(CREDENTIALS_SIGNING_KEY=DEV_CREDENTIALS_SIGNING_KEY), "CREDENTIALS_SIGNING_KEY is the dev value"),
        (web_env(CREDENTIALS_SIGNING_KEY="00" * 32), "CREDENTIALS_SIGNING_KEY is weak"),
        (web_env(CREDENTIALS_SIGNING_KEY="not-hex"), "CREDENTIALS_SIGNING_KEY is not hex"),
        # The processes that open rows check them.
        (
            prod_env(MRMARKET_PROCESS="beat", CREDENTIALS_SIGNING_KEY="", CREDENTIALS_VERIFY_KEYS=""),
            "missing required environment variables: CREDENTIALS_VERIFY_KEYS",
        ),
        (
            prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_VERIFY_KEYS=f"{GOOD_ROW_VERIFY_KEY},{_DEV_ROW_VERIFY_KEY}"),
            "CREDENTIALS_VERIFY_KEYS holds the dev key's public half",
        ),
        (prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_VERIFY_KEYS="abcd"), "CREDENTIALS_VERIFY_KEYS must be 32"),
        (
            prod_env(MRMARKET_PROCESS="worker", CREDENTIALS_VERIFY_KEYS=_OTHER_VERIFY_KEY),
            "CREDENTIALS_VERIFY_KEYS does not hold the public half of CREDENTIALS_SIGNING_KEY",
        ),
    ],
)
def test_the_credentials_enrolment_keys_each_process_is_given_are_checked(env: dict[str, str], says: str) -> None:
    answer = probe(env)
    assert answer.get("error") == "ConfigError", answer
    assert says in str(answer["message"])
    assert DEV_CREDENTIALS_SIGNING_KEY not in str(answer["message"])


def test_each_process_gets_the_enrolment_keys_it_needs() -> None:
    names = ("CREDENTIALS_SIGNING_KEY", "CREDENTIALS_VERIFY_KEYS")
    assert probe(web_env(CREDENTIALS_VERIFY_KEYS=""), *names) == {
        "CREDENTIALS_SIGNING_KEY": GOOD_ROW_SIGNING_KEY,
        "CREDENTIALS_VERIFY_KEYS": [],
    }
    # Beat opens rows and writes none; during a rotation the openers trust the old and the new key.
    rotating = f"{_OTHER_VERIFY_KEY},{GOOD_ROW_VERIFY_KEY.upper()}"
    assert probe(
        prod_env(MRMARKET_PROCESS="beat", CREDENTIALS_SIGNING_KEY="", CREDENTIALS_VERIFY_KEYS=rotating), *names
    ) == {
        "CREDENTIALS_SIGNING_KEY": "",
        "CREDENTIALS_VERIFY_KEYS": [_OTHER_VERIFY_KEY, GOOD_ROW_VERIFY_KEY],
    }


def test_the_web_process_never_loads_the_custody_key() -> None:
    from eth_account import Account

    address = Account.from_key(GOOD_CUSTODY_KEY).address
    names = ("PROCESS_ROLE", "CUSTODY_PRIVATE_KEY", "CUSTODY_ADDRESS")
    web = probe(web_env(CUSTODY_ADDRESS=address), *names)
    assert web == {"PROCESS_ROLE": "web", "CUSTODY_PRIVATE_KEY": "", "CUSTODY_ADDRESS": address}
    # Refused rather than ignored: what is in its environment, anything running in the process can read.
    message = refusal(**web_env(CUSTODY_PRIVATE_KEY=GOOD_CUSTODY_KEY, CUSTODY_ADDRESS=address))
    assert "the web process is never given CUSTODY_PRIVATE_KEY" in message
    assert GOOD_CUSTODY_KEY not in message
    worker = probe(prod_env(MRMARKET_PROCESS="worker", CUSTODY_PRIVATE_KEY=GOOD_CUSTODY_KEY), *names)
    assert worker == {"PROCESS_ROLE": "worker", "CUSTODY_PRIVATE_KEY": GOOD_CUSTODY_KEY, "CUSTODY_ADDRESS": address}


GOOD_ORACLE_KEY = "0x5a3c91e07bd2f4681e0c7a95d3b24f6e18a07c5d92e3b1f4a6c8d0e2f4b6a8c1"


def test_the_oracle_keys_reach_only_processes_that_sign_and_are_checked() -> None:
    names = ("RECORDING_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_PRIVATE_KEY")
    assert probe(web_env(), *names) == dict.fromkeys(names, "")
    assert probe(prod_env(), *names) == dict.fromkeys(names, "")  # no default: absent unless injected
    for name in names:
        message = refusal(**web_env(**{name: GOOD_ORACLE_KEY}))
        assert f"the web process is never given {name}" in message
        assert GOOD_ORACLE_KEY not in message
        dev = refusal(MRMARKET_PROCESS="worker", **{name: DEV_CHAIN_PRIVATE_KEYS[2]})
        assert f"{name} is a public dev-chain key" in dev
        shared = refusal(MRMARKET_PROCESS="worker", CUSTODY_PRIVATE_KEY=GOOD_CUSTODY_KEY, **{name: GOOD_CUSTODY_KEY})
        assert f"{name} is the custody key" in shared
        assert GOOD_CUSTODY_KEY not in shared
    worker = probe(prod_env(MRMARKET_PROCESS="worker", RECORDING_ORACLE_PRIVATE_KEY=GOOD_ORACLE_KEY), *names)
    assert worker == {"RECORDING_ORACLE_PRIVATE_KEY": GOOD_ORACLE_KEY, "REPUTATION_ORACLE_PRIVATE_KEY": ""}
    # Retired keys (campaigns created before a rotation still name them) follow the same rules.
    retired = ("RECORDING_ORACLE_RETIRED_KEYS", "REPUTATION_ORACLE_RETIRED_KEYS")
    for name in retired:
        assert f"the web process is never given {name}" in refusal(**web_env(**{name: GOOD_ORACLE_KEY}))
        dev = refusal(MRMARKET_PROCESS="worker", **{name: f"{GOOD_ORACLE_KEY},{DEV_CHAIN_PRIVATE_KEYS[2]}"})
        assert f"{name} is a public dev-chain key" in dev
    ring = probe(prod_env(MRMARKET_PROCESS="worker", RECORDING_ORACLE_RETIRED_KEYS=GOOD_ORACLE_KEY), *retired)
    assert ring == {"RECORDING_ORACLE_RETIRED_KEYS": [GOOD_ORACLE_KEY], "REPUTATION_ORACLE_RETIRED_KEYS": []}


def test_a_web_process_with_custody_assets_needs_the_custody_address() -> None:
    assets = '{"USDT": {"token": "0x000000000000000000000000000000000000bEEF", "decimals": 6}}'
    message = refusal(**web_env(CUSTODY_ASSETS=assets))
    assert "the web process needs CUSTODY_ADDRESS" in message


def test_a_custody_address_that_is_not_the_keys_is_refused() -> None:
    message = refusal(
        MRMARKET_PROCESS="worker",
        CUSTODY_PRIVATE_KEY=GOOD_CUSTODY_KEY,
        CUSTODY_ADDRESS="0x000000000000000000000000000000000000dEaD",
    )
    assert "CUSTODY_ADDRESS is not the address of CUSTODY_PRIVATE_KEY" in message


def test_prod_sends_a_content_security_policy_and_caches_as_json() -> None:
    answer = probe(prod_env(), "CONTENT_SECURITY_POLICY", "MIDDLEWARE", "CACHES")
    directives = answer["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]  # type: ignore[index]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "csp.middleware.CSPMiddleware" in answer["MIDDLEWARE"]  # type: ignore[operator]
    assert answer["CACHES"]["default"]["OPTIONS"]["serializer"] == "mrmarket.cache.JSONSerializer"  # type: ignore[index]


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "check"],
        ["-c", "import mrmarket.asgi"],
        ["-c", "from mrmarket.celery_app import app; app.loader.import_default_modules()"],
    ],
    ids=["manage.py", "asgi", "celery"],
)
def test_no_profile_named_means_prod_not_dev(argv: list[str]) -> None:
    # The dev profile would start here (it needs nothing); production refuses without its variables.
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=_clean_environ(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "mrmarket.settings.prod: missing required environment variables" in result.stderr


# Variables that once chose another provisioning gate, or let executors in on their own word.
FORMER_GATE_SWITCHES = {
    "EXECUTOR_ATTESTATION_GATE": "execution.provisioning.unattested_identity",
    "EXECUTOR_ALLOW_UNATTESTED": "true",
}
HAS_SETTINGS = """
import importlib, json, sys
s = importlib.import_module(sys.argv[1])
print(json.dumps({name: hasattr(s, name) for name in sys.argv[2:]}))
"""


@pytest.mark.parametrize("profile", ["prod", "dev"])
def test_no_setting_turns_the_attestation_gate_off(profile: str) -> None:
    """Every profile has one provisioning path, `attestation.gate.attested_identity`: the variables that once
    switched it have no effect, and no profile has such a setting."""
    module = f"mrmarket.settings.{profile}"
    env = prod_env(**FORMER_GATE_SWITCHES) if profile == "prod" else {"DJANGO_SETTINGS_MODULE": module}
    result = subprocess.run(
        [sys.executable, "-c", HAS_SETTINGS, module, *FORMER_GATE_SWITCHES],
        cwd=ROOT,
        env={**_clean_environ(), **FORMER_GATE_SWITCHES, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == dict.fromkeys(FORMER_GATE_SWITCHES, False)


def test_the_web_process_keeps_no_database_connection_between_requests() -> None:
    # The web process serves ASGI: persistent connections there pile up per thread until PostgreSQL refuses new
    # clients (seen under load, docs/reliability.md section 6). Off unless a process sets DB_CONN_MAX_AGE.
    answer = probe(prod_env(DATABASE_URL="postgres://app:pw@db.internal:5432/mrmarket"), "DATABASES")
    assert answer["DATABASES"]["default"]["CONN_MAX_AGE"] == 0  # type: ignore[index]
    worker = probe(
        prod_env(DATABASE_URL="postgres://app:pw@db.internal:5432/mrmarket", DB_CONN_MAX_AGE="60"), "DATABASES"
    )
    assert worker["DATABASES"]["default"]["CONN_MAX_AGE"] == 60  # type: ignore[index]
