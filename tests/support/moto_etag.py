"""A fix for a moto race that the tests would otherwise take for a mountsync bug.

moto 5.x computes an object's ETag lazily (``FakeKey.etag``) by seeking its value
buffer to 0 and reading it in 16 MiB blocks, without the key's lock. Two requests
that need the ETag of one new object at once (the PUT's own response and a LIST or
HEAD running meanwhile) share the buffer's file position, and one of them can hash
only the first 16 MiB. The wrong ETag is then cached for good: the object holds all
its bytes, but HEAD, LIST and If-Match use the ETag of its first 16 MiB, so the next
conditional write fails as if another writer had replaced it. Shown by
``tests/backend/test_moto_etag.py`` (a PUT of 30 MB with LISTs running: about one
round in five got the ETag of 16 MiB of its bytes, on this machine, before the fix).

``fix_etag_race()`` computes the ETag under the key's own lock (the lock moto's
``value`` getter takes for the same buffer). Applied in the moto processes the tests
start: ``python -m tests.support.moto_etag`` runs moto's server with the fix, and
the in-process server applies it before starting.
"""

from __future__ import annotations

import sys


def fix_etag_race() -> None:
    from moto.s3 import models

    unlocked = models.FakeKey.etag
    if getattr(unlocked.fget, "_mountsync_locked", False):
        return
    getter = unlocked.fget
    assert getter is not None

    def etag(self) -> str:
        with self.lock:  # the key's buffer lock (FakeKey.value takes it too)
            return getter(self)

    locked = property(etag)
    locked.fget._mountsync_locked = True  # type: ignore[attr-defined]
    models.FakeKey.etag = locked  # type: ignore[method-assign]


if __name__ == "__main__":
    fix_etag_race()
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
