"""A FileSystem + Reconciler on a MemoryStore, without FUSE, for core tests.

``run_rig(fn, **config)`` runs ``await fn(rig)`` inside trio with the
reconciler running in the background, and returns its result. ``rig.restart()``
simulates a daemon restart on the same cache dir (the journal and data files
survive; in-memory state does not).

Simulated time: ``run_rig(fn, tmp_path, mock_clock=True)`` runs under trio's
``MockClock(autojump_threshold=0)``: ``trio.sleep`` and the reconciler's
write-back delays cost no real time, the clock jumps to the next deadline as
soon as every task is blocked. Store calls and snapshot copies run in worker
threads; while one works, the clock may jump past any deadline. So a test under
the mock clock waits for states, never for a time: ``wait_until`` and
``rig.settled()`` poll against a real-time deadline, and a test that calls
``rig.sync()`` or reads through a fetch timeout stays on the real clock (their
timeouts are trio deadlines a jump would fire while a thread is still working).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import replace

import trio
import trio.testing

from mountsync.backend.memory import MemoryStore
from mountsync.config import MountConfig
from mountsync.core.filesystem import ROOT_INO, SetAttr
from mountsync.errors import FsError
from mountsync.stack import Stack


class Rig:
    def __init__(self, config: MountConfig, store, nursery) -> None:
        self.config = config
        self.store = store
        self.nursery = nursery
        self._cancel = None
        self.stack: Stack | None = None

    async def start(self) -> None:
        self.stack = Stack.open(self.config, self.store)
        self._cancel = trio.CancelScope()

        stopped = self._stopped = trio.Event()

        async def bg(scope=self._cancel, stack=self.stack):
            try:
                with scope:
                    await stack.run_background()
            finally:
                stopped.set()

        self.nursery.start_soon(bg)
        await self.stack.recovered.wait()

    def crash(self) -> None:
        """Cancel everything the daemon runs, as a crash would, without waiting for it
        (``restart`` then waits for the background task and starts again)."""
        self._cancel.cancel()

    async def restart(self, **changes) -> None:
        """Stop without draining (a crash as far as the bucket is concerned) and start again."""
        self._cancel.cancel()
        # a worker thread (snapshot copy, store call) may still be finishing: let the
        # background task exit before the journal is closed under it
        await self._stopped.wait()
        self.stack.close()
        if changes:
            self.config = replace(self.config, **changes)
        await self.start()

    @property
    def fs(self):
        return self.stack.fs

    async def sync(self, timeout: float = 30):
        return await self.stack.reconciler.sync(timeout)

    # --- path helpers (like a program using the mount)
    async def ino(self, path: str) -> int:
        return await self.fs.resolve(path)

    async def parent_and_name(self, path: str) -> tuple[int, str]:
        parent, _, name = path.rpartition("/")
        return await self.ino(parent), name

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        p, name = await self.parent_and_name(path)
        fh, _attr = await self.fs.create(p, name, stat.S_IFREG | mode, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0, 0)
        await self.fs.write(fh, 0, data)
        await self.fs.release(fh)

    async def read_file(self, path: str) -> bytes:
        fh, _ = await self.fs.open(await self.ino(path), os.O_RDONLY)
        try:
            attr = await self.fs.getattr(await self.ino(path))
            return await self.fs.read(fh, 0, attr.size + 1)
        finally:
            await self.fs.release(fh)

    async def mkdir(self, path: str) -> None:
        p, name = await self.parent_and_name(path)
        await self.fs.mkdir(p, name, 0o755, 0, 0)

    async def unlink(self, path: str) -> None:
        p, name = await self.parent_and_name(path)
        await self.fs.unlink(p, name)

    async def rmdir(self, path: str) -> None:
        p, name = await self.parent_and_name(path)
        await self.fs.rmdir(p, name)

    async def rename(self, old: str, new: str, flags: int = 0) -> None:
        p1, n1 = await self.parent_and_name(old)
        p2, n2 = await self.parent_and_name(new)
        await self.fs.rename(p1, n1, p2, n2, flags)

    async def listdir(self, path: str = "") -> list[str]:
        dh = await self.fs.opendir(await self.ino(path))
        try:
            return [name for name, _a, _n in await self.fs.readdir(dh, 0)]
        finally:
            self.fs.releasedir(dh)

    async def chmod(self, path: str, mode: int) -> None:
        await self.fs.setattr(await self.ino(path), SetAttr(mode=mode))

    async def truncate(self, path: str, size: int) -> None:
        await self.fs.setattr(await self.ino(path), SetAttr(size=size))

    async def stat(self, path: str):
        return await self.fs.getattr(await self.ino(path))

    async def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        fh, _keep = await self.fs.open(await self.ino(path), flags)
        return fh

    async def write_at(self, path: str, offset: int, data: bytes, flags: int = os.O_WRONLY) -> None:
        fh = await self.open(path, flags)
        try:
            assert await self.fs.write(fh, offset, data) == len(data)
        finally:
            await self.fs.release(fh)

    async def symlink(self, path: str, target: str) -> None:
        p, name = await self.parent_and_name(path)
        await self.fs.symlink(p, name, target, 0, 0)

    async def readlink(self, path: str) -> str:
        return await self.fs.readlink(await self.ino(path))

    async def exists(self, path: str) -> bool:
        try:
            await self.ino(path)
        except FsError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def status(self) -> dict:
        return self.stack.reconciler.status()

    async def settled(self, timeout: float = 30.0) -> bool:
        """Wait until the reconciler has nothing in flight (an upload or delete it started has
        finished); real-time deadline, so it holds under the mock clock too."""
        return await wait_until(lambda: not self.stack.reconciler.inflight, timeout)


async def wait_until(pred, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``pred()`` on the trio loop until it is true or ``timeout`` real seconds pass.

    The deadline is real time (not ``trio.current_time()``): under the mock clock,
    simulated time races ahead while a worker thread works.
    """
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        await trio.sleep(interval)


