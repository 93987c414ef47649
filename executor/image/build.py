"""Build the executor's OCI image from pinned inputs only, without a container engine (docs/executor-image.md).

    python -m executor.image.build [--output DIR] [--cache DIR] [--source-date-epoch N]    # `make executor-image`
    python -m executor.image.build lock                                                   # `make executor-image-lock`

Three layers: the Debian root filesystem (`packages.lock`, mmdebstrap), the executor's wheels
(`requirements/executor.lock`, hash-pinned, installed with pip from a local wheel directory, no index), and the
code the executor runs (`executor/` and `wire/` as checked out, without this builder). The output directory is an
OCI image layout plus `expected.json`: the image digest and the RTMR3 a TD running it must show. Two builds of the
same checkout give the same bytes; the build writes into a temporary directory and replaces the output only when
it has succeeded, so a failed build changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import executor
from executor.image import debian, oci
from executor.image.debian import ImageBuildError, MissingTool
from executor.lock_wheels import PLATFORMS
from wire import measurement as measure

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = Path(__file__).resolve().parent
PACKAGES_LOCK = IMAGE_DIR / "packages.lock"
WHEELS_LOCK = ROOT / "requirements" / "executor.lock"
DEFAULT_OUTPUT = ROOT / "var" / "executor-image" / "oci"
DEFAULT_CACHE = ROOT / "var" / "executor-image" / "cache"
SCHEMA = "mrmarket.executor-image/v1"
SERVICE = "mm-executor"

APP_SOURCES = ("executor", "wire")
APP_EXCLUDED = ("executor/image/", "executor/Dockerfile", "executor/lock_wheels.py")  # build tooling, not run
APP_DIR = "app"
SITE_PACKAGES = "opt/executor/site-packages"
PYTHON = "/usr/bin/python3.11"
USER = "65532:65532"  # no account: the executor needs none, and no file in the image belongs to it
PORT = 8700

# Files the Debian tools write that differ between two runs over the same packages, or that mean nothing in an
# image (logs, caches, the host-specific machine id); and what the OCI runtime provides (/dev, /proc, …).
ROOTFS_VOLATILE = (
    "etc/machine-id",
    "var/lib/dbus/machine-id",
    "var/cache/ldconfig/aux-cache",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "etc/hostname",  # mmdebstrap copies the build host's; the OCI runtime provides the container's
    "etc/resolv.conf",  # likewise
    "etc/apt/sources.list",  # the build's local repository (no apt in the image)
    "etc/apt/apt.conf.d/99mmdebstrap",
)
ROOTFS_VOLATILE_DIRS = ("var/log/apt", "var/lib/apt/lists", "var/cache/apt", "tmp", "run", "dev", "proc", "sys")
ROOTFS_VOLATILE_SUFFIXES = ("-old", ".pyc")
WHEEL_ENTRY = re.compile(r"^(\S+)==(\S+) \\\n\s+--hash=sha256:([0-9a-f]{64})$", re.M)


@dataclass(frozen=True)
class BuildResult:
    output: Path
    image_digest: str
    rtmr3: str
    seconds: float
    phases: dict[str, float]  # seconds per step, for the figures in docs/executor-image.md


def _sha256_file(path: Path) -> str:
    return debian.file_sha256(path)


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the Debian layer ------------------------------------------------------------------------------------------


def clean_rootfs(root: Path) -> None:
    """Remove what varies between runs or belongs to the build, and all bytecode (Python compiles in memory)."""
    for rel in ROOTFS_VOLATILE:
        (root / rel).unlink(missing_ok=True)
    for rel in ROOTFS_VOLATILE_DIRS:
        directory = root / rel
        if directory.is_dir() and not directory.is_symlink():
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for dirpath, dirnames, filenames in os.walk(root):
        if "__pycache__" in dirnames:
            shutil.rmtree(Path(dirpath) / "__pycache__")
            dirnames.remove("__pycache__")
        for name in filenames:
            if name.endswith(ROOTFS_VOLATILE_SUFFIXES):
                (Path(dirpath) / name).unlink()


# --- the wheels layer ------------------------------------------------------------------------------------------


def wheel_pins(text: str) -> dict[str, str]:
    """sha256 → `name==version` of every wheel `requirements/executor.lock` pins."""
    pins = {digest: f"{name}=={version}" for name, version, digest in WHEEL_ENTRY.findall(text)}
    if not pins:
        raise debian.LockError("requirements/executor.lock pins no wheel (make executor-lock)")
    return pins


def _pip(*args: str, cwd: Path | None = None, what: str) -> None:
    # -I and --isolated: neither PYTHON*/PIP_* variables nor a user's pip.conf take part in the build.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    command = [sys.executable, "-I", "-m", "pip", *args, "--isolated", "--disable-pip-version-check", "--quiet"]
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise ImageBuildError(f"{what} failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}")


def _platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def fetch_wheels(cache_root: Path) -> Path:
    """The wheel directory (cached by the lock's hash) holding every pinned wheel, downloaded by pip if missing."""
    text = WHEELS_LOCK.read_text()
    pins = wheel_pins(text)
    cache = cache_root / f"wheels-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    cache.mkdir(parents=True, exist_ok=True)
    present = {_sha256_file(path) for path in cache.glob("*.whl")}
    if set(pins) <= present:
        return cache
    with tempfile.TemporaryDirectory(prefix="executor-image-wheels-") as tmp:
        _pip(
            "download", "--require-hashes", "--no-deps", *_platform_args(), "-d", tmp, "-r", str(WHEELS_LOCK),
            what="pip download (requirements/executor.lock)",
        )  # fmt: skip
        for wheel in Path(tmp).glob("*.whl"):
            if _sha256_file(wheel) in pins:
                shutil.move(wheel, cache / wheel.name)
    present = {_sha256_file(path) for path in cache.glob("*.whl")}
    missing = sorted(pins[digest] for digest in set(pins) - present)
    if missing:
        raise debian.PackageUnavailable(f"pip did not deliver the pinned wheels {', '.join(missing)}")
    return cache


def install_wheels(wheels: Path, target: Path) -> None:
    """Install the pinned wheels into `target` offline; drop what pip writes for this machine only (scripts whose
    first line names the build's Python) and every bytecode file."""
    _pip(
        "install", "--no-index", "--find-links", str(wheels), "--require-hashes", "--no-deps", "--no-compile",
        "--no-warn-script-location", *_platform_args(), "--target", str(target), "-r", str(WHEELS_LOCK),
        what="pip install (requirements/executor.lock, from the wheel directory)",
    )  # fmt: skip
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in target.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines()
        kept = [line for line in lines if not line.startswith(("../", "bin/")) and ".pyc," not in line]
        record.write_text("".join(f"{line}\n" for line in kept))
    for directory, dirnames, _ in os.walk(target):
        if "__pycache__" in dirnames:
            shutil.rmtree(Path(directory) / "__pycache__")
            dirnames.remove("__pycache__")


# --- the application layer -------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    if shutil.which("git") is None:
        raise MissingTool("git not found: the build takes the executor's files from the checkout")
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)  # noqa: S603, S607
    if result.returncode != 0:
        raise ImageBuildError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def app_files() -> list[str]:
    """The executor's and the wire contract's files as checked out (tracked, or new and not ignored), relative
    to the repository, sorted; never the builder, byte code or anything .gitignore names."""
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *APP_SOURCES).split("\0")
    files = {
        path
        for path in listed
        if path and not path.startswith(APP_EXCLUDED) and (ROOT / path).is_file() and not (ROOT / path).is_symlink()
    }
    return sorted(files)


