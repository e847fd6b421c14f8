"""rsync -a into the mount twice: the second run transfers nothing (also after upload and on a
fresh cache); rsync -a --delete between two trees inside a default mount."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from tests.support.mount_helpers import get_bytes, list_keys
from tests.support.treeutil import describe_diff, snapshot

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

# an --itemize-changes line: YXcstpoguax then a space and the name ("*deleting" lines too)
ITEMIZE = re.compile(r"^([<>ch.][fdLDS][.+ ?a-zA-Z]{9}|\*deleting) ")


def _make_tree(root: Path) -> None:
    rnd = random.Random(33)
    for i in range(300):
        d = root / f"d{i % 6}" / (f"sub{i % 4}" if i % 2 else "")
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"file-{i:03d}.dat"
        p.write_bytes(rnd.randbytes(0 if i % 25 == 0 else rnd.randint(1, 30_000)))
        p.chmod([0o644, 0o600, 0o755, 0o640][i % 4])
        # sub-second mtimes: rsync compares them (protocol 31+)
        ns = 1_600_000_000_000_000_000 + i * 1_234_567_891
        os.utime(p, ns=(ns, ns))
    (root / "empty").mkdir()
    (root / "d0" / "link").symlink_to("sub1/file-001.dat")
    (root / "d1" / "0700-dir").mkdir(mode=0o700)


def _rsync(run, src: Path, dst: Path) -> tuple[list[str], int]:
    """rsync -a SRC/ DST/; return (itemized lines, number of regular files transferred)."""
    r = run(["rsync", "-a", "--itemize-changes", "--stats", f"{src}/", f"{dst}/"])
    itemized = [line for line in r.stdout.splitlines() if ITEMIZE.match(line)]
    m = re.search(r"^Number of regular files transferred: ([\d,]+)$", r.stdout, re.MULTILINE)
    assert m, f"no transfer count in rsync --stats output:\n{r.stdout}"
    return itemized, int(m.group(1).replace(",", ""))


def test_rsync_twice_second_run_transfers_nothing(mount, run, tmp_path, s3, bucket):
    src = tmp_path / "src"
    _make_tree(src)
    want = snapshot(src)
    m = mount()
    dst = m.path("backup")

    itemized, transferred = _rsync(run, src, dst)
    assert transferred == 300 and len(itemized) > 300  # the detector sees changes when there are some
    got = snapshot(dst)
    assert got == want, describe_diff(want, got)

    itemized, transferred = _rsync(run, src, dst)
    assert (itemized, transferred) == ([], 0), f"second rsync changed things: {itemized[:20]}"

    # after the upload, attributes still match
    m.sync()
    itemized, transferred = _rsync(run, src, dst)
    assert (itemized, transferred) == ([], 0), f"rsync after sync changed things: {itemized[:20]}"

    # a change is transferred, and only that one (rsync writes a temp file and renames it
    # over the uploaded one: allowed without --allow-delete)
    changed = src / "d3" / "sub3" / "file-003.dat"
    changed.write_bytes(b"new content\n")
    itemized, transferred = _rsync(run, src, dst)
    assert transferred == 1
    assert [line.split(" ", 1)[1] for line in itemized if line[1] == "f"] == ["d3/sub3/file-003.dat"]
    assert (dst / "d3" / "sub3" / "file-003.dat").read_bytes() == b"new content\n"
    m.sync()
    assert get_bytes(s3, bucket, "backup/d3/sub3/file-003.dat") == b"new content\n"
    assert not [n for n in os.listdir(dst / "d3" / "sub3") if n.startswith(".")], "rsync temp file left"

    # the same tree through a mount with an empty cache: nothing to transfer either
    r = m.unmount()
    assert r.returncode == 0, r.stderr
    m2 = mount()
    itemized, transferred = _rsync(run, src, m2.path("backup"))
    assert (itemized, transferred) == ([], 0), f"rsync to a fresh-cache mount changed things: {itemized[:20]}"


def test_rsync_delete_between_two_trees_inside_a_default_mount(mount, run, tmp_path, s3, bucket):
    """SPEC §6, own creations: `rsync -a --delete` inside the mount removes and replaces files
    the mount uploaded, without --allow-delete, with uploads running every second."""
    src = tmp_path / "src"
    _make_tree(src)
    m = mount("--write-back-delay", "1")
    a, b = m.path("a"), m.path("b")
    run(["rsync", "-a", f"{src}/", f"{a}/"])
    run(["rsync", "-a", f"{a}/", f"{b}/"])
    m.sync()  # both trees are in the bucket
    # change tree a: deletions, a renamed directory, edits, new files
    for i in range(0, 300, 15):
        p = a / f"d{i % 6}" / (f"sub{i % 4}" if i % 2 else "") / f"file-{i:03d}.dat"
        p.unlink()
    (a / "d5").rename(a / "d5-renamed")
    (a / "d2" / "file-002.dat").write_bytes(b"edited\n")
    (a / "new").mkdir()
    (a / "new" / "x.txt").write_text("x\n")
    r = run(["rsync", "-a", "--delete", f"{a}/", f"{b}/"])
    assert r.returncode == 0, r.stderr
    want, got = snapshot(a), snapshot(b)
    assert got == want, describe_diff(want, got)
    m.sync()
    b_keys = {k.removeprefix("b/") for k in list_keys(s3, bucket) if k.startswith("b/") and not k.endswith("/")}
    assert b_keys == {rel for rel, v in want.items() if v[0] in ("file", "link")}
    assert get_bytes(s3, bucket, "b/d2/file-002.dat") == b"edited\n"
