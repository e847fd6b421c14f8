"""Kernel cache invalidation: a refused invalidation is a cache hint lost, never an error.

CI showed pyfuse3's own notify thread logging "ERROR pyfuse3: Failed to submit
invalidate_entry request" (with a traceback) when the kernel refused an entry
invalidation with EINVAL (kernel 6.18), racing a directory rename. The adapter
now makes the calls itself, in a worker thread, and decides what a refusal means."""

from __future__ import annotations

import errno
import logging
import threading

import pytest
import trio

from mountsync.fuse import adapter


class FakeKernel:
    """Records invalidations; refuses the names listed in ``refuse`` with their errno."""

    def __init__(self, refuse: dict[bytes, int] | None = None) -> None:
        self.refuse = refuse or {}
        self.entries: list[tuple[int, bytes]] = []
        self.inodes: list[int] = []
        self.threads: set[str] = set()

    def invalidate_entry(self, parent: int, name: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        if name in self.refuse:
            code = self.refuse[name]
            raise OSError(code, "fuse_lowlevel_notify_inval_entry returned: " + errno.errorcode[code])
        self.entries.append((parent, name))

    def invalidate_inode(self, ino: int) -> None:
        self.threads.add(threading.current_thread().name)
        self.inodes.append(ino)


def run_invalidations(kernel: FakeKernel, items: list[tuple[str, tuple]]) -> None:
    async def main() -> None:
        send, receive = trio.open_memory_channel[tuple[str, tuple]](100)
        for item in items:
            send.send_nowait(item)
        send.close()
        await adapter.invalidate_kernel_caches(
            receive, entry=kernel.invalidate_entry, inode=kernel.invalidate_inode
        )

    trio.run(main)


REFUSALS = [errno.ENOENT, errno.ENOTDIR, errno.EBUSY, errno.ENOTEMPTY, errno.EINVAL, errno.ENODEV]


@pytest.mark.parametrize("code", REFUSALS)
def test_refused_entry_invalidation_logs_no_error_and_the_rest_go_on(code, caplog):
    kernel = FakeKernel(refuse={b"a": code})
    caplog.set_level(logging.DEBUG)
    run_invalidations(
        kernel,
        [("entry", (2, "a")), ("entry", (2, "b")), ("inode", (7,)), ("entry", (1, "c"))],
    )
    assert kernel.entries == [(2, b"b"), (1, b"c")]
    assert kernel.inodes == [7]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.name == "pyfuse3"]


def test_invalidations_run_off_the_trio_thread():
    """The kernel call may block until a related request is answered: never on the loop."""
    kernel = FakeKernel()
    run_invalidations(kernel, [("entry", (1, "x")), ("inode", (3,))])
    assert kernel.entries == [(1, b"x")] and kernel.inodes == [3]
    assert threading.main_thread().name not in kernel.threads


def test_an_unexpected_refusal_is_logged_once_at_debug(caplog):
    kernel = FakeKernel(refuse={b"a": errno.EIO})
    caplog.set_level(logging.DEBUG, logger="mountsync.fuse")
    run_invalidations(kernel, [("entry", (2, "a"))])
    lines = [r for r in caplog.records if "invalidation" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG
    assert "EIO" in lines[0].getMessage()
