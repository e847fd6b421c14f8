"""tar -x of a 3,000-file archive into a default mount (no --allow-delete) whose uploads run
during the extraction, tar -c back, members compared with tarfile."""

from __future__ import annotations

import hashlib
import os
import random
import tarfile
from pathlib import Path

import pytest

from tests.support.mount_helpers import get_bytes, list_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

MODES = [0o644, 0o600, 0o755, 0o640, 0o444, 0o664, 0o700]
DIR_MODES = [0o755, 0o750, 0o700, 0o775]
BASE_TIME = 1_500_000_000


def _make_tree(root: Path, count: int = 3000) -> None:
    rnd = random.Random(2000)
    dirs = []
    for a in range(8):
        for b in range(5):
            depth = [f"top{a}", f"mid{b}"] + ([f"deep{a}{b}", "leaf"] if (a + b) % 3 == 0 else [])
            dirs.append(Path(*depth))
    dirs.append(Path("empty-dir"))  # stays empty
    for i in range(count):
        d = root / dirs[i % (len(dirs) - 1)]
        d.mkdir(parents=True, exist_ok=True)
        p = d / (f"f{i:04d}.txt" if i % 3 else f"data {i:04d}.bin")
        size = 0 if i % 9 == 0 else rnd.choice([1, 17, 512, 4095, 4096, 4097, rnd.randint(1, 20_000)])
        p.write_bytes(rnd.randbytes(size))
        p.chmod(MODES[i % len(MODES)])
        os.utime(p, (BASE_TIME + i * 37, BASE_TIME + i * 37))
    (root / "empty-dir").mkdir()
    (root / "top0" / "link-to-file").symlink_to("mid0/f0001.txt")
    (root / "top1" / "mid1" / "link-to-dir").symlink_to("../../top2")
    (root / "dangling").symlink_to("/nonexistent/target")
    # directory modes and times last (writing files into them changed their mtime)
    all_dirs = sorted({p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}, key=lambda p: -len(p.parts))
    for j, d in enumerate(all_dirs):
        d.chmod(DIR_MODES[j % len(DIR_MODES)])
        os.utime(d, (BASE_TIME - j * 1000, BASE_TIME - j * 1000))


def _members(path: Path) -> dict[str, tuple]:
    out = {}
    with tarfile.open(path) as t:
        for m in t:
            digest = hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None
            name = m.name.rstrip("/")
            assert name not in out, f"{name} twice in {path}"
            out[name] = (m.type, m.size, m.mode, m.mtime, m.linkname, m.uid, m.gid, digest)
    return out


def test_tar_extract_then_create_round_trip(mount, run, tmp_path, s3, bucket):
    src = tmp_path / "src"
    _make_tree(src / "tree")
    archive = tmp_path / "in.tar"
    run(["tar", "-C", src, "-cf", archive, "tree"])
    want = _members(archive)
    assert sum(1 for v in want.values() if v[0] == tarfile.REGTYPE) == 3000
    assert sum(1 for v in want.values() if v[0] == tarfile.REGTYPE and v[1] == 0) > 100
    assert sum(1 for v in want.values() if v[0] == tarfile.SYMTYPE) == 3

    # GNU tar extracts a placeholder file for each symlink and replaces it at the end: with
    # uploads running every second, the placeholder is in the bucket by then, and removing it
    # needs the own-creations rule of SPEC §6 (before it, this raced the write-back delay).
    m = mount("--write-back-delay", "1")
    dest = m.path("x")
    dest.mkdir()
    run(["tar", "-C", dest, "-xf", archive])
    back = tmp_path / "back.tar"
    run(["tar", "-C", dest, "-cf", back, "tree"])
    got = _members(back)

    assert set(got) == set(want), (f"only in the original: {sorted(set(want) - set(got))[:10]}; "
                                   f"only in the copy: {sorted(set(got) - set(want))[:10]}")
    fields = ("type", "size", "mode", "mtime", "linkname", "uid", "gid", "sha256")
    bad = []
    for name in sorted(want):
        for f, a, b in zip(fields, want[name], got[name], strict=True):
            if a != b:
                bad.append(f"{name}: {f} {a!r} != {b!r}")
    assert not bad, f"{len(bad)} member fields differ:\n" + "\n".join(bad[:20])

    # and the bucket gets the same bytes (spot check; all of them go up at teardown anyway)
    m.sync()
    keys = set(list_keys(s3, bucket))
    assert "x/tree/empty-dir/" in keys
    regular = [n for n, v in want.items() if v[0] == tarfile.REGTYPE]
    missing = [n for n in regular if f"x/{n}" not in keys]
    assert not missing, f"{len(missing)} files not in the bucket after sync: {missing[:5]}"
    # exactly the members: no placeholder left behind under a symlink's name or elsewhere
    expected = {"x/"} | {f"x/{n}/" if v[0] == tarfile.DIRTYPE else f"x/{n}" for n, v in want.items()}
    assert keys == expected, (f"extra keys: {sorted(keys - expected)[:10]}; "
                              f"missing keys: {sorted(expected - keys)[:10]}")
    links = [n for n, v in want.items() if v[0] == tarfile.SYMTYPE]
    for n in links:
        assert get_bytes(s3, bucket, f"x/{n}") == want[n][4].encode(), n
    for n in regular[::300]:
        assert hashlib.sha256(get_bytes(s3, bucket, f"x/{n}")).hexdigest() == want[n][7]
