"""The durable journal: per-path cache state and pending remote operations (sqlite3).

Tables
------
``entries``: one row per path the cache knows locally (a cached clean file, a
locally created or modified file, a directory made with mkdir, a symlink).
``id`` doubles as the name of the entry's data file, so object keys never name
cache files. Columns:

- ``base_etag``/``base_version``: the remote version the local copy is based
  on; ``NULL`` means "did not exist in the bucket".
- ``dirty_gen`` / ``uploaded_gen``: a local change bumps ``dirty_gen``; an
  upload that sent generation *g* sets ``uploaded_gen = g``. The entry has a
  pending upload exactly when ``dirty_gen > uploaded_gen``.
- ``meta_only``: the pending change touches metadata only (self-copy suffices).
- ``complete``: the data file holds the whole content; ``ranges`` (JSON) lists
  the byte ranges present when it does not.
- ``error``/``attempts``/``next_attempt``: the reconciler's retry state.
- ``mpu_id``: no longer written; older versions kept a multipart upload id here
  (moved to ``multipart_uploads`` at start).
- ``rdev``: a device node's ``st_rdev`` (FIFOs, sockets and devices have no data file).
- ``copy_from``/``copy_etag``: a file renamed without its bytes being re-uploaded: its
  content is that object (by mount path and ETag) until the reconciler copies it to the
  entry's own key; the old object's tombstone waits for that copy. ``copy_meta``: the
  entry's attributes were not known when it was renamed (a file in a moved directory,
  never looked at, the endpoint away): the copy keeps the object's own metadata.
- ``settled``: 0 for a file this mount created where the bucket had nothing,
  until it is uploaded; an upload forced by ``sync`` or ``--fsync-upload``
  while the file is open for writing leaves it 0 until its normal write-back
  time after the last close (the delete rule of SPEC §6, docs/SEMANTICS.md).

``multipart_uploads``: every multipart upload id we started, recorded as soon
as CreateMultipartUpload answers (before the first part) and removed only after
CompleteMultipartUpload or a successful AbortMultipartUpload; a restart aborts
every row left. ``entries.mpu_id`` is the older form, moved here at start.

``tombstones``: paths whose remote object must be deleted (``kind`` says file
or directory marker), with the ETag the delete is conditional on. A tombstone
hides the path from listings until the delete is done.

Concurrency: a ``Journal`` is used only from the trio thread; each public
method is one transaction, so a method call is atomic with respect to other
tasks (there is no ``await`` inside). Durability: WAL with
``synchronous=NORMAL`` survives a process crash at every commit;
``make_durable()`` checkpoints with fsync for power-loss durability (fsync(2)).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import FsError
from ..keys import path_is_representable
from .creations import Creations
from .metacache import MetaCache
from .side_rows import Conflict, MultipartRecord, SavedRow, SideRows, Tombstone
from .state import ItemState, item_state

# the row types of the side tables are the journal's too
__all__ = ["Conflict", "Entry", "Journal", "MultipartRecord", "Tombstone", "check_entry_path", "now"]

log = logging.getLogger("mountsync.journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    base_etag TEXT,
    base_version TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    target TEXT,
    dirty_gen INTEGER NOT NULL DEFAULT 0,
    uploaded_gen INTEGER NOT NULL DEFAULT 0,
    meta_only INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    ranges TEXT,
    last_used REAL NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    mpu_id TEXT,
    settled INTEGER NOT NULL DEFAULT 1,
    rdev INTEGER NOT NULL DEFAULT 0,
    copy_from TEXT,
    copy_etag TEXT,
    copy_meta INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tombstones (
    path TEXT PRIMARY KEY,
    kind INTEGER NOT NULL,
    base_etag TEXT,
    created REAL NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    strategy TEXT NOT NULL,
    local_etag TEXT,
    remote_etag TEXT,
    local_to TEXT,
    remote_to TEXT,
    resolved INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS multipart_uploads (
    upload_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    entry_id INTEGER,
    created REAL NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass
class Entry(SavedRow):
    """One row of ``entries``. Mutate, then ``Journal.save``."""

    path: str
    kind: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    base_etag: str | None = None
    base_version: str | None = None
    target: str | None = None
    dirty_gen: int = 0
    uploaded_gen: int = 0
    meta_only: bool = False
    complete: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)
    last_used: float = 0.0
    error: str | None = None
    attempts: int = 0
    next_attempt: float = 0.0
    mpu_id: str | None = None
    settled: bool = True  # False: created here, not yet past its normal write-back time
    rdev: int = 0  # a device node's st_rdev
    copy_from: str | None = None  # renamed: its bytes are object (copy_from, copy_etag), not yet copied
    copy_etag: str | None = None
    copy_meta: bool = False  # the copy keeps the object's metadata (attributes not known here)
    id: int | None = None

    @property
    def pending(self) -> bool:
        return self.dirty_gen > self.uploaded_gen

    @property
    def state(self) -> ItemState:
        """The derived state from the persisted fields (no upload in flight assumed)."""
        return item_state(has_base=self.base_etag is not None, pending=self.pending, settled=self.settled)


def check_entry_path(path: str) -> None:
    """The journal boundary: every entry names a valid, non-empty key (SPEC §3). The
    root has no entry (its key would be empty), nor has a path with an empty, ``.``,
    ``..``, NUL or over-long segment. Raises FsError(EINVAL) and logs why, so the
    operation that would create such an entry fails instead of leaving it stuck."""
    if path and path_is_representable(path):
        return
    log.warning("refusing a cache entry for path %r: it does not name a valid object key "
                "(a bug: please report it)", path)
    raise FsError(errno.EINVAL, f"path {path!r} cannot be stored in the bucket")


_ENTRY_COLS = [f.name for f in fields(Entry) if f.name != "id"]


def _row_to_entry(row: sqlite3.Row) -> Entry:
    d = dict(row)
    d["ranges"] = [tuple(r) for r in json.loads(d["ranges"])] if d["ranges"] else []
    d["meta_only"] = bool(d["meta_only"])
    d["complete"] = bool(d["complete"])
    d["settled"] = bool(d["settled"])
    d["copy_meta"] = bool(d["copy_meta"])
    return Entry(**d)


class _Db:
    """The sqlite connection, with "disk full" turned into OSError(ENOSPC) so that a
    full cache disk reaches programs as ENOSPC, like any other full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    @contextlib.contextmanager
    def _disk_full_as_enospc() -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise OSError(errno.ENOSPC, "cache disk is full (journal)") from exc
            raise

    def execute(self, sql: str, params=()):
        with self._disk_full_as_enospc():
            return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        with self._disk_full_as_enospc():
            self.conn.executemany(sql, rows)

    def update_row(self, table: str, key_col: str, key: object, changes: dict[str, Any]) -> None:
        """``UPDATE table SET col = ?, ... WHERE key_col = key`` for the columns in ``changes``
        (table and column names come from this code, never from file or user data)."""
        sets = ",".join(f"{c} = ?" for c in changes)
        self.execute(f"UPDATE {table} SET {sets} WHERE {key_col} = ?", [*changes.values(), key])

    def executescript(self, sql: str) -> None:
        self.conn.executescript(sql)

    def close(self) -> None:
        self.conn.close()