def make_config(tmp_path, **kw) -> MountConfig:
    base = {"bucket": "b", "mountpoint": str(tmp_path / "mnt"), "cache_dir": str(tmp_path / "cache"),
            "write_back_delay": 0.0, "metadata_ttl": 0.0, "uid": 0, "gid": 0, "conditional_writes": "yes"}
    base.update(kw)
    return MountConfig(**base).validate()


def run_rig(fn, tmp_path, store=None, *, mock_clock: bool | trio.testing.MockClock = False, **kw):
    """``await fn(rig)`` in a new trio run; ``mock_clock=True``: simulated time (see the module doc);
    a ``MockClock`` instance: that clock (e.g. one that moves only when the test jumps it)."""
    store = store if store is not None else MemoryStore("b")
    config = make_config(tmp_path, **kw)

    async def main():
        rig = None
        try:
            async with trio.open_nursery() as nursery:
                rig = Rig(config, store, nursery)
                await rig.start()
                result = await fn(rig)
                nursery.cancel_scope.cancel()
            return result
        finally:
            # closed only once every background task has exited (none still uses the journal)
            if rig is not None and rig.stack is not None:
                rig.stack.close()

    if isinstance(mock_clock, trio.testing.MockClock):
        clock: trio.testing.MockClock | None = mock_clock
    else:
        clock = trio.testing.MockClock(autojump_threshold=0) if mock_clock else None
    return trio.run(main, clock=clock)


__all__ = ["Rig", "run_rig", "make_config", "wait_until", "ROOT_INO"]


async def expect_errno(code: int, coro) -> FsError:
    """Await ``coro``; it must raise an FsError with errno ``code`` (returned)."""
    try:
        await coro
    except FsError as exc:
        assert exc.errno == code, exc
        return exc
    raise AssertionError(f"expected errno {code}, but the call succeeded")