def source_state() -> tuple[str, bool]:
    """(HEAD commit, whether any input of the image differs from it)."""
    commit = _git("rev-parse", "HEAD").strip()
    inputs = [*APP_SOURCES, str(WHEELS_LOCK.relative_to(ROOT)), str(PACKAGES_LOCK.relative_to(ROOT))]
    dirty = bool(_git("status", "--porcelain", "--", *inputs).strip())
    return commit, dirty


# --- the image -------------------------------------------------------------------------------------------------


def image_config(*, created: str, python_version: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        f"PYTHONPATH=/{APP_DIR}:/{SITE_PACKAGES}",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONHASHSEED=0",
        "PYTHONUNBUFFERED=1",
        # The CA set is certifi's, pinned by hash with the wheels; the image carries no other trust store.
        f"SSL_CERT_FILE=/{SITE_PACKAGES}/certifi/cacert.pem",
        "EXECUTOR_HOST=0.0.0.0",
        "EXECUTOR_QUOTE_PROVIDER=configfs-tsm",
    ]
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": USER,
            "Env": env,
            "Entrypoint": [PYTHON, "-m", "executor"],
            "WorkingDir": f"/{APP_DIR}",
            "ExposedPorts": {f"{PORT}/tcp": {}},
            "Labels": {"org.opencontainers.image.title": SERVICE, "org.mrmarket.debian.python3.11": python_version},
        },
        "history": history,
    }


