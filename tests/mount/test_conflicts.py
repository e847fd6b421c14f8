"""Conflicts through a real mount (SPEC §7, docs/SEMANTICS.md "Conflicts"), and
close-to-open visibility of other writers' changes (SPEC §4).

1. keep-both: a local edit meets a newer bucket version; both versions end up in
   the bucket, ``conflicts``/``status`` report it, the mount shows both names.
2. Two mounts of one bucket converge after both ``sync``.
3. A change, delete or new key made with boto3 is visible within the TTL + 1 s.
4. ``--conflict-strategy manual``: ``sync`` fails naming the file, the local edit
   stays, ``resolve --keep both`` lands both versions.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pytest

from tests.support.mount_helpers import file_keys, get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

CONFLICT_WARNING = r"conflict on "


def _host() -> str:
    """The short host name as SEMANTICS.md says it appears in conflict names."""
    short = socket.gethostname().split(".")[0] or "host"
    return re.sub(r"[^A-Za-z0-9_-]", "-", short)


def conflict_re(folder: str, stem: str, ext: str) -> re.Pattern:
    """``FOLDER/STEM.conflict-YYYYMMDD-HHMMSS-HOST.EXT`` (folder may be "")."""
    head = re.escape(folder + "/") if folder else ""
    return re.compile(head + re.escape(stem) + r"\.conflict-(\d{8}-\d{6})-" + re.escape(_host())
                      + re.escape(ext))


def assert_recent_utc_stamp(stamp: str, slack: float = 300.0) -> None:
    """The YYYYMMDD-HHMMSS part of a conflict name is the current UTC time."""
    import calendar

    when = calendar.timegm(time.strptime(stamp, "%Y%m%d-%H%M%S"))
    assert abs(when - time.time()) < slack, f"conflict stamp {stamp} is not the current UTC time"


def read_fresh(path: Path) -> bytes:
    with open(path, "rb") as f:  # a new open each time: close-to-open revalidation
        return f.read()


def poll(check, deadline: float, interval: float = 0.05):
    """Call ``check()`` until it returns a truthy value or ``deadline`` (monotonic) passes;
    return its last value."""
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def conflicts_json(m) -> list[dict]:
    r = m.cli("conflicts", str(m.mountpoint), "--json", timeout=60)
    assert r.returncode == 0, f"conflicts --json failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def mount_tree(root: Path) -> dict[str, bytes | None]:
    """{relative path: bytes} for files and {relative dir path + '/': None} for directories."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in sorted(dirnames):
            out[os.path.normpath(os.path.join(rel, d)) + "/"] = None
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            out[os.path.normpath(os.path.join(rel, f))] = read_fresh(Path(p))
    return out


def bucket_tree(s3, bucket: str) -> dict[str, bytes]:
    return {k: get_bytes(s3, bucket, k) for k in sorted(file_keys(s3, bucket))}


# ---------------------------------------------------------------- 1. keep-both


def test_keep_both_local_edit_under_remote_overwrite(mount, s3, bucket):
    ttl = 1.0
    s3.put_object(Bucket=bucket, Key="docs/report.txt", Body=b"base version\n")
    m = mount("--write-back-delay", "60", "--metadata-ttl", str(ttl))
    mount.allow_warning(CONFLICT_WARNING + r".*docs/report\.txt")
    assert m.path("docs/report.txt").read_bytes() == b"base version\n"

    local = b"local edit made through the mount\n" * 10
    with open(m.path("docs/report.txt"), "r+b") as f:
        f.write(local)
        f.truncate(len(local))
    remote = b"the other writer's version\n" * 3
    s3.put_object(Bucket=bucket, Key="docs/report.txt", Body=remote)
    assert m.status()["pending_files"] == 1, "the edit was uploaded before the remote change"

    m.sync()

    # the bucket: other writer's bytes under the original key, ours under a conflict name
    keys = file_keys(s3, bucket)
    pattern = conflict_re("docs", "report", ".txt")
    conflict_keys = [k for k in keys if pattern.fullmatch(k)]
    assert len(conflict_keys) == 1 and keys == {"docs/report.txt", conflict_keys[0]}, keys
    ckey = conflict_keys[0]
    assert_recent_utc_stamp(pattern.fullmatch(ckey).group(1))
    assert get_bytes(s3, bucket, "docs/report.txt") == remote
    assert get_bytes(s3, bucket, ckey) == local

    # conflicts --json lists it with where the local version went
    items = [c for c in conflicts_json(m) if c["path"] == "docs/report.txt"]
    assert len(items) == 1, conflicts_json(m)
    c = items[0]
    assert c["kind"] == "modified", c
    assert c["strategy"] == "keep-both", c
    assert ckey in c["local_to"], c
    assert c["resolved"], c

    # the human-readable form names it too
    r = m.cli("conflicts", str(m.mountpoint))
    assert r.returncode == 0 and "docs/report.txt" in r.stdout, r

    st = m.status()
    assert st["conflicts"] == 1, st
    assert st["conflicts_open"] == 0, st
    assert st["pending_files"] == 0, st

    # the mount shows both names; the original name has the bucket's version
    time.sleep(ttl + 0.2)
    cname = ckey.split("/", 1)[1]
    assert sorted(os.listdir(m.path("docs"))) == sorted(["report.txt", cname])
    assert read_fresh(m.path("docs/report.txt")) == remote
    assert read_fresh(m.path(ckey)) == local
    assert os.stat(m.path("docs/report.txt")).st_size == len(remote)


