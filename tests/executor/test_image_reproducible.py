"""Two builds of the executor image in two clean output directories give the same image, byte for byte, and the
image runs: Python 3.11 from Debian imports the executor with its pinned wheels, as the unprivileged user.

Selected with `-m image` (or left out with `-m "not image"`). Needs root and mmdebstrap (`.ci/run` installs it);
where either is missing the test reports `missing dependency`, and on CI (MRMARKET_REQUIRE_ALL=1) that fails the run.
The .debs and wheels come from the cache keyed by the locks' hashes (var/executor-image/cache), downloaded on the
first run only; each build still starts from an empty output and work directory. A build takes about a minute on
the development machine once the cache is filled (docs/executor-image.md gives the figures).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from executor.image import build, oci
from tests.plugins.require import require
from wire import measurement as measure

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1800)]


def build_once(output: Path) -> tuple[str, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "executor.image.build", "--output", str(output), "--cache", str(build.DEFAULT_CACHE)],
        cwd=build.ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr
    digest = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("image digest"))
    return digest, time.monotonic() - started


def blobs(layout: Path) -> dict[str, str]:
    files = sorted(p for p in layout.rglob("*") if p.is_file())
    return {str(p.relative_to(layout)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_two_clean_builds_give_the_same_image_and_it_runs(tmp_path: Path) -> None:
    require("root", os.geteuid() == 0, "mmdebstrap builds the root filesystem in its root mode")
    require("mmdebstrap", shutil.which("mmdebstrap"), "apt-get install -y mmdebstrap")

    first, second = tmp_path / "one" / "oci", tmp_path / "two" / "oci"
    digest_one, seconds_one = build_once(first)
    digest_two, seconds_two = build_once(second)
    print(f"\nexecutor image: {digest_one} in {seconds_one:.0f} s, {digest_two} in {seconds_two:.0f} s")
    assert digest_one == digest_two
    assert blobs(first) == blobs(second)  # every blob, index.json, oci-layout and expected.json

    expected = json.loads((first / "expected.json").read_text())
    assert expected["image_digest"] == digest_one
    assert expected["rtmr3"] == measure.expected_rtmr3(digest_one)
    digest, manifest = oci.read_manifest(first)
    assert digest == digest_one
    assert [layer["content"] for layer in expected["layers"]] == ["debian", "wheels", "app"]
    assert [layer["digest"] for layer in expected["layers"]] == [d["digest"] for d in manifest["layers"]]
    config_path = first / "blobs" / "sha256" / manifest["config"]["digest"].removeprefix("sha256:")
    config = json.loads(config_path.read_bytes())
    epoch = expected["inputs"]["source_date_epoch"]

    rootfs = tmp_path / "rootfs"
    names: list[str] = []
    for descriptor in manifest["layers"]:
        layer_names = []
        for member in oci.layer_members(first, descriptor):
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (epoch, 0, 0, "", "")
            assert not member.mode & 0o6000, member.name
            assert not member.name.endswith(".pyc"), member.name
            assert "__pycache__" not in member.name, member.name
            layer_names.append(member.name)
        assert layer_names == sorted(layer_names)
        names += layer_names
        path = first / "blobs" / "sha256" / str(descriptor["digest"]).removeprefix("sha256:")
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(rootfs, filter="fully_trusted")
    assert "app/executor/__main__.py" in names
    assert "app/wire/canonical.py" in names
    assert not [n for n in names if n.startswith("app/executor/image")]
    assert not {"etc/hostname", "etc/resolv.conf", "etc/machine-id", "var/log/dpkg.log"} & set(names)

    env = dict(item.split("=", 1) for item in config["config"]["Env"])
    result = subprocess.run(
        ["chroot", f"--userspec={config['config']['User']}", str(rootfs), *config["config"]["Entrypoint"], "--help"],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "mm-executor API server" in result.stdout
    probe = (
        "import ssl, aiohttp, ccxt.async_support, nacl, cryptography, executor.api.app; "
        "print(ssl.get_default_verify_paths().cafile)"
    )
    result = subprocess.run(
        ["chroot", f"--userspec={config['config']['User']}", str(rootfs), "/usr/bin/python3.11", "-c", probe],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"/{build.SITE_PACKAGES}/certifi/cacert.pem"
