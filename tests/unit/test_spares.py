"""Spare data files (cache/spares.py): made ahead in a thread, renamed into place."""

from __future__ import annotations

import os

import trio
import trio.testing

from mountsync.cache.spares import SparePool


def test_take_moves_an_empty_private_file_into_place_and_reports_when_empty(tmp_path):
    pool = SparePool(str(tmp_path), target=4)
    pool._names.extend(pool._make(2))
    dst = tmp_path / "a"
    assert pool.take(str(dst))
    st = os.stat(dst)
    assert st.st_size == 0 and st.st_mode & 0o777 == 0o600
    assert pool.take(str(tmp_path / "b"))
    assert not pool.take(str(tmp_path / "c"))  # none left: the caller creates the file
    assert not (tmp_path / "c").exists()
    assert os.listdir(pool.dir) == []


def test_spares_left_by_an_earlier_run_are_reused(tmp_path):
    first = SparePool(str(tmp_path), target=4)
    first._make(3)
    again = SparePool(str(tmp_path), target=4)
    assert len(again) == 3
    assert again.take(str(tmp_path / "x"))


def test_serve_refills_when_half_are_taken(tmp_path):
    async def main():
        pool = SparePool(str(tmp_path), target=8)
        async with trio.open_nursery() as n:
            n.start_soon(pool.serve)
            while len(pool) < 8:
                await trio.sleep(0.01)
            for i in range(5):
                assert pool.take(str(tmp_path / f"f{i}"))
            while len(pool) < 8:  # fewer than half were left: refilled
                await trio.sleep(0.01)
            assert len(os.listdir(pool.dir)) == 8
            n.cancel_scope.cancel()

    trio.run(main)
