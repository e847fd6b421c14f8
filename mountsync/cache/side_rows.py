"""The journal's side tables: tombstones (deletes to carry out), conflicts (where each
version went) and multipart uploads (ids to complete or abort). Mixed into ``Journal``,
whose connection (``_db``) they use; same rules: trio thread only, each method one
transaction (or part of ``Journal.atomic``)."""

from __future__ import annotations

import stat
import time
from dataclasses import dataclass, fields
from typing import Any


class SavedRow:
    """``saved_id``: the id of a row the journal holds. ``id`` is None only on a
    dataclass built in memory and not saved yet (``Journal.save`` /
    ``add_conflict`` set it); every row read from the journal has one, so asking
    a never-saved row for it is a bug and raises, rather than letting None reach
    an id column."""

    id: int | None
    path: str

    @property
    def saved_id(self) -> int:
        if self.id is None:
            raise ValueError(f"{type(self).__name__} for {self.path!r} has not been saved to the journal")
        return self.id


@dataclass
class Tombstone:
    path: str
    kind: int
    base_etag: str | None
    created: float
    error: str | None = None
    attempts: int = 0
    next_attempt: float = 0.0


@dataclass
class MultipartRecord:
    """One row of ``multipart_uploads``: an upload id to complete or abort."""

    upload_id: str
    key: str
    entry_id: int | None
    created: float
    error: str | None = None
    attempts: int = 0


@dataclass
class Conflict(SavedRow):
    """One conflict and where each version went (``bucket:KEY``, ``recovery:FILE``,
    ``pending``, ``discarded``...). ``kind``: ``modified`` (both changed),
    ``deleted-remotely`` (remote delete under a local edit), ``delete-refused``
    (a local delete of a key that changed remotely)."""

    time: float
    path: str
    kind: str
    strategy: str
    local_etag: str | None = None
    remote_etag: str | None = None
    local_to: str | None = None
    remote_to: str | None = None
    resolved: int = 0
    id: int | None = None


_TOMB_COLS = [f.name for f in fields(Tombstone)]


class SideRows:
    """Tombstones, conflicts and multipart upload rows (see the module docstring)."""

    _db: Any  # the journal's connection wrapper (``journal._Db``)

    # ------------------------------------------------------------- tombstones

    def add_tombstone(self, t: Tombstone) -> None:
        values = [getattr(t, c) for c in _TOMB_COLS]
        self._db.execute(
            f"INSERT OR REPLACE INTO tombstones ({','.join(_TOMB_COLS)}) VALUES ({','.join('?' * len(values))})",
            values,
        )

    def tombstone(self, path: str) -> Tombstone | None:
        row = self._db.execute("SELECT * FROM tombstones WHERE path = ?", (path,)).fetchone()
        return Tombstone(**dict(row)) if row else None

    def tombstones(self) -> list[Tombstone]:
        return [Tombstone(**dict(r)) for r in self._db.execute("SELECT * FROM tombstones").fetchall()]

    def tombstones_under(self, dir_path: str) -> list[Tombstone]:
        if dir_path == "":
            return self.tombstones()
        rows = self._db.execute(
            "SELECT * FROM tombstones WHERE path >= ? AND path < ?", (dir_path + "/", dir_path + "0")
        ).fetchall()
        return [Tombstone(**dict(r)) for r in rows]

    def update_tombstone(self, path: str, **changes) -> None:
        self._db.update_row("tombstones", "path", path, changes)

    def take_tombstone(self, path: str, kind: int) -> str | None:
        """Something of ``kind`` takes ``path`` where a delete is pending. A tombstone for the
        same key (a file's, or a directory's marker) is taken over: that object is replaced,
        not deleted; returns the ETag it was to delete. One for the other key (a directory
        marker under a file's new name, or the reverse) stays, and None is returned."""
        t = self.tombstone(path)
        if t is None or (t.kind == stat.S_IFDIR) != (kind == stat.S_IFDIR):
            return None
        self.remove_tombstone(path)
        return t.base_etag

    def remove_tombstone(self, path: str) -> None:
        self._db.execute("DELETE FROM tombstones WHERE path = ?", (path,))

    # -------------------------------------------------------------- conflicts

    def add_conflict(self, c: Conflict) -> int:
        cols = [f.name for f in fields(Conflict) if f.name != "id"]
        cur = self._db.execute(
            f"INSERT INTO conflicts ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
            [getattr(c, k) for k in cols],
        )
        c.id = cur.lastrowid
        return c.saved_id

    def update_conflict(self, conflict_id: int, **changes) -> None:
        self._db.update_row("conflicts", "id", conflict_id, changes)

    def conflicts(self) -> list[Conflict]:
        rows = self._db.execute("SELECT * FROM conflicts ORDER BY id").fetchall()
        return [Conflict(**dict(r)) for r in rows]

    def open_conflict(self, path: str) -> Conflict | None:
        row = self._db.execute(
            "SELECT * FROM conflicts WHERE path = ? AND resolved = 0 ORDER BY id DESC LIMIT 1", (path,)
        ).fetchone()
        return Conflict(**dict(row)) if row else None

    # ------------------------------------------------------- multipart uploads

    def add_multipart(self, upload_id: str, key: str, entry_id: int | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO multipart_uploads (upload_id, key, entry_id, created) VALUES (?, ?, ?, ?)",
            (upload_id, key, entry_id, time.time()),
        )

    def multipart_upload(self, upload_id: str) -> MultipartRecord | None:
        row = self._db.execute("SELECT * FROM multipart_uploads WHERE upload_id = ?", (upload_id,)).fetchone()
        return MultipartRecord(**dict(row)) if row else None

    def multipart_uploads(self) -> list[MultipartRecord]:
        rows = self._db.execute("SELECT * FROM multipart_uploads ORDER BY created").fetchall()
        return [MultipartRecord(**dict(r)) for r in rows]

    def update_multipart(self, upload_id: str, **changes) -> None:
        self._db.update_row("multipart_uploads", "upload_id", upload_id, changes)

    def remove_multipart(self, upload_id: str) -> None:
        self._db.execute("DELETE FROM multipart_uploads WHERE upload_id = ?", (upload_id,))
