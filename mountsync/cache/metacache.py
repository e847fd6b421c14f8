"""The persistent metadata cache: what HEAD said about an object version.

One row per object key (table ``object_meta`` in the journal's database): the
version it describes (ETag and LastModified to the second: a metadata-only
change by another writer, a self-copy with new ``x-amz-meta-*``, keeps the ETag
of a single-part object but not its LastModified), the attribute metadata
(``mode``/``uid``/``gid``/``mtime``/``mtime-ns``, as stored in the bucket, so
the mount options' defaults still apply when it is read) and, for a symlink
object, its target. A listing that shows the same version needs no HEAD, in
this run or after a remount; a row for another version is simply not used.
A directory's row is its marker's (ETag "" when it has none): its parent's
listing does not show the marker, so a lookup takes the row as it is and the
directory's own listing checks it (a marker changed since: HEAD again).
Rows for keys that are gone are dropped oldest first once the table holds
more than ``MAX_ROWS``.

Used from the trio thread only (through the ``Journal``'s connection). Rows are
written ``FLUSH_ROWS`` at a time, in one transaction (a listing of many never-seen
objects puts one row per HEAD; a transaction each was a third of the trio thread's
time); rows not yet written are kept in ``_unwritten``, which every read consults
first, and written by ``flush`` (``Journal.close`` calls it). A crash loses at most
those rows: a cache, so the objects are HEADed again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS object_meta (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    modified INTEGER NOT NULL,
    meta TEXT NOT NULL,
    target TEXT
);
"""

ATTR_KEYS = ("mode", "uid", "gid", "mtime", "mtime-ns")
MAX_ROWS = 200_000
_TRIM_EVERY = 1000
FLUSH_ROWS = 256


@dataclass(frozen=True)
class CachedMeta:
    metadata: dict[str, str]  # the attribute keys of the object's user metadata
    target: str | None  # a symlink object's target


def _second(last_modified: float) -> int:
    return math.floor(last_modified)


class MetaCache:
    def __init__(self, db: Any) -> None:
        self._db = db  # cache.journal._Db
        self._db.executescript(SCHEMA)
        self._writes = 0
        self._unwritten: dict[str, tuple[str, int, str, str | None]] = {}  # key → (etag, modified, meta, target)

    def _row(self, key: str) -> tuple[str, int, str, str | None] | None:
        row = self._unwritten.get(key)
        if row is not None:
            return row
        found = self._db.execute("SELECT etag, modified, meta, target FROM object_meta WHERE key = ?",
                                 (key,)).fetchone()
        return None if found is None else (found[0], found[1], found[2], found[3])

    def get(self, key: str, etag: str, last_modified: float) -> CachedMeta | None:
        """What HEAD said about version (``etag``, ``last_modified``) of ``key``, if known."""
        row = self._row(key)
        if row is None or row[0] != etag or row[1] != _second(last_modified):
            return None
        return CachedMeta(json.loads(row[2]), row[3])

    def latest(self, key: str) -> tuple[str, int, CachedMeta] | None:
        """The last version of ``key`` seen (ETag, LastModified second, metadata), whatever
        it is: for a directory marker, which its parent's listing does not show."""
        row = self._row(key)
        return None if row is None else (row[0], row[1], CachedMeta(json.loads(row[2]), row[3]))

    def matches(self, key: str, etag: str, last_modified: float) -> bool:
        latest = self.latest(key)
        return latest is not None and latest[0] == etag and latest[1] == _second(last_modified)

    def put(self, key: str, etag: str, last_modified: float, metadata: dict[str, str] | None,
            target: str | None = None) -> None:
        meta = {k: v for k, v in (metadata or {}).items() if k in ATTR_KEYS}
        self._unwritten.pop(key, None)  # a newer row goes to the end (the trim drops the oldest)
        self._unwritten[key] = (etag, _second(last_modified), json.dumps(meta), target)
        if len(self._unwritten) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the rows put since the last flush: one transaction, or part of the
        caller's when one is open (``Journal.atomic``)."""
        if not self._unwritten:
            return
        rows = [(key, *row) for key, row in self._unwritten.items()]
        own = not self._db.conn.in_transaction
        if own:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO object_meta (key, etag, modified, meta, target)"
                                 " VALUES (?, ?, ?, ?, ?)", rows)
            before, self._writes = self._writes, self._writes + len(rows)
            if before // _TRIM_EVERY != self._writes // _TRIM_EVERY:
                self._db.execute("DELETE FROM object_meta WHERE rowid <= (SELECT max(rowid) FROM object_meta) - ?",
                                 (MAX_ROWS,))
        except BaseException:
            if own:
                self._db.execute("ROLLBACK")
            raise
        if own:
            self._db.execute("COMMIT")
        self._unwritten.clear()
