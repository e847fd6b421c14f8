"""The objects this cache dir created: the own-creations rule of SPEC §6.

Without ``--allow-delete`` the mount never deletes or moves an object it did not
create. It may remove or rename one it did create, as long as nobody else has
changed it since: the object still has the ETag our last write gave it. One row
per object key (table ``created_objects`` in the journal's database) holds that
ETag. Rows are written only by the mount's own successful writes:

- an upload that created the key (conditional on "no object there") or that
  replaced a version recorded here (conditional on its ETag): the key is ours,
  with the new ETag (``after_write``);
- an upload that replaced a version not recorded here (another writer's, or one
  that existed before the mount): the key is not ours, whatever its content
  (the row is dropped);
- a server-side copy to a key that held nothing, or held a version of ours (a
  rename): the new key is ours;
- a successful delete of the key: the row goes.

A write whose answer was lost (the connection broke after the request was sent) may
have landed or not. Its would-be ETag is kept in ``unanswered_writes`` (``unanswered``)
until a later write of ours to the key is answered or the key is deleted, so that a
delete refused because the key holds another version can tell our own landed write
(``was_unanswered``: delete it) from another writer's change (a conflict).

So "ours" is a property of a *version*, never of a name: another writer's
version at the same key has another ETag and is protected. The rows live in the
cache dir's journal, so they survive restarts and remounts with the same cache
dir, and a fresh cache dir has none (it protects every object).

Used from the trio thread only (through the ``Journal``'s connection); each
method is one statement, so atomic with respect to other tasks.
"""

from __future__ import annotations

from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS created_objects (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unanswered_writes (
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (key, etag)
);
"""


def ours_after_write(replaced: str | None, replaced_was_ours: bool) -> bool:
    """Is the version our write leaves at a key ours? Yes when the key held nothing
    (``replaced`` None) or held a version of ours; no when it held anyone else's."""
    return replaced is None or replaced_was_ours


class Creations:
    def __init__(self, db: Any) -> None:
        self._db = db  # cache.journal._Db
        self._db.executescript(SCHEMA)

    def ours(self, key: str, etag: str | None) -> bool:
        """Does ``key`` hold, as far as we know, version ``etag`` that this cache dir created?"""
        if etag is None:
            return False
        row = self._db.execute("SELECT etag FROM created_objects WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] == etag

    def after_write(self, key: str, replaced: str | None, etag: str) -> bool:
        """Our write (PUT, multipart, copy) replaced version ``replaced`` (None: nothing)
        of ``key`` with ``etag``: record whether the result is ours, and return it."""
        mine = ours_after_write(replaced, self.ours(key, replaced))
        self._db.execute("DELETE FROM unanswered_writes WHERE key = ?", (key,))
        if mine:
            self._db.execute("INSERT OR REPLACE INTO created_objects (key, etag) VALUES (?, ?)", (key, etag))
        else:
            self.forget(key)
        return mine

    def forget(self, key: str) -> None:
        """The key was deleted (or holds a version that is not ours)."""
        self._db.execute("DELETE FROM created_objects WHERE key = ?", (key,))
        self._db.execute("DELETE FROM unanswered_writes WHERE key = ?", (key,))

    def unanswered(self, key: str, etag: str) -> None:
        """Our write of a version with ``etag`` to ``key`` got no answer: it may have landed."""
        self._db.execute("INSERT OR IGNORE INTO unanswered_writes (key, etag) VALUES (?, ?)", (key, etag))

    def was_unanswered(self, key: str, etag: str) -> bool:
        """Is ``etag`` the version of a write of ours to ``key`` whose answer was lost?"""
        return self._db.execute("SELECT 1 FROM unanswered_writes WHERE key = ? AND etag = ?",
                                (key, etag)).fetchone() is not None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM created_objects").fetchone()[0])
