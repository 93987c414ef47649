"""The executor image's pieces that need neither root nor mmdebstrap: deterministic layers, the OCI layout, the
package lock, the .deb cache and the builder's refusals (each typed, and leaving the output as it was)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from executor.image import build, debian, oci
from wire import measurement as measure

EPOCH = 1_796_083_200
SHA = "0" * 64


def make_tree(root: Path, *, mtime: int, reverse: bool = False) -> None:
    names = ["b.txt", "a/run.sh", "a/z", "c/d/e.txt"]
    for name in reversed(names) if reverse else names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")
    (root / "a/run.sh").chmod(0o4755)  # setuid: must not survive
    (root / "sticky").mkdir()
    (root / "sticky").chmod(0o1777)
    os.link(root / "b.txt", root / "hard.txt")
    (root / "link").symlink_to("b.txt")
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def layer_of(root: Path, blobs: Path) -> oci.Layer:
    return oci.write_layer(oci.tree_entries(root), mtime=EPOCH, blobs=blobs)


def test_the_same_files_give_the_same_layer_whatever_their_times_and_creation_order(tmp_path: Path) -> None:
    make_tree(tmp_path / "one", mtime=1_000_000_000)
    make_tree(tmp_path / "two", mtime=1_700_000_000, reverse=True)
    first = layer_of(tmp_path / "one", tmp_path / "blobs1")
    second = layer_of(tmp_path / "two", tmp_path / "blobs2")
    assert first == second
    blob = tmp_path / "blobs1" / first.descriptor.digest.removeprefix("sha256:")
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == first.descriptor.digest.removeprefix("sha256:")
    assert blob.stat().st_size == first.descriptor.size
    assert oct(blob.stat().st_mode & 0o777) == "0o644"
    (tmp_path / "two" / "c/d/e.txt").write_text("changed\n")
    assert layer_of(tmp_path / "two", tmp_path / "blobs3").diff_id != first.diff_id


def test_layer_members_are_sorted_normalized_and_carry_no_times_of_their_own(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", mtime=1_000_000_000)
    layer = layer_of(tmp_path / "tree", tmp_path / "blobs")
    with tarfile.open(tmp_path / "blobs" / layer.descriptor.digest.removeprefix("sha256:"), "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names == ["a", "a/run.sh", "a/z", "b.txt", "c", "c/d", "c/d/e.txt", "hard.txt", "link", "sticky"]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (EPOCH, 0, 0, "", "")
        assert not {"mtime", "atime", "ctime"} & set(member.pax_headers)
        assert not member.mode & 0o6000
    by_name = {m.name: m for m in members}
    assert by_name["a/run.sh"].mode == 0o755  # setuid dropped, permissions kept
    assert by_name["sticky"].mode == 0o1777
    assert by_name["hard.txt"].islnk()
    assert by_name["hard.txt"].linkname == "b.txt"
    assert by_name["link"].issym()
    assert by_name["link"].linkname == "b.txt"


def test_the_gzip_stream_has_no_time_and_no_file_name(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", mtime=1)
    layer = layer_of(tmp_path / "tree", tmp_path / "blobs")
    head = (tmp_path / "blobs" / layer.descriptor.digest.removeprefix("sha256:")).read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] == 0  # no FNAME, no FEXTRA, no comment
    assert head[4:8] == b"\0\0\0\0"  # MTIME 0


def test_a_special_file_is_refused_and_no_blob_is_left(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", mtime=1)
    os.mkfifo(tmp_path / "tree" / "fifo")
    with pytest.raises(oci.UnsupportedFile) as caught:
        layer_of(tmp_path / "tree", tmp_path / "blobs")
    assert caught.value.code == "unsupported_file"
    assert not (tmp_path / "blobs").exists() or not list((tmp_path / "blobs").iterdir())


def test_authored_layers_get_fixed_modes_and_their_parent_directories(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", mtime=1)
    (tmp_path / "tree" / "b.txt").chmod(0o600)
    entries = oci.tree_entries(tmp_path / "tree", prefix="opt/x", mode_of=oci.authored_mode)
    entries = [*oci.parents(e.path for e in entries), *entries]
    modes = {e.path: e.mode for e in entries}
    assert modes["opt"] == modes["opt/x"] == modes["opt/x/a"] == 0o755
    assert modes["opt/x/b.txt"] == 0o644
    assert modes["opt/x/a/run.sh"] == 0o755
    layer = oci.write_layer(entries, mtime=EPOCH, blobs=tmp_path / "blobs")  # a duplicate parent is one entry
    with tarfile.open(tmp_path / "blobs" / layer.descriptor.digest.removeprefix("sha256:"), "r:gz") as tar:
        names = tar.getnames()
    assert names[:2] == ["opt", "opt/x"]
    assert len(names) == len(set(names))


def test_the_layout_is_content_addressed_and_its_json_canonical(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", mtime=1)
    out = tmp_path / "oci"
    layer = layer_of(tmp_path / "tree", out / "blobs" / "sha256")
    image = oci.write_layout(out, layers=[layer], config={"os": "linux"}, annotations={"a": "b"}, ref_name="0.1.0")
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    digest, manifest = oci.read_manifest(out)
    assert digest == image.manifest.digest
    raw = (out / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert raw == oci.canonical_json(json.loads(raw))
    assert manifest["layers"] == [layer.descriptor.as_json()]
    config = json.loads((out / "blobs" / "sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    index = json.loads((out / "index.json").read_bytes())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "0.1.0"}


# --- the package lock ------------------------------------------------------------------------------------------

LOCK = f"""# header
suite bookworm
architecture amd64
variant essential
include python3.11
mirror http://deb.debian.org/debian bookworm main
source-date-epoch {EPOCH}
package zlib1g 1:1.2.13.dfsg-1+deb12u1 amd64 sha256:{SHA}
package base-files 12.4+deb12u15 amd64 sha256:{"1" * 64}
"""


def test_the_lock_parses_sorted_and_round_trips() -> None:
    lock = debian.parse_lock(LOCK)
    assert [p.name for p in lock.packages] == ["base-files", "zlib1g"]
    assert lock.packages[1].filename == "zlib1g_1%3a1.2.13.dfsg-1+deb12u1_amd64.deb"
    assert lock.includes == ("python3.11",)
    assert lock.source_date_epoch == EPOCH
    assert lock.sha256 == hashlib.sha256(LOCK.encode()).hexdigest()
    again = debian.parse_lock(debian.format_lock(lock, "header"))
    assert again.packages == lock.packages
    assert again.mirrors == lock.mirrors


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("variant essential\n", ""), "lacks variant"),
        (lambda t: t + "bogus x\n", "unknown key 'bogus'"),
        (lambda t: t + f"package zlib1g 1 amd64 sha256:{SHA}\n", "zlib1g more than once"),
        (lambda t: t.replace(f"sha256:{SHA}", "md5:00"), "expected 'package NAME VERSION ARCH sha256:HEX'"),
        (lambda t: t.replace(f"sha256:{SHA}", f"sha256:{SHA[:-1]}"), "expected 'package"),
        (lambda t: t + "suite trixie\n", "suite given twice"),
        (lambda t: t.replace(f"source-date-epoch {EPOCH}", "source-date-epoch soon"), "whole number"),
        (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("package")), "pins no package"),
    ],
)
def test_a_malformed_lock_is_refused(change, message: str) -> None:
    with pytest.raises(debian.LockError) as caught:
        debian.parse_lock(change(LOCK))
    assert message in caught.value.message
    assert caught.value.code == "bad_lock"


def test_the_committed_lock_pins_python_and_nothing_twice() -> None:
    lock = debian.parse_lock(build.PACKAGES_LOCK.read_text())
    names = {p.name for p in lock.packages}
    assert {"python3.11", "libpython3.11-stdlib", "libc6", "usr-is-merged"} <= names
    assert "usrmerge" not in names
    assert "perl" not in names
    assert lock.variant == "essential"
    assert lock.suite == "bookworm"


def test_a_corrupt_cached_deb_is_deleted_and_fetched_again(tmp_path: Path) -> None:
    good = b"a .deb"
    lock = debian.parse_lock(LOCK.replace(f"sha256:{SHA}", f"sha256:{hashlib.sha256(good).hexdigest()}"))
    cache = debian.cache_dir_for(lock, tmp_path)
    cache.mkdir(parents=True)
    zlib_pkg = next(p for p in lock.packages if p.name == "zlib1g")
    base_pkg = next(p for p in lock.packages if p.name == "base-files")
    (cache / zlib_pkg.filename).write_bytes(good)
    (cache / base_pkg.filename).write_bytes(b"tampered")
    present, missing = debian.cached_packages(lock, cache)
    assert present == [zlib_pkg]
    assert missing == [base_pkg]
    assert not (cache / base_pkg.filename).exists()
    assert cache.name == f"debs-{lock.sha256[:16]}"


def test_installed_packages_reads_only_installed_stanzas(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nDescription: x\n multi: line\n\n"
        "Package: b\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 2\n"
    )
    assert debian.installed_packages(tmp_path) == {("a", "1", "amd64")}


# --- the builder -----------------------------------------------------------------------------------------------


def test_a_missing_mmdebstrap_fails_with_its_name_and_leaves_the_output_alone(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "oci"
    out.mkdir()
    (out / "index.json").write_text("previous build")
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian.shutil, "which", lambda name: None if name == "mmdebstrap" else f"/usr/bin/{name}")
    with pytest.raises(debian.MissingTool) as caught:
        build.build(out, cache_root=tmp_path / "cache")
    assert "mmdebstrap not found" in caught.value.message
    assert "apt-get install -y mmdebstrap" in caught.value.message
    assert build.main(["--output", str(out), "--cache", str(tmp_path / "cache")]) == 1
    assert "executor image: missing_tool: mmdebstrap not found" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["oci"]  # no work directory, no cache
    assert (out / "index.json").read_text() == "previous build"


def test_not_root_is_refused_before_anything_is_fetched(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(debian.MissingTool, match="as root"):
        build.build(tmp_path / "oci", cache_root=tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []


def test_clean_rootfs_removes_what_varies_and_all_bytecode(tmp_path: Path) -> None:
    keep = ["etc/passwd", "usr/lib/python3.11/os.py", "var/log/wtmp", "tmp", "run"]
    drop = [
        "etc/machine-id",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/apt/sources.list",
        "var/log/dpkg.log",
        "var/log/apt/history.log",
        "var/cache/ldconfig/aux-cache",
        "var/lib/dpkg/status-old",
        "var/cache/debconf/config.dat-old",
        "usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
        "usr/lib/python3.11/stray.pyc",
        "tmp/leftover",
        "run/lock/x",
    ]
    for rel in keep[:3] + drop:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    build.clean_rootfs(tmp_path)
    for rel in keep:
        assert (tmp_path / rel).exists(), rel
    for rel in drop:
        assert not (tmp_path / rel).exists(), rel
    assert not (tmp_path / "usr/lib/python3.11/__pycache__").exists()


def test_the_app_layer_holds_the_executor_and_the_wire_contract_but_not_the_builder() -> None:
    files = build.app_files()
    assert "executor/__main__.py" in files
    assert "wire/canonical.py" in files
    assert not [f for f in files if f.startswith("executor/image/")]
    assert "executor/Dockerfile" not in files
    assert "executor/lock_wheels.py" not in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert files == sorted(files)


def test_wheel_pins_read_the_executor_lock() -> None:
    pins = build.wheel_pins(build.WHEELS_LOCK.read_text())
    assert "aiohttp==3.14.5" in pins.values()
    assert all(len(digest) == 64 for digest in pins)
    with pytest.raises(debian.LockError):
        build.wheel_pins("# nothing\n")


def test_expected_json_names_the_digest_and_the_rtmr3_it_implies() -> None:
    layer = oci.Layer(oci.Descriptor(oci.LAYER_GZIP, "sha256:" + "1" * 64, 10), "sha256:" + "2" * 64)
    digest = "sha256:" + "3" * 64
    document = build.expected_document(
        image_digest=digest,
        layers={"app": layer},
        config_digest="sha256:" + "4" * 64,
        inputs={},
        commit="c",
        dirty=False,
    )
    assert document["schema"] == "mrmarket.executor-image/v1"
    assert document["image_digest"] == digest
    assert document["rtmr3"] == measure.expected_rtmr3(digest)
    (event,) = document["rtmr3_events"]
    assert event == {
        "event_type": 0x08000001,
        "name": "mrmarket.executor-image",
        "payload": digest,
        "digest": measure.image_event(digest).digest().hex(),
    }
    assert document["layers"] == [
        {"content": "app", "digest": "sha256:" + "1" * 64, "diff_id": "sha256:" + "2" * 64, "size": 10}
    ]