# ---------------------------------------------------------------- 2. two mounts converge


def test_two_mounts_of_one_bucket_converge(mount, s3, bucket):
    ttl = 1.0
    opts = ("--write-back-delay", "60", "--metadata-ttl", str(ttl))
    a = mount(*opts)
    b = mount(*opts)
    mount.allow_warning(CONFLICT_WARNING + r".*shared\.txt")

    base = b"base written by A\n"
    a.path("shared.txt").write_bytes(base)
    a.sync()
    assert get_bytes(s3, bucket, "shared.txt") == base
    # B sees it (after the TTL) and reads it: both edits are based on the same version
    deadline = time.monotonic() + ttl + 1
    assert poll(lambda: b.path("shared.txt").exists() and read_fresh(b.path("shared.txt")) == base, deadline), \
        f"B does not show shared.txt within TTL+1s: {os.listdir(b.mountpoint)}"

    edit_a = b"A's edit of shared\n" * 5
    edit_b = b"B's edit of the shared file, longer\n" * 7
    new_a = b"new file from A\n"
    new_b = b"new file from B\n" * 2
    a.path("shared.txt").write_bytes(edit_a)
    b.path("shared.txt").write_bytes(edit_b)
    a.path("only-a.txt").write_bytes(new_a)
    b.path("only-b.txt").write_bytes(new_b)

    a.sync()
    b.sync()

    # every byte written by either is in the bucket under the original or a conflict name
    in_bucket = bucket_tree(s3, bucket)
    pattern = conflict_re("", "shared", ".txt")
    shared_versions = {v for k, v in in_bucket.items() if k == "shared.txt" or pattern.fullmatch(k)}
    assert {edit_a, edit_b} <= shared_versions, in_bucket
    assert in_bucket.get("only-a.txt") == new_a, in_bucket
    assert in_bucket.get("only-b.txt") == new_b, in_bucket
    assert in_bucket.get("shared.txt") == edit_a, "A synced first: its edit should hold the original name"
    conflict_keys = [k for k in in_bucket if pattern.fullmatch(k)]
    assert len(conflict_keys) == 1 and in_bucket[conflict_keys[0]] == edit_b, in_bucket
    assert set(in_bucket) == {"shared.txt", "only-a.txt", "only-b.txt", conflict_keys[0]}, in_bucket

    # after the TTL both mounts show the same tree, which is the bucket's
    expected = dict(in_bucket)
    deadline = time.monotonic() + ttl + 1
    trees = {}

    def same() -> bool:
        trees["a"], trees["b"] = mount_tree(a.mountpoint), mount_tree(b.mountpoint)
        return trees["a"] == trees["b"] == expected

    if not poll(same, deadline, interval=0.2):
        names = set(trees["a"]) | set(trees["b"]) | set(expected)
        differing = sorted(p for p in names if not (trees["a"].get(p) == trees["b"].get(p) == expected.get(p)))
        pytest.fail(f"the mounts differ after TTL+1s:\nA: {sorted(trees['a'])}\nB: {sorted(trees['b'])}\n"
                    f"bucket: {sorted(expected)}\n"
                    f"differing paths: {differing}")
    assert a.status()["pending_files"] == 0 and b.status()["pending_files"] == 0
    assert b.status()["conflicts"] == 1


# ---------------------------------------------------------------- 3. other writers become visible


TTL_VISIBLE = 2.0


def cached_mount(mount, s3, bucket):
    """A mount (--metadata-ttl 2) that has listed, stat-ed and read every file in dir/."""
    objects = {"dir/changed.txt": b"version one\n", "dir/deleted.txt": b"soon gone\n", "dir/stays.txt": b"stays\n"}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    m = mount("--metadata-ttl", str(TTL_VISIBLE))
    assert sorted(os.listdir(m.path("dir"))) == ["changed.txt", "deleted.txt", "stays.txt"]
    for key, body in objects.items():
        assert read_fresh(m.path(key)) == body
        assert read_fresh(m.path(key)) == body  # a second open: served from the cache
    assert not m.path("dir/added.txt").exists()  # a negative lookup the kernel may cache
    return m


def assert_visible_in_time(check, what: str, seen: dict) -> None:
    """Poll ``check`` (a fresh open/listing each time) from now until TTL + 1 s."""
    t0 = time.monotonic()
    ok = poll(check, t0 + TTL_VISIBLE + 1)
    assert ok, (f"{what} not visible through the mount within TTL+1s = {TTL_VISIBLE + 1}s "
                f"(waited {time.monotonic() - t0:.2f}s); last seen: {seen}")


