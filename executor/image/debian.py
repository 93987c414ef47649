"""The executor image's Debian root filesystem, from pinned packages only.

`packages.lock` names the suite, the mmdebstrap variant, the packages asked for and every package of the result
(name, version, architecture, SHA-256 of the .deb). A build never resolves anything against a live archive: it
fetches exactly the locked .debs (into a cache keyed by the lock's hash, each checked against its SHA-256), serves
them to mmdebstrap as a local repository that holds nothing else, and checks that what got installed is the lock.
So the root filesystem depends on the lock, the SOURCE_DATE_EPOCH and mmdebstrap's own behaviour, nothing else.

`lock` (run by `make executor-image-lock`) is the one step that asks the archive: it runs the same mmdebstrap
against the mirrors and writes down what it installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")  # from debian-archive-keyring, which apt needs
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")  # merged /usr without the usrmerge package
# Documentation and translations are left out (dpkg path filters); the copyright files stay.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


class ImageBuildError(Exception):
    """A build that cannot go on; `code` names why, the message says what to do."""

    code = "image_build"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LockError(ImageBuildError):
    code = "bad_lock"


class MissingTool(ImageBuildError):
    code = "missing_tool"


class PackageUnavailable(ImageBuildError):
    code = "package_unavailable"


class DigestMismatch(ImageBuildError):
    code = "digest_mismatch"


class InstalledSetMismatch(ImageBuildError):
    code = "installed_set_mismatch"


@dataclass(frozen=True, order=True)
class Package:
    name: str
    version: str
    architecture: str
    sha256: str = field(compare=False)

    @property
    def filename(self) -> str:
        """The .deb's name in the cache (apt's own convention: the epoch's colon as %3a)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.architecture)


@dataclass(frozen=True)
class Lock:
    suite: str
    architecture: str
    variant: str
    includes: tuple[str, ...]
    mirrors: tuple[str, ...]  # sources.list lines, without `deb`
    source_date_epoch: int
    packages: tuple[Package, ...]
    sha256: str  # of the lock file's bytes: the cache key

    def package_keys(self) -> set[tuple[str, str, str]]:
        return {p.key for p in self.packages}


def parse_lock(text: str, *, require_packages: bool = True) -> Lock:
    """Read `packages.lock`; refuse anything it does not define (a typo must not silently drop a pin)."""
    fields: dict[str, str] = {}
    includes: list[str] = []
    mirrors: list[str] = []
    packages: list[Package] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        if key in ("suite", "architecture", "variant", "source-date-epoch"):
            if key in fields:
                raise LockError(f"packages.lock line {number}: {key} given twice")
            fields[key] = rest
        elif key == "include":
            includes.extend(rest.split())
        elif key == "mirror":
            mirrors.append(rest)
        elif key == "package":
            parts = rest.split()
            digest = SHA256.fullmatch(parts[3]) if len(parts) == 4 else None
            if digest is None:
                raise LockError(f"packages.lock line {number}: expected 'package NAME VERSION ARCH sha256:HEX'")
            packages.append(Package(parts[0], parts[1], parts[2], digest.group(1)))
        else:
            raise LockError(f"packages.lock line {number}: unknown key {key!r}")
    missing = [k for k in ("suite", "architecture", "variant", "source-date-epoch") if k not in fields]
    if missing:
        raise LockError(f"packages.lock lacks {', '.join(missing)}")
    if require_packages and not packages:
        raise LockError("packages.lock pins no package: run `make executor-image-lock`")
    if not fields["source-date-epoch"].isdigit():
        raise LockError("packages.lock: source-date-epoch must be a whole number of seconds")
    names = [p.name for p in packages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LockError(f"packages.lock pins {', '.join(duplicates)} more than once")
    return Lock(
        suite=fields["suite"],
        architecture=fields["architecture"],
        variant=fields["variant"],
        includes=tuple(includes),
        mirrors=tuple(mirrors),
        source_date_epoch=int(fields["source-date-epoch"]),
        packages=tuple(sorted(packages)),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def format_lock(lock: Lock, header: str) -> str:
    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), ""]
    lines += [f"suite {lock.suite}", f"architecture {lock.architecture}", f"variant {lock.variant}"]
    lines += [f"include {name}" for name in lock.includes]
    lines += [f"mirror {mirror}" for mirror in lock.mirrors]
    lines += [f"source-date-epoch {lock.source_date_epoch}", ""]
    lines += [f"package {p.name} {p.version} {p.architecture} sha256:{p.sha256}" for p in lock.packages]
    return "\n".join(lines) + "\n"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise MissingTool(
            f"{', '.join(missing)} not found: the executor image is built with Debian's tools "
            f"(`apt-get install -y mmdebstrap`, which brings apt and dpkg)"
        )


