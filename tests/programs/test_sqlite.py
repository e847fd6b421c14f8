"""sqlite3 on the mount: 10,000 rows in rollback-journal (DELETE) mode and in WAL mode.

Also two ways to meet the "uploaded files cannot be deleted without --allow-delete" rule
in the middle of a transaction (``mountsync sync`` during a transaction, ``--fsync-upload``):
SQLite commits a DELETE-mode transaction by deleting its journal.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mount_helpers import file_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

N = 10_000


def _value(i: int) -> int:
    return (i * 7919) % 1_000_003


EXPECTED_COUNT = N
EXPECTED_SUM = sum(_value(i) for i in range(1, N + 1))
EXPECTED_LEN = sum(len(f"row-{i}-{_value(i)}") for i in range(1, N + 1))

# 10,000 rows in two transactions of 5,000, values derived from the id
FILL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
  INSERT INTO t SELECT x, (x * 7919) % 1000003, 'row-' || x || '-' || ((x * 7919) % 1000003) FROM c;
COMMIT;
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 5001 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
  INSERT INTO t SELECT x, (x * 7919) % 1000003, 'row-' || x || '-' || ((x * 7919) % 1000003) FROM c;
COMMIT;
"""
CHECK = "SELECT count(*) || '|' || sum(v) || '|' || sum(length(s)) FROM t; PRAGMA integrity_check;"


def _sqlite(run, db: Path, sql: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["sqlite3", "-bail", db], input=sql, check=check)


def _check_lines(out: str) -> list[str]:
    return out.strip().splitlines()[-2:]


def _bucket_db(s3, bucket: str, key: str, tmp: Path) -> tuple:
    """Download the database (and a WAL next to it, if any) and read it with Python's sqlite3."""
    tmp.mkdir()
    for suffix in ("", "-wal"):
        if key + suffix in file_keys(s3, bucket):
            s3.download_file(bucket, key + suffix, str(tmp / f"db{suffix}"))
    con = sqlite3.connect(tmp / "db")
    try:
        return con.execute("SELECT count(*), sum(v), sum(length(s)) FROM t").fetchone() + \
            con.execute("PRAGMA integrity_check").fetchone()
    finally:
        con.close()


@pytest.mark.parametrize("journal_mode", ["DELETE", "WAL"])
def test_sqlite_10000_rows(mount, run, s3, bucket, tmp_path, journal_mode):
    m = mount()
    d = m.path("db")
    d.mkdir()
    db = d / "test.sqlite"
    r = _sqlite(run, db, f"PRAGMA journal_mode={journal_mode};\n" + FILL + CHECK)
    assert r.stdout.splitlines()[0] == journal_mode.lower(), f"journal mode not set: {r.stdout}"
    want = [f"{EXPECTED_COUNT}|{EXPECTED_SUM}|{EXPECTED_LEN}", "ok"]
    assert _check_lines(r.stdout) == want

    # another process reads it back
    r = _sqlite(run, db, f"PRAGMA journal_mode;\n{CHECK}")
    assert r.stdout.splitlines()[0] == journal_mode.lower()
    assert _check_lines(r.stdout) == want
    leftovers = sorted(p.name for p in d.iterdir() if p.name != "test.sqlite")
    assert leftovers == [], f"journal files left after the last connection closed: {leftovers}"

    m.sync()
    assert _bucket_db(s3, bucket, "db/test.sqlite", tmp_path / "dl1") == \
        (EXPECTED_COUNT, EXPECTED_SUM, EXPECTED_LEN, "ok")
    assert file_keys(s3, bucket) == {"db/test.sqlite"}, "journal files reached the bucket"

    # a later transaction on the uploaded database: its journal is new and local, so it can be deleted
    r = _sqlite(run, db, "BEGIN; UPDATE t SET v = v + 1 WHERE id % 2 = 0; COMMIT;\n"
                         "SELECT sum(v) FROM t; PRAGMA integrity_check;")
    assert r.stdout.split() == [str(EXPECTED_SUM + N // 2), "ok"]
    m.sync()
    assert _bucket_db(s3, bucket, "db/test.sqlite", tmp_path / "dl2") == \
        (EXPECTED_COUNT, EXPECTED_SUM + N // 2, EXPECTED_LEN, "ok")


_MID_TXN_SYNC = r"""
import sqlite3, subprocess, sys
db, mountpoint = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=DELETE")
con.execute("CREATE TABLE t(x)")
con.execute("INSERT INTO t VALUES (1)")
con.execute("BEGIN")
con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2, 1001)])
r = subprocess.run([sys.executable, "-m", "mountsync", "sync", mountpoint], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
try:
    con.execute("COMMIT")
    print("commit: ok")
except sqlite3.Error as exc:
    print(f"commit: {exc}")
con.close()
"""


def test_sqlite_commit_survives_sync_during_transaction(mount, run, cli_env, tmp_path):
    m = mount()
    db = m.path("mid.sqlite")
    r = subprocess.run([sys.executable, "-c", _MID_TXN_SYNC, str(db), str(m.mountpoint)], check=False, env=cli_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "commit: ok"
    r = _sqlite(run, db, "SELECT count(*) FROM t;", check=False)
    assert (r.returncode, r.stdout.strip()) == (0, "1000"), r.stderr


@pytest.mark.parametrize("journal_mode", ["DELETE", "WAL"])
def test_sqlite_with_fsync_upload(mount, run, journal_mode):
    m = mount("--fsync-upload")
    db = m.path("f.sqlite")
    r = _sqlite(run, db, f"PRAGMA journal_mode={journal_mode}; CREATE TABLE t(x); INSERT INTO t VALUES (1);"
                         "INSERT INTO t VALUES (2); SELECT count(*) FROM t;", check=False)
    assert r.returncode == 0, f"sqlite3 exited {r.returncode}: {r.stderr.strip()}"
    assert r.stdout.split() == [journal_mode.lower(), "2"]
    assert not m.path("f.sqlite-journal").exists()