def test_remote_overwrite_of_cached_file_visible_within_ttl(mount, s3, bucket):
    m = cached_mount(mount, s3, bucket)
    new = b"version two, of another length\n"
    s3.put_object(Bucket=bucket, Key="dir/changed.txt", Body=new)
    seen: dict = {}

    def changed() -> bool:
        seen["content"] = read_fresh(m.path("dir/changed.txt"))
        return seen["content"] == new

    assert_visible_in_time(changed, "new content of dir/changed.txt", seen)
    assert os.stat(m.path("dir/changed.txt")).st_size == len(new)


def test_remote_delete_of_cached_file_visible_within_ttl(mount, s3, bucket):
    m = cached_mount(mount, s3, bucket)
    s3.delete_object(Bucket=bucket, Key="dir/deleted.txt")
    seen: dict = {}

    def deleted() -> bool:
        # both views must agree: the listing and a lookup by name (the kernel's cached
        # entry is dropped asynchronously, so it is polled too, within the same deadline)
        seen["listing"] = sorted(os.listdir(m.path("dir")))
        seen["exists"] = m.path("dir/deleted.txt").exists()
        return "deleted.txt" not in seen["listing"] and not seen["exists"]

    assert_visible_in_time(deleted, "delete of dir/deleted.txt", seen)
    assert sorted(os.listdir(m.path("dir"))) == ["changed.txt", "stays.txt"]


def test_remote_new_key_visible_within_ttl(mount, s3, bucket):
    m = cached_mount(mount, s3, bucket)
    s3.put_object(Bucket=bucket, Key="dir/added.txt", Body=b"added by boto3\n")
    seen: dict = {}

    def added() -> bool:
        seen["listing"] = sorted(os.listdir(m.path("dir")))
        return "added.txt" in seen["listing"]

    assert_visible_in_time(added, "new key dir/added.txt", seen)
    assert read_fresh(m.path("dir/added.txt")) == b"added by boto3\n"
    assert sorted(os.listdir(m.path("dir"))) == ["added.txt", "changed.txt", "deleted.txt", "stays.txt"]


# ---------------------------------------------------------------- 4. manual


def test_manual_strategy_waits_for_resolve(mount, s3, bucket):
    ttl = 1.0
    s3.put_object(Bucket=bucket, Key="notes/plan.md", Body=b"# plan v1\n")
    m = mount("--write-back-delay", "60", "--metadata-ttl", str(ttl), "--conflict-strategy", "manual")
    mount.allow_warning(CONFLICT_WARNING + r".*notes/plan\.md")
    assert m.path("notes/plan.md").read_bytes() == b"# plan v1\n"

    local = b"# plan v2, edited locally\n- item\n"
    m.path("notes/plan.md").write_bytes(local)
    remote = b"# plan v2 from elsewhere\n"
    s3.put_object(Bucket=bucket, Key="notes/plan.md", Body=remote)

    t0 = time.monotonic()
    r = m.cli("sync", str(m.mountpoint), "--timeout", "20", timeout=80)
    elapsed = time.monotonic() - t0
    assert r.returncode != 0, f"sync succeeded with an unresolved manual conflict: {r.stdout} {r.stderr}"
    assert "notes/plan.md" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert elapsed < 15, f"sync took {elapsed:.1f}s to report the conflict (it should not wait for its timeout)"

    # nothing was uploaded; the local edit is what the mount shows
    assert file_keys(s3, bucket) == {"notes/plan.md"}
    assert get_bytes(s3, bucket, "notes/plan.md") == remote
    time.sleep(ttl + 0.2)
    assert read_fresh(m.path("notes/plan.md")) == local
    items = [c for c in conflicts_json(m) if c["path"] == "notes/plan.md"]
    assert items and not any(c["resolved"] for c in items), items
    assert all(c["strategy"] == "manual" for c in items), items
    st = m.status()
    assert st["conflicts_open"] >= 1 and st["pending_files"] == 1, st

    r = m.cli("resolve", str(m.mountpoint), "notes/plan.md", "--keep", "both", timeout=120)
    assert r.returncode == 0, f"resolve failed ({r.returncode}): {r.stderr}\n{m.log_tail()}"

    keys = file_keys(s3, bucket)
    pattern = conflict_re("notes", "plan", ".md")
    conflict_keys = [k for k in keys if pattern.fullmatch(k)]
    assert len(conflict_keys) == 1 and keys == {"notes/plan.md", conflict_keys[0]}, keys
    assert get_bytes(s3, bucket, "notes/plan.md") == remote
    assert get_bytes(s3, bucket, conflict_keys[0]) == local

    items = [c for c in conflicts_json(m) if c["path"] == "notes/plan.md"]
    assert items and all(c["resolved"] for c in items), items
    assert any(conflict_keys[0] in (c["local_to"] or "") for c in items), items
    st = m.status()
    assert st["conflicts_open"] == 0 and st["pending_files"] == 0, st

    m.sync()  # nothing left: a plain sync succeeds now
    time.sleep(ttl + 0.2)
    assert read_fresh(m.path("notes/plan.md")) == remote
    assert read_fresh(m.path(conflict_keys[0])) == local