class Journal(SideRows):
    """sqlite3-backed journal. Trio-thread only; every method is one transaction."""

    def __init__(self, path: str) -> None:
        self.path = path
        fresh = not os.path.exists(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if fresh:
            os.chmod(path, 0o600)
        conn.row_factory = sqlite3.Row
        self._db = _Db(conn)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        # journals written by earlier versions lack the newer columns
        have = {r[1] for r in self._db.execute("PRAGMA table_info(entries)")}
        for col, decl in (("rdev", "INTEGER NOT NULL DEFAULT 0"), ("copy_from", "TEXT"), ("copy_etag", "TEXT"),
                          ("copy_meta", "INTEGER NOT NULL DEFAULT 0")):
            if col not in have:
                self._db.execute(f"ALTER TABLE entries ADD COLUMN {col} {decl}")
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_copy_from ON entries(copy_from)"
                         " WHERE copy_from IS NOT NULL")
        self.object_meta = MetaCache(self._db)  # what HEAD said per object version (cache.metacache)
        self.created = Creations(self._db)  # the objects this cache dir created (cache.creations)

    def close(self) -> None:
        try:
            self.object_meta.flush()
        except (OSError, sqlite3.Error) as exc:  # a cache: the objects are HEADed again
            log.warning("the metadata cache's last rows were not saved: %s", exc)
        self._db.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Several methods as one transaction (all or nothing, also across a crash);
        nested uses join the outer one. No ``await`` inside: the journal is the trio
        thread's."""
        if self._db.conn.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def make_durable(self) -> None:
        """Force everything committed so far to stable storage."""
        self._db.execute("PRAGMA wal_checkpoint(FULL)")

    # ---------------------------------------------------------------- entries

    def get(self, path: str) -> Entry | None:
        row = self._db.execute("SELECT * FROM entries WHERE path = ?", (path,)).fetchone()
        return _row_to_entry(row) if row else None

    def get_by_id(self, entry_id: int) -> Entry | None:
        row = self._db.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return _row_to_entry(row) if row else None

    def save(self, e: Entry) -> Entry:
        """Insert or update ``e`` (by id); sets ``e.id`` on insert. ``e.path`` must be a
        valid key (``check_entry_path``)."""
        check_entry_path(e.path)
        values = [getattr(e, c) for c in _ENTRY_COLS]
        i = _ENTRY_COLS.index("ranges")
        values[i] = json.dumps(e.ranges) if e.ranges else None
        if e.id is None:
            cur = self._db.execute(
                f"INSERT INTO entries ({','.join(_ENTRY_COLS)}) VALUES ({','.join('?' * len(values))})",
                values,
            )
            e.id = cur.lastrowid
        else:
            self._db.update_row("entries", "id", e.id, dict(zip(_ENTRY_COLS, values, strict=True)))
        return e

    def update(self, entry_id: int, **changes) -> None:
        """Update a few columns of one entry."""
        if "path" in changes:
            check_entry_path(changes["path"])
        if "ranges" in changes:
            changes["ranges"] = json.dumps(changes["ranges"]) if changes["ranges"] else None
        self._db.update_row("entries", "id", entry_id, changes)

    def bump_dirty(self, entry_id: int, *, meta_only: bool = False) -> int:
        """Record a local change; returns the new dirty generation.

        A data change clears ``meta_only`` and ``copy_from`` (a data change implies the
        cache holds every byte); a metadata change keeps a pending data change a data
        change."""
        if meta_only:
            self._db.execute(
                "UPDATE entries SET meta_only = CASE WHEN dirty_gen > uploaded_gen THEN meta_only ELSE 1 END,"
                " dirty_gen = dirty_gen + 1, error = NULL, attempts = 0 WHERE id = ?",
                (entry_id,),
            )
        else:  # the bytes are all in the cache now: a pending rename no longer needs its source
            self._db.execute(
                "UPDATE entries SET meta_only = 0, dirty_gen = dirty_gen + 1, error = NULL, attempts = 0,"
                " copy_from = NULL, copy_etag = NULL, copy_meta = 0 WHERE id = ?",
                (entry_id,),
            )
        row = self._db.execute("SELECT dirty_gen FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return row[0] if row else 0

    def delete(self, entry_id: int) -> None:
        self._db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))

    def children(self, dir_path: str) -> list[Entry]:
        """Entries directly inside directory ``dir_path``."""
        if dir_path == "":
            rows = self._db.execute("SELECT * FROM entries WHERE path != '' AND instr(path, '/') = 0").fetchall()
        else:
            lo = dir_path + "/"
            rows = self._db.execute(
                "SELECT * FROM entries WHERE path >= ? AND path < ? AND instr(substr(path, ?), '/') = 0",
                (lo, dir_path + "0", len(lo) + 1),
            ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def under(self, dir_path: str) -> list[Entry]:
        """Entries strictly below ``dir_path`` (recursively)."""
        if dir_path == "":
            rows = self._db.execute("SELECT * FROM entries WHERE path != ''").fetchall()
        else:
            lo = dir_path + "/"
            hi = dir_path + "0"  # '0' sorts right after '/'
            rows = self._db.execute(
                "SELECT * FROM entries WHERE path >= ? AND path < ?", (lo, hi)
            ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def pending_child_dirs(self, dir_path: str) -> set[str]:
        """Names of the directories in ``dir_path`` with a pending entry somewhere below them
        (e.g. a moved directory without a marker, whose keys are not under its new name yet)."""
        prefix = dir_path + "/" if dir_path else ""
        rows = self._db.execute("SELECT path FROM entries WHERE dirty_gen > uploaded_gen AND substr(path, 1, ?) = ?",
                                (len(prefix), prefix)).fetchall()
        return {rel.split("/", 1)[0] for (p,) in rows if "/" in (rel := p[len(prefix):])}

    def pending(self) -> list[Entry]:
        rows = self._db.execute("SELECT * FROM entries WHERE dirty_gen > uploaded_gen").fetchall()
        return [_row_to_entry(r) for r in rows]

    def pending_ids(self) -> list[int]:
        """Ids of the entries with changes not yet uploaded (``pending`` without the rows)."""
        return [i for (i,) in self._db.execute("SELECT id FROM entries WHERE dirty_gen > uploaded_gen")]

    def pending_file_sizes(self) -> list[tuple[int, int]]:
        """(id, recorded size) of each pending regular file whose data is in the cache."""
        rows = self._db.execute("SELECT id, size FROM entries WHERE dirty_gen > uploaded_gen AND kind = ? "
                                "AND meta_only = 0", (stat.S_IFREG,))
        return [(i, size) for i, size in rows]

    def unsettled_ids(self) -> list[int]:
        """Ids of the entries not yet settled (``Entry.settled``)."""
        return [i for (i,) in self._db.execute("SELECT id FROM entries WHERE settled = 0")]

    def entry_ids(self) -> set[int]:
        """The id of every entry: one query, for start-up sweeps over many data files."""
        return {i for (i,) in self._db.execute("SELECT id FROM entries")}

    def with_multipart(self) -> list[Entry]:
        rows = self._db.execute("SELECT * FROM entries WHERE mpu_id IS NOT NULL").fetchall()
        return [_row_to_entry(r) for r in rows]

    def clean_cached(self) -> list[Entry]:
        """Clean entries holding data, least recently used first (eviction order)."""
        rows = self._db.execute(
            "SELECT * FROM entries WHERE dirty_gen <= uploaded_gen AND kind = ? ORDER BY last_used",
            (0o100000,),
        ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def rename_subtree(self, old: str, new: str) -> None:
        """Move every entry at or below ``old`` to the same place below ``new``."""
        check_entry_path(new)
        rows = self.under(old)
        target = self.get(old)
        moved = ([target] if target else []) + rows
        # two passes so that UNIQUE(path) never sees a transient clash
        for e in moved:
            self._db.execute("UPDATE entries SET path = ? WHERE id = ?", ("\x00tmp" + str(e.id), e.id))
        for e in moved:
            np = new + e.path[len(old):]
            self._db.execute("UPDATE entries SET path = ? WHERE id = ?", (np, e.id))

    def copy_pending_from(self, path: str, etag: str | None) -> int | None:
        """The id of an entry that still has to copy its bytes from object (``path``,
        ``etag``), if any: that object must not be deleted yet (a rename carried out in
        the background)."""
        row = self._db.execute("SELECT id FROM entries WHERE copy_from = ? AND copy_etag IS ? LIMIT 1",
                               (path, etag)).fetchone()
        return None if row is None else int(row[0])

    def copies_from_under(self, dir_path: str) -> list[Entry]:
        """Entries whose pending rename copies from an object below ``dir_path``."""
        rows = self._db.execute("SELECT * FROM entries WHERE copy_from IS NOT NULL AND substr(copy_from, 1, ?) = ?",
                                (len(dir_path) + 1, dir_path + "/")).fetchall()
        return [_row_to_entry(r) for r in rows]

    # ------------------------------------------------------------------- meta

    def get_meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


def now() -> float:
    return time.time()