@contextlib.contextmanager
def _work_dir(parent: Path) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".executor-image-", dir=parent))
    try:
        yield work
    finally:
        _remove_tree(work)


def _remove_tree(path: Path) -> None:
    """rmtree, but never across a mount point a crashed mmdebstrap may have left inside (it could be the host's
    /dev or /proc): those are reported and left alone."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        left = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    if left:
        raise ImageBuildError(f"mounts left under {path}: {', '.join(left)}; unmount them, then remove the directory")
    shutil.rmtree(path, ignore_errors=True)


def build(output: Path, *, cache_root: Path = DEFAULT_CACHE, source_date_epoch: int | None = None) -> BuildResult:
    """Build the image into `output` (replaced only on success)."""
    started = time.monotonic()
    phases: dict[str, float] = {}

    clock = [started]

    def lap(name: str) -> None:
        now = time.monotonic()
        phases[name] = round(now - clock[0], 1)
        clock[0] = now

    lock = debian.parse_lock(PACKAGES_LOCK.read_text())
    epoch = lock.source_date_epoch if source_date_epoch is None else source_date_epoch
    debian.require_root()
    debian.require_tools("mmdebstrap", "dpkg-deb", "apt-get")
    output = output.resolve()
    with _work_dir(output.parent) as work:
        layout = work / "oci"
        blobs = layout / "blobs" / "sha256"
        debs = debian.fetch_packages(lock, cache_root)
        lap("fetch .debs")
        rootfs = work / "rootfs"
        debian.build_rootfs(lock, debs, rootfs, work)
        clean_rootfs(rootfs)
        lap("mmdebstrap")
        base = oci.write_layer(oci.tree_entries(rootfs), mtime=epoch, blobs=blobs)
        _remove_tree(rootfs)
        lap("debian layer")

        site = work / "site"
        wheel_dir = fetch_wheels(cache_root)
        lap("fetch wheels")
        install_wheels(wheel_dir, site)
        wheels = oci.write_layer(
            [
                *oci.parents([SITE_PACKAGES + "/x"]),
                oci.Entry(SITE_PACKAGES, "dir", 0o755),
                *oci.tree_entries(site, prefix=SITE_PACKAGES, mode_of=oci.authored_mode),
            ],
            mtime=epoch,
            blobs=blobs,
        )
        lap("wheels layer")
        files = app_files()
        app_entries = [
            oci.Entry(f"{APP_DIR}/{rel}", "file", oci.authored_mode("file", (ROOT / rel).stat().st_mode), ROOT / rel)
            for rel in files
        ]
        app = oci.write_layer([*oci.parents(e.path for e in app_entries), *app_entries], mtime=epoch, blobs=blobs)

        python_version = next(p.version for p in lock.packages if p.name == "python3.11")
        created = _iso(epoch)
        history = [
            {
                "created": created,
                "created_by": f"mmdebstrap {lock.suite} {lock.variant} (executor/image/packages.lock)",
            },
            {"created": created, "created_by": "pip install --no-index --require-hashes (requirements/executor.lock)"},
            {"created": created, "created_by": "executor/ and wire/ from the checkout"},
        ]
        config = image_config(created=created, python_version=python_version, history=history)
        annotations = {
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.title": SERVICE,
            "org.opencontainers.image.version": executor.__version__,
        }
        image = oci.write_layout(
            layout, layers=[base, wheels, app], config=config, annotations=annotations, ref_name=executor.__version__
        )
        commit, dirty = source_state()
        expected = expected_document(
            image_digest=image.manifest.digest,
            layers={"debian": base, "wheels": wheels, "app": app},
            config_digest=image.config.digest,
            inputs={
                "packages_lock_sha256": lock.sha256,
                "executor_lock_sha256": hashlib.sha256(WHEELS_LOCK.read_bytes()).hexdigest(),
                "source_date_epoch": epoch,
                "debian_suite": lock.suite,
                "python": python_version,
                "zlib": zlib.ZLIB_RUNTIME_VERSION,
                "gzip_level": oci.GZIP_LEVEL,
                "app_files": len(files),
            },
            commit=commit,
            dirty=dirty,
        )
        (layout / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
        _replace(output, layout, work)
        lap("app layer and layout")
    return BuildResult(output, image.manifest.digest, expected["rtmr3"], time.monotonic() - started, phases)


def _replace(output: Path, built: Path, work: Path) -> None:
    if output.exists():
        os.replace(output, work / "previous")
    os.replace(built, output)


def expected_document(
    *,
    image_digest: str,
    layers: dict[str, oci.Layer],
    config_digest: str,
    inputs: dict[str, Any],
    commit: str,
    dirty: bool,
) -> dict[str, Any]:
    """`expected.json`: what a verifier compares a quote and a registry with (format in docs/executor-image.md)."""
    event = measure.image_event(image_digest)
    return {
        "schema": SCHEMA,
        "service": SERVICE,
        "build_version": executor.__version__,
        "source_commit": commit,
        "source_dirty": dirty,
        "image_digest": image_digest,
        "config_digest": config_digest,
        "layers": [
            {
                "content": name,
                "digest": layer.descriptor.digest,
                "diff_id": layer.diff_id,
                "size": layer.descriptor.size,
            }
            for name, layer in layers.items()
        ],
        "rtmr3": measure.replay([event]).hex(),
        "rtmr3_events": [
            {
                "event_type": event.event_type,
                "name": event.name,
                "payload": event.payload.decode("ascii"),
                "digest": event.digest().hex(),
            }
        ],
        "inputs": inputs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor.image.build", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=("build", "lock"), default="build")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the OCI layout directory to write")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="downloaded .debs and wheels, by lock hash")
    parser.add_argument("--source-date-epoch", type=int, help="instead of the one packages.lock pins")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            template = debian.parse_lock(PACKAGES_LOCK.read_text(), require_packages=False)
            PACKAGES_LOCK.write_text(debian.resolve_lock(template, LOCK_HEADER))
            print(f"wrote {PACKAGES_LOCK.relative_to(ROOT)}")
            return 0
        result = build(args.output, cache_root=args.cache, source_date_epoch=args.source_date_epoch)
    except ImageBuildError as exc:
        sys.stderr.write(f"executor image: {exc.code}: {exc.message}\n")
        return 1
    print(f"image digest {result.image_digest}")
    print(f"rtmr3        {result.rtmr3}")
    print(f"layout       {result.output}")
    print(
        f"took         {result.seconds:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in result.phases.items()) + ")"
    )
    return 0


LOCK_HEADER = """\
The executor image's Debian root filesystem (executor/image/build.py, docs/executor-image.md): every package
mmdebstrap installs, pinned by version and by the SHA-256 of its .deb. Builds use exactly these files, offline.
`make executor-image-lock` re-resolves the suite, variant, includes and mirrors below against the archive and
rewrites the package lines (a new lock is a new image digest); edit the lines above the packages by hand."""


if __name__ == "__main__":
    sys.exit(main())
