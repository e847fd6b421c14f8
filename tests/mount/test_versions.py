"""``mountsync versions`` and ``mountsync restore`` through a real mount on a versioned moto
bucket (issue 12 item 7; docs/SEMANTICS.md "Versions"): the versions listed are the bucket's,
a restore is an ordinary write through the mount (uploaded, and under the conflict rules
when another writer got there first), and every misuse ends in one line and a non-zero exit.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.mount.test_conflicts import CONFLICT_WARNING, conflict_re
from tests.support.mount_helpers import file_keys, get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _versioned(s3, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _versions(m, path: str) -> dict:
    r = m.cli("versions", str(m.path(path)), "--json", timeout=60)
    assert r.returncode == 0, f"versions failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def _write_and_sync(m, path: str, data: bytes) -> None:
    m.path(path).write_bytes(data)
    m.sync()
    time.sleep(1.05)  # moto keeps whole seconds: the next version sorts after this one


def test_versions_lists_every_version_and_restore_brings_one_back(mount, s3, bucket):
    _versioned(s3, bucket)
    m = mount("--write-back-delay", "0")
    m.path("notes").mkdir()
    _write_and_sync(m, "notes/plan.txt", b"first draft\n")
    _write_and_sync(m, "notes/plan.txt", b"second draft, longer\n")
    m.path("notes/plan.txt").unlink()
    m.sync()

    listed = _versions(m, "notes/plan.txt")
    assert listed["versioning"] == "Enabled"
    assert listed["key"] == "notes/plan.txt"
    versions = listed["versions"]
    assert [(v["deleted"], v["latest"], v["size"]) for v in versions] == [
        (True, True, 0), (False, False, 21), (False, False, 12)], versions
    first = versions[2]["version_id"]

    table = m.cli("versions", str(m.path("notes/plan.txt")), timeout=60)
    assert table.returncode == 0, table.stderr
    assert first in table.stdout and "delete marker" in table.stdout
    assert "mountsync restore" in table.stdout

    r = m.cli("restore", str(m.path("notes/plan.txt")), "--version-id", first, timeout=120)
    assert r.returncode == 0, f"restore failed: {r.stderr}\n{m.log_tail()}"
    assert "restored" in r.stdout
    assert m.path("notes/plan.txt").read_bytes() == b"first draft\n"
    m.sync()
    assert get_bytes(s3, bucket, "notes/plan.txt") == b"first draft\n"
    after = _versions(m, "notes/plan.txt")["versions"]
    assert len(after) == 4 and after[0]["latest"] and after[0]["size"] == 12, after
    assert not list((m.cache_dir / "restore").glob("*")), "the fetched version was left in the cache dir"


def test_restore_goes_through_the_conflict_rules(mount, s3, bucket):
    _versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="model.cfg", Body=b"lr=0.1\n")
    old = s3.list_object_versions(Bucket=bucket, Prefix="model.cfg")["Versions"][0]["VersionId"]
    s3.put_object(Bucket=bucket, Key="model.cfg", Body=b"lr=0.2\n")
    m = mount("--write-back-delay", "60")
    mount.allow_warning(CONFLICT_WARNING + r".*model\.cfg")
    assert m.path("model.cfg").read_bytes() == b"lr=0.2\n"

    r = m.cli("restore", str(m.path("model.cfg")), "--version-id", old, timeout=120)
    assert r.returncode == 0, f"restore failed: {r.stderr}\n{m.log_tail()}"
    # another writer changes the file before the restored bytes are uploaded
    s3.put_object(Bucket=bucket, Key="model.cfg", Body=b"lr=0.3 (someone else)\n")
    m.sync()

    keys = file_keys(s3, bucket)
    pattern = conflict_re("", "model", ".cfg")
    kept = [k for k in keys if pattern.fullmatch(k)]
    assert len(kept) == 1, keys
    assert get_bytes(s3, bucket, "model.cfg") == b"lr=0.3 (someone else)\n"
    assert get_bytes(s3, bucket, kept[0]) == b"lr=0.1\n"


def test_misuse_gives_one_line(mount, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"only version\n")
    m = mount()
    m.path("folder").mkdir()

    # an unversioned bucket: the one version, and a line saying how to turn versioning on
    r = m.cli("versions", str(m.path("plain.txt")), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "null" in r.stdout
    assert "not versioned" in r.stderr and "put-bucket-versioning" in r.stderr

    cases = [
        (("restore", str(m.path("plain.txt")), "--version-id", "no-such-version"), "no version"),
        (("versions", str(m.path("folder"))), "is a directory"),
        (("versions", str(tmp_path / "elsewhere.txt")), "not inside a mountsync mount"),
        (("restore", str(m.path("plain.txt"))), "--version-id"),
    ]
    for args, words in cases:
        r = m.cli(*args, timeout=60)
        assert r.returncode != 0, (args, r.stdout)
        lines = r.stderr.strip().splitlines()
        assert words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(lines) <= 2, (args, r.stderr)  # argparse adds its usage line
    assert m.path("plain.txt").read_bytes() == b"only version\n"
