"""What one small-file create costs (performance issue: counts, never times).

A program creating files in a directory it listed does, per file, what the kernel
asks: a lookup of the new name (negative), create, write, flush, release. None of
that needs the bucket while the listing is fresh, and the journal records each file
in a bounded number of commits with no fsync (``fsync`` is the durability point,
docs/DURABILITY.md)."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat

import pytest
import trio

from mountsync.backend.memory import MemoryStore
from mountsync.core.nodes import NoEntry
from mountsync.errors import FsError
from tests.support.rig import run_rig, wait_until


async def _create_like_a_program(rig, parent: int, name: str, data: bytes) -> None:
    """The requests the kernel sends for ``open(name, "wb").write(data); close()``."""
    with pytest.raises((NoEntry, FsError)) as ei:
        await rig.fs.lookup(parent, name)
    assert ei.value.errno == errno.ENOENT
    fh, _ = await rig.fs.create(parent, name, stat.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0, 0)
    assert await rig.fs.write(fh, 0, data) == len(data)
    await rig.fs.flush(fh)
    await rig.fs.release(fh)


def test_creating_1000_files_in_a_listed_directory_makes_no_request_per_file(tmp_path):
    store = MemoryStore("b")
    store.put("d/existing", b"x")

    async def body(rig):
        assert await rig.listdir("d") == ["existing"]
        await rig.stat("d/existing")  # its metadata (HEADed after the listing) is known now
        parent = await rig.ino("d")
        store.stats.reset()
        for i in range(1000):
            await _create_like_a_program(rig, parent, f"f{i:04d}", b"y" * 4096)
        requests = store.stats.snapshot()["requests"]
        # at most a re-listing of the directory, should its listing expire meanwhile
        assert sum(requests.values()) <= 2, requests
        assert set(requests) <= {"list"}, requests
        assert len(await rig.listdir("d")) == 1001

    run_rig(body, tmp_path, store, write_back_delay=3600, metadata_ttl=3600)


class _JournalWrites:
    """Counts the journal's write transactions (each autocommitted write statement, or an
    explicit COMMIT) through sqlite's trace callback."""

    def __init__(self) -> None:
        self.writes = 0
        self.in_tx = False

    def __call__(self, sql: str) -> None:
        s = sql.lstrip().upper()
        if s.startswith("BEGIN"):
            self.in_tx = True
        elif s.startswith(("COMMIT", "END")):
            self.in_tx = False
            self.writes += 1
        elif s.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")) and not self.in_tx:
            self.writes += 1


def test_create_write_close_costs_two_journal_commits_and_no_fsync(tmp_path, monkeypatch):
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    async def body(rig):
        await rig.mkdir("d")
        parent = await rig.ino("d")
        await _create_like_a_program(rig, parent, "warm-up", b"z")
        counter = _JournalWrites()
        conn: sqlite3.Connection = rig.stack.journal._db.conn
        conn.set_trace_callback(counter)
        monkeypatch.setattr(os, "fsync", counting_fsync)
        try:
            for i in range(50):
                await _create_like_a_program(rig, parent, f"f{i}", b"y" * 4096)
        finally:
            conn.set_trace_callback(None)
            monkeypatch.setattr(os, "fsync", real_fsync)
        # the entry inserted at create (pending before anyone can write), and size/mtime at close
        assert counter.writes <= 2 * 50, counter.writes
        assert fsyncs == []
        assert await rig.read_file("d/f7") == b"y" * 4096

    run_rig(body, tmp_path, write_back_delay=3600, metadata_ttl=3600)


def test_creates_take_spare_data_files_instead_of_creating_them(tmp_path, monkeypatch):
    """With the spare pool filled, a create renames an empty file into place: no O_CREAT of
    a data file on the trio thread (cache/spares.py)."""
    creates: list[str] = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        if (flags & os.O_CREAT and trio.lowlevel.in_trio_run() and "/data/" in str(path)
                and not os.path.lexists(path)):  # a file made here, on the trio thread
            creates.append(str(path))
        return real_open(path, flags, *args, **kwargs)

    async def body(rig):
        await rig.mkdir("d")
        parent = await rig.ino("d")
        spares = rig.stack.items.spares
        assert await wait_until(lambda: len(spares) >= spares.target // 2, timeout=60)
        monkeypatch.setattr(os, "open", recording_open)
        try:
            for i in range(50):
                await _create_like_a_program(rig, parent, f"f{i}", b"y" * 100)
        finally:
            monkeypatch.setattr(os, "open", real_open)
        assert creates == []
        assert await rig.read_file("d/f49") == b"y" * 100
        assert (await rig.sync()).ok

    run_rig(body, tmp_path, write_back_delay=3600, metadata_ttl=3600)
