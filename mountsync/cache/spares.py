"""Empty data files made ahead of time: creating a file then costs a rename on the
trio thread (0.02 ms on this machine's ext4) instead of a create (0.24 ms), a third
of the daemon's time in a run of 2,000 small creates.

``SparePool`` keeps up to ``target`` empty 0600 files in ``spare/`` below the cache
dir. ``serve`` (a task of the stack) makes them in a worker thread whenever fewer
than half are left; ``take(dst)`` renames one to ``dst`` (which must not exist), or
returns False when none is left (the caller then creates the file itself). Spare
files hold no data and have no journal row: ones left by an earlier run are reused,
and deleting them is always safe.

Invariants: every name in ``_names`` was an empty file of this pool when listed or
made; ``take`` and ``serve`` run on the trio thread, ``_make`` only in a worker
thread and only touches new names (``<pid>-<n>``, never listed before).
"""

from __future__ import annotations

import itertools
import os

import trio

TARGET = 256


class SparePool:
    def __init__(self, root: str, target: int = TARGET) -> None:
        self.dir = os.path.join(root, "spare")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.target = target
        self._names: list[str] = sorted(os.listdir(self.dir))  # an earlier run's, reused
        self._seq = itertools.count()
        self._low = trio.Event()

    def __len__(self) -> int:
        return len(self._names)

    def take(self, dst: str) -> bool:
        """Move a spare empty file to ``dst`` (absent); False when none is left."""
        while self._names:
            name = self._names.pop()
            try:
                os.rename(os.path.join(self.dir, name), dst)
            except FileNotFoundError:
                continue  # removed behind our back: try the next
            if len(self._names) < self.target // 2:
                self._low.set()
            return True
        self._low.set()
        return False

    async def serve(self) -> None:
        """Keep the pool filled until cancelled."""
        while True:
            missing = self.target - len(self._names)
            if missing > 0:
                try:
                    self._names.extend(await trio.to_thread.run_sync(self._make, missing))
                except OSError:
                    pass  # disk full or the like: creates make their own files meanwhile
            self._low = trio.Event()
            if len(self._names) >= self.target // 2:
                await self._low.wait()
            else:
                await trio.sleep(1.0)  # could not make enough: try again later

    def _make(self, n: int) -> list[str]:
        made = []
        pid = os.getpid()
        for _ in range(n):
            name = f"{pid}-{next(self._seq)}"
            fd = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.close(fd)
            made.append(name)
        return made