def require_root() -> None:
    if os.geteuid() != 0:
        raise MissingTool("mmdebstrap builds the root filesystem in its root mode: run the build as root")


def _tool_env(source_date_epoch: int) -> dict[str, str]:
    """A fixed environment for mmdebstrap and the maintainer scripts it runs: nothing of the caller's leaks in."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/root",
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        "TMPDIR": tempfile.gettempdir(),
    }


def _run(command: Sequence[str], *, env: dict[str, str], cwd: Path | None = None, what: str) -> None:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-60:])
        raise ImageBuildError(f"{what} failed (exit {result.returncode}):\n{tail}")


# --- fetching the locked .debs ---------------------------------------------------------------------------------


def cache_dir_for(lock: Lock, cache_root: Path) -> Path:
    return cache_root / f"debs-{lock.sha256[:16]}"


def cached_packages(lock: Lock, cache: Path) -> tuple[list[Package], list[Package]]:
    """(present and intact, missing); a cached file whose SHA-256 differs is deleted and counts as missing."""
    present: list[Package] = []
    missing: list[Package] = []
    for package in lock.packages:
        path = cache / package.filename
        if path.is_file() and file_sha256(path) == package.sha256:
            present.append(package)
            continue
        path.unlink(missing_ok=True)
        missing.append(package)
    return present, missing


def _apt_config(work: Path, lock: Lock) -> dict[str, str]:
    """A private apt (its own sources, lists, cache and empty status) so the host's configuration plays no part."""
    for sub in ("lists/partial", "archives/partial", "parts", "preferences.d", "trusted.gpg.d"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    sources = "".join(f"deb [signed-by={KEYRING}] {mirror}\n" for mirror in lock.mirrors)
    (work / "sources.list").write_text(sources)
    conf = work / "apt.conf"
    conf.write_text(
        "\n".join(
            [
                f'Dir::Etc::SourceList "{work / "sources.list"}";',
                f'Dir::Etc::SourceParts "{work / "parts"}";',
                f'Dir::Etc::Parts "{work / "parts"}";',
                f'Dir::Etc::PreferencesParts "{work / "preferences.d"}";',
                f'Dir::Etc::TrustedParts "{work / "trusted.gpg.d"}";',
                f'Dir::State::Lists "{work / "lists"}";',
                f'Dir::State::status "{work / "status"}";',
                f'Dir::Cache "{work}";',
                f'Dir::Cache::archives "{work / "archives"}";',
                f'APT::Architecture "{lock.architecture}";',
                f'APT::Architectures {{ "{lock.architecture}"; }};',
                'Acquire::Languages "none";',
                'APT::Sandbox::User "root";',
                "",
            ]
        )
    )
    return {**_tool_env(lock.source_date_epoch), "APT_CONFIG": str(conf)}


def fetch_packages(lock: Lock, cache_root: Path) -> Path:
    """Make sure every locked .deb is in the cache, intact; download the missing ones with apt. The cache dir."""
    cache = cache_dir_for(lock, cache_root)
    cache.mkdir(parents=True, exist_ok=True)
    _, missing = cached_packages(lock, cache)
    if not missing:
        return cache
    require_tools("apt-get")
    if not KEYRING.is_file():
        raise MissingTool(f"{KEYRING} not found (apt-get install -y debian-archive-keyring)")
    with tempfile.TemporaryDirectory(prefix="executor-image-apt-") as tmp:
        work = Path(tmp)
        env = _apt_config(work / "apt", lock)
        _run(["apt-get", "-q", "update"], env=env, what="apt-get update (for the locked packages)")
        download = work / "download"
        download.mkdir()
        wanted = [f"{p.name}:{p.architecture}={p.version}" for p in missing]
        result = subprocess.run(  # noqa: S603
            ["apt-get", "-q", "download", *wanted],  # noqa: S607 (the host's apt, on PATH)
            env=env,
            cwd=download,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PackageUnavailable(
                "a pinned package could not be downloaded; Debian keeps only the current version of each package on "
                "its mirrors, so a pin that a point release or a security update superseded is gone from them. "
                "Rebuild from a cache that holds it, point the lock's mirrors at snapshot.debian.org, or re-lock "
                "with `make executor-image-lock` (a new lock is a new image digest).\n" + result.stderr.strip()
            )
        for package in missing:
            path = download / package.filename
            if not path.is_file():
                raise PackageUnavailable(f"apt did not deliver {package.filename}")
            got = file_sha256(path)
            if got != package.sha256:
                raise DigestMismatch(f"{package.filename}: SHA-256 {got}, the lock pins {package.sha256}")
            os.replace(path, cache / package.filename)
    return cache


# --- the local repository and mmdebstrap -----------------------------------------------------------------------


def write_repository(lock: Lock, cache: Path, repo: Path) -> None:
    """A flat apt repository holding exactly the locked .debs: a `Packages` index and links to the cache."""
    repo.mkdir(parents=True)
    stanzas: list[str] = []
    for package in lock.packages:
        source = cache / package.filename
        (repo / package.filename).symlink_to(source)
        control = subprocess.run(  # noqa: S603
            ["dpkg-deb", "--field", str(source)],  # noqa: S607 (the host's dpkg, on PATH)
            capture_output=True,
            text=True,
            check=True,
        ).stdout.rstrip("\n")
        size = source.stat().st_size
        stanzas.append(f"{control}\nFilename: ./{package.filename}\nSize: {size}\nSHA256: {package.sha256}\n")
    index = "\n".join(stanzas).encode()
    (repo / "Packages").write_bytes(index)
    # mmdebstrap picks the Essential:yes set only from an archive whose suite matches: the Release file says it.
    release = [
        f"Suite: {lock.suite}",
        f"Codename: {lock.suite}",
        f"Architectures: {lock.architecture} all",
        "SHA256:",
        f" {hashlib.sha256(index).hexdigest()} {len(index)} Packages",
    ]
    (repo / "Release").write_text("\n".join(release) + "\n")


def _mmdebstrap_command(lock: Lock, target: Path, sources: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    command = ["mmdebstrap", "--mode=root", "--format=directory", f"--variant={lock.variant}"]
    command += [f"--architectures={lock.architecture}", f"--hook-dir={MERGED_USR_HOOKS}"]
    if lock.includes:
        command.append("--include=" + ",".join(lock.includes))
    command += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    command += ['--aptopt=Acquire::Languages "none"', *extra, lock.suite, str(target), *sources]
    return command


def build_rootfs(lock: Lock, cache: Path, target: Path, work: Path) -> None:
    """mmdebstrap the locked packages into `target` (which must not exist), offline, then check the result."""
    require_root()
    require_tools("mmdebstrap", "dpkg-deb")
    repo = work / "repo"
    write_repository(lock, cache, repo)
    sources = [f"deb [trusted=yes] copy:{repo} ./"]  # copy: apt copies each .deb into the chroot for dpkg
    _run(
        _mmdebstrap_command(lock, target, sources),
        env=_tool_env(lock.source_date_epoch),
        what="mmdebstrap (the executor image's root filesystem)",
    )
    installed = installed_packages(target)
    if installed != lock.package_keys():
        extra = sorted(installed - lock.package_keys())
        absent = sorted(lock.package_keys() - installed)
        raise InstalledSetMismatch(f"mmdebstrap installed another set than the lock: extra {extra}, absent {absent}")


def installed_packages(root: Path) -> set[tuple[str, str, str]]:
    """(name, version, architecture) of every package dpkg records as installed under `root`."""
    status = (root / "var/lib/dpkg/status").read_text()
    installed: set[tuple[str, str, str]] = set()
    for stanza in status.split("\n\n"):
        values = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if values.get("Status") == "install ok installed":
            installed.add((values["Package"], values["Version"], values["Architecture"]))
    return installed


def resolve_lock(template: Lock, header: str) -> str:
    """Ask the archive: run mmdebstrap against the lock's mirrors and write down every package it installed."""
    require_root()
    require_tools("mmdebstrap", "dpkg-deb")
    with tempfile.TemporaryDirectory(prefix="executor-image-lock-") as tmp:
        work = Path(tmp)
        debs = work / "debs"
        debs.mkdir()
        extra = [
            "--skip=essential/unlink",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives',
            f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
        ]
        sources = [f"deb [signed-by={KEYRING}] {mirror}" for mirror in template.mirrors]
        target = work / "root"
        _run(
            _mmdebstrap_command(template, target, sources, extra),
            env=_tool_env(template.source_date_epoch),
            what="mmdebstrap against the mirrors",
        )
        packages: list[Package] = []
        for name, version, architecture in sorted(installed_packages(target)):
            placeholder = Package(name, version, architecture, "")
            path = debs / placeholder.filename
            if not path.is_file():
                raise PackageUnavailable(f"mmdebstrap installed {name} {version} but left no {path.name}")
            packages.append(Package(name, version, architecture, file_sha256(path)))
    lock = Lock(
        suite=template.suite,
        architecture=template.architecture,
        variant=template.variant,
        includes=template.includes,
        mirrors=template.mirrors,
        source_date_epoch=template.source_date_epoch,
        packages=tuple(packages),
        sha256="",
    )
    return format_lock(lock, header)
