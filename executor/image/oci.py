"""Deterministic OCI image layers and the OCI image layout (oci-layout, index.json, blobs/sha256/…).

A layer is a tar whose bytes depend only on the files' paths, contents, kinds and normalized modes: entries sorted
by path, every mtime the SOURCE_DATE_EPOCH, owner 0:0 with no user or group names, no extended headers for times,
no setuid or setgid bit (the executor runs unprivileged and needs none). Layers are gzip-compressed with a zero
gzip timestamp and no file name, at a fixed level; the uncompressed digests (the config's `diff_ids`) do not
depend on the compressor, the compressed ones (the manifest's) depend on zlib's deflate, which is stable for a
given zlib version. Configuration and manifest are JSON with sorted keys and no whitespace.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

GZIP_LEVEL = 6
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1 << 20

Kind = Literal["dir", "file", "symlink", "hardlink"]


class UnsupportedFile(ValueError):
    """A file a layer cannot hold reproducibly (a device node, a socket, a FIFO outside the skipped paths)."""

    code = "unsupported_file"


@dataclass(frozen=True)
class Entry:
    """One member of a layer. `source` is the file to read (kind `file`); `link` the target (symlink, hardlink)."""

    path: str  # relative, POSIX, no leading slash
    kind: Kind
    mode: int
    source: Path | None = None
    link: str = ""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str  # sha256:…
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Image:
    manifest: Descriptor  # its digest is the image digest
    config: Descriptor


@dataclass(frozen=True)
class Layer:
    descriptor: Descriptor
    diff_id: str  # sha256 of the uncompressed tar


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tree_entries(
    root: Path,
    *,
    prefix: str = "",
    skip: Callable[[str], bool] = lambda _: False,
    mode_of: Callable[[Kind, int], int] | None = None,
) -> list[Entry]:
    """Every file under `root` as layer entries named `prefix/relative path`, sorted, hard links kept as such.

    `skip(relative path)` leaves a path (and, for a directory, all below it) out. `mode_of(kind, st_mode)` gives the
    mode to record; by default the permission bits and the sticky bit, without setuid and setgid."""
    normalize = mode_of or _package_mode
    found: list[tuple[str, Path, os.stat_result]] = []
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        kept_dirs = []
        for name in dirnames:
            rel = (base / name).relative_to(root).as_posix()
            if skip(rel):
                continue
            info = (base / name).lstat()
            found.append((rel, base / name, info))
            if stat.S_ISDIR(info.st_mode):
                kept_dirs.append(name)  # a symlink to a directory is an entry, not a directory to descend into
        dirnames[:] = kept_dirs
        for name in filenames:
            rel = (base / name).relative_to(root).as_posix()
            if not skip(rel):
                found.append((rel, base / name, (base / name).lstat()))
    found.sort(key=lambda item: item[0])
    entries: list[Entry] = []
    first_of_inode: dict[tuple[int, int], str] = {}
    for rel, path, info in found:
        name = str(PurePosixPath(prefix) / rel) if prefix else rel
        if stat.S_ISDIR(info.st_mode):
            entries.append(Entry(name, "dir", normalize("dir", info.st_mode)))
        elif stat.S_ISLNK(info.st_mode):
            entries.append(Entry(name, "symlink", 0o777, link=os.readlink(path)))
        elif stat.S_ISREG(info.st_mode):
            inode = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and inode in first_of_inode:
                entries.append(Entry(name, "hardlink", normalize("file", info.st_mode), link=first_of_inode[inode]))
                continue
            first_of_inode[inode] = name
            entries.append(Entry(name, "file", normalize("file", info.st_mode), source=path))
        else:
            raise UnsupportedFile(f"{rel}: not a directory, regular file or symbolic link")
    return entries


def _package_mode(kind: Kind, st_mode: int) -> int:
    return stat.S_IMODE(st_mode) & ~(stat.S_ISUID | stat.S_ISGID)


def authored_mode(kind: Kind, st_mode: int) -> int:
    """Modes for files we add ourselves: 0755 for directories and anything executable, else 0644."""
    if kind == "dir" or st_mode & 0o111:
        return 0o755
    return 0o644


def parents(paths: Iterable[str]) -> list[Entry]:
    """Directory entries (0755) for every ancestor of `paths`, so a layer never relies on another for its dirs."""
    dirs: set[str] = set()
    for path in paths:
        for parent in PurePosixPath(path).parents:
            if str(parent) != ".":
                dirs.add(str(parent))
    return [Entry(d, "dir", 0o755) for d in sorted(dirs)]


class _Hashing:
    """A write-only stream that hashes and counts what passes through to `sink`."""

    def __init__(self, sink: BinaryIO | gzip.GzipFile) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind == "dir" else ""))
    info.mtime = mtime
    info.mode = entry.mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    elif entry.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, entry.link
    else:
        assert entry.source is not None
        info.type = tarfile.REGTYPE
        info.size = entry.source.lstat().st_size
    return info


def _sorted_unique(entries: Iterable[Entry]) -> list[Entry]:
    by_path: dict[str, Entry] = {}
    for entry in entries:
        previous = by_path.get(entry.path)
        if previous is not None and previous != entry:
            raise ValueError(f"{entry.path}: two different entries for one path")
        by_path[entry.path] = entry
    return [by_path[path] for path in sorted(by_path)]


def write_layer(entries: Iterable[Entry], *, mtime: int, blobs: Path) -> Layer:
    """Write the entries as one gzip-compressed tar blob under `blobs` (blobs/sha256); return its descriptor."""
    blobs.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    try:
        with os.fdopen(fd, "wb") as raw:
            compressed = _Hashing(raw)
            with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed, mtime=0) as gz:
                uncompressed = _Hashing(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                    for entry in _sorted_unique(entries):
                        info = _tarinfo(entry, mtime)
                        if entry.kind == "file":
                            assert entry.source is not None
                            with entry.source.open("rb") as content:
                                tar.addfile(info, content)
                        else:
                            tar.addfile(info)
        digest = compressed.hash.hexdigest()
        os.chmod(partial, 0o644)
        os.replace(partial, blobs / digest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return Layer(Descriptor(LAYER_GZIP, f"sha256:{digest}", compressed.size), f"sha256:{uncompressed.hash.hexdigest()}")


def write_blob(data: bytes, media_type: str, blobs: Path) -> Descriptor:
    digest = hashlib.sha256(data).hexdigest()
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest).write_bytes(data)
    return Descriptor(media_type, f"sha256:{digest}", len(data))


def write_layout(
    out: Path,
    *,
    layers: list[Layer],
    config: dict[str, Any],
    annotations: dict[str, str],
    ref_name: str,
) -> Image:
    """Finish an OCI image layout in `out` (whose blobs/sha256 already holds the layers): config, manifest,
    index.json, oci-layout."""
    blobs = out / "blobs" / "sha256"
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}}
    config_descriptor = write_blob(canonical_json(config), CONFIG, blobs)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_descriptor.as_json(),
        "layers": [layer.descriptor.as_json() for layer in layers],
        "annotations": annotations,
    }
    manifest_descriptor = write_blob(canonical_json(manifest), MANIFEST, blobs)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {**manifest_descriptor.as_json(), "annotations": {"org.opencontainers.image.ref.name": ref_name}}
        ],
    }
    (out / "index.json").write_bytes(canonical_json(index))
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return Image(manifest_descriptor, config_descriptor)


def read_manifest(layout: Path) -> tuple[str, dict[str, Any]]:
    """(image digest, manifest) of the one image in an OCI layout."""
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = index["manifests"]
    digest: str = entry["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes())
    return digest, manifest


def layer_members(layout: Path, descriptor: dict[str, Any]) -> Iterator[tarfile.TarInfo]:
    """The members of one layer of a layout, in order (for checks and tests)."""
    path = layout / "blobs" / "sha256" / str(descriptor["digest"]).removeprefix("sha256:")
    with tarfile.open(path, mode="r:gz") as tar:
        yield from tar
