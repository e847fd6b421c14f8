"""Rename case: ``mv`` of a directory of uploaded files (issue: renames that survive outages).

One sample of one system, as in ``cases_io``: the files are put into a fresh bucket with
raw boto3 (8 threads), the mount lists them with their attributes (``ls -l``), then
``os.rename`` of the directory is timed until it returns, and (not native) until the
bucket holds every key under the new prefix and none under the old. mountsync is
mounted with ``--allow-delete`` (the others delete without asking).

``rename_offline``: mountsync only; the same ``mv`` while the endpoint refuses every
connection (the proxy blocks), then until the bucket is right once it lets them through.
"""

from __future__ import annotations

import os
import time

from bench.context import Ctx
from bench.systems import BenchError

Sample = dict[tuple[str, str], tuple[float, str | None]]


def _fill_native(root, names: list[str], block: bytes) -> None:
    (root / "dir").mkdir()
    for name in names:
        (root / name).write_bytes(block)


def _ls_l(path) -> None:
    for entry in os.scandir(path):
        entry.stat()


def _until_moved(ctx: Ctx, bucket: str, n: int) -> None:
    state = {"next": 0.0}

    def moved() -> bool:
        now = time.monotonic()
        if now < state["next"]:
            return False
        state["next"] = now + 0.25
        return ctx.admin.count(bucket, "moved/") >= n and ctx.admin.count(bucket, "dir/") == 0

    ctx.wait(moved, "the renamed keys in the bucket", interval=0.02)


def rename_dir(ctx: Ctx, system: str) -> Sample:
    n, block = ctx.sizes.rename_files, os.urandom(4096)
    names = [f"dir/f{i:05d}.bin" for i in range(n)]
    options = None
    if system == "mountsync":
        options = ["--write-back-delay", f"{ctx.systems[system].env.write_back_delay:g}", "--allow-delete"]
    bucket = "" if system == "native" else ctx.new_bucket()
    try:
        if bucket:
            ctx.raw.put_many(bucket, names, block)
        m = ctx.mount(system, bucket, options=options)
        if not bucket:
            _fill_native(m.path, names, block)
        _ls_l(m.path / "dir")
        t0 = time.perf_counter()
        os.rename(m.path / "dir", m.path / "moved")
        out: Sample = {("rename_call", system): (time.perf_counter() - t0, None)}
        if len(os.listdir(m.path / "moved")) != n:
            raise BenchError(f"{system}: the renamed directory does not list {n} files")
        if bucket:
            _until_moved(ctx, bucket, n)
            out[("rename_bucket", system)] = (time.perf_counter() - t0, None)
        ctx.unmount(m)
    finally:
        if bucket:
            ctx.admin.empty(bucket)
    return out


def rename_offline(ctx: Ctx, system: str) -> Sample:
    n, block = ctx.sizes.rename_files, os.urandom(4096)
    names = [f"dir/f{i:05d}.bin" for i in range(n)]
    bucket = ctx.new_bucket()
    options = ["--write-back-delay", f"{ctx.systems[system].env.write_back_delay:g}", "--allow-delete"]
    try:
        ctx.raw.put_many(bucket, names, block)
        m = ctx.mount(system, bucket, options=options)
        _ls_l(m.path / "dir")
        ctx.proxy.block()
        try:
            t0 = time.perf_counter()
            os.rename(m.path / "dir", m.path / "moved")
            t_call = time.perf_counter() - t0
        finally:
            ctx.proxy.unblock()
        t1 = time.perf_counter()
        _until_moved(ctx, bucket, n)
        out: Sample = {("rename_offline_call", system): (t_call, None),
                       ("rename_offline_bucket", system): (time.perf_counter() - t1, "from the endpoint's return")}
        ctx.unmount(m)
    finally:
        ctx.admin.empty(bucket)
    return out
