"""Data cases: big write, sequential read, small files, random reads, tar -x, git clone.

Each function takes one sample of one system and returns
``{(row_id, system_label): (value, note)}``; raw boto3 has several labels
(``raw/put``, ``raw/multipart``, ...) and the table shows them in the raw column.
A failure raises (``BenchError`` or anything else) and the runner records it.
Every sample uses a fresh bucket or a fresh mount and cache dir.
"""

from __future__ import annotations

import os
import subprocess
import time

from bench.context import Ctx, drop_page_cache, read_file, repeat, write_file
from bench.raw import random_offsets
from bench.systems import BenchError, run

Sample = dict[tuple[str, str], tuple[float, str | None]]


def write_big(ctx: Ctx, system: str) -> Sample:
    size = ctx.sizes.big
    if system == "raw":
        bucket = ctx.new_bucket()
        try:
            put = ctx.raw.put(bucket, "big.bin", ctx.blob)
            mpu = ctx.raw.put_multipart(bucket, "big2.bin", ctx.blob)
        finally:
            ctx.admin.empty(bucket)
        return {("write_bucket", "raw/PUT"): (put, None), ("write_bucket", "raw/multipart"): (mpu, None)}
    if system == "native":
        m = ctx.mount("native", "")
        t0 = time.perf_counter()
        write_file(m.path / "big.bin", ctx.blob)
        t = time.perf_counter() - t0
        ctx.unmount(m)
        return {("write_close", "native"): (t, None)}
    bucket = ctx.new_bucket()
    try:
        m = ctx.mount(system, bucket)
        t0 = time.perf_counter()
        write_file(m.path / "big.bin", ctx.blob)
        t_close = time.perf_counter() - t0
        ctx.wait(lambda: ctx.admin.size(bucket, "big.bin") == size, "the object in the bucket")
        t_bucket = time.perf_counter() - t0
        ctx.unmount(m)
    finally:
        ctx.admin.empty(bucket)
    return {("write_close", system): (t_close, None), ("write_bucket", system): (t_bucket, None)}


def seq_read(ctx: Ctx, system: str) -> Sample:
    size = ctx.sizes.big
    if system == "raw":
        get = ctx.raw.get(ctx.data_bucket, "big.bin")
        ranged = ctx.raw.get_ranged(ctx.data_bucket, "big.bin", size)
        return {("seq_read", "raw/GET"): (get, None), ("seq_read", "raw/ranged"): (ranged, None)}
    if system == "native":
        m = ctx.mount("native", "")
        path = m.path / "big.bin"
        write_file(path, ctx.blob)
        drop_page_cache(path)
        t0 = time.perf_counter()
        n = read_file(path)
        t = time.perf_counter() - t0
        ctx.unmount(m)
    else:
        m = ctx.mount(system, ctx.data_bucket)
        t0 = time.perf_counter()
        n = read_file(m.path / "big.bin")
        t = time.perf_counter() - t0
        ctx.unmount(m)
    if n != size:
        raise BenchError(f"read {n} bytes of {size}")
    return {("seq_read", system): (t, None)}


def small_files(ctx: Ctx, system: str) -> Sample:
    n, block = ctx.sizes.small_count, os.urandom(ctx.sizes.small_size)
    names = [f"small/f{i:05d}.dat" for i in range(n)]
    if system == "raw":
        bucket = ctx.new_bucket()
        try:
            t = ctx.raw.put_many(bucket, names, block)
        finally:
            ctx.admin.empty(bucket)
        return {("small_bucket", "raw/8 threads"): (t, None)}
    bucket = "" if system == "native" else ctx.new_bucket()
    try:
        m = ctx.mount(system, bucket)
        (m.path / "small").mkdir()
        t0 = time.perf_counter()
        for name in names:
            with open(m.path / name, "wb") as f:
                f.write(block)
            if not (len(name) % 64):
                ctx.check_time("creating files")
        t_close = time.perf_counter() - t0
        out = {("small_close", system): (t_close, None)}
        if system != "native":
            state = {"next": 0.0}

            def all_there() -> bool:
                now = time.monotonic()
                if now < state["next"]:
                    return False
                state["next"] = now + 0.25  # a listing of 2,000 keys is not free: poll 4× a second
                return ctx.admin.count(bucket, "small/") >= n

            ctx.wait(all_there, "all files in the bucket", interval=0.02)
            out[("small_bucket", system)] = (time.perf_counter() - t0, None)
        ctx.unmount(m)
    finally:
        if bucket:
            ctx.admin.empty(bucket)
    return out


def random_reads(ctx: Ctx, system: str) -> Sample:
    size = ctx.sizes.rand_object
    offsets = random_offsets(size, ctx.sizes.random_reads)
    if system == "raw":
        before, _ = ctx.proxy.counters()
        t = ctx.raw.random_reads(ctx.data_bucket, "rand.bin", size, offsets)
        after, _ = ctx.proxy.counters()
        return {("rand_time", "raw/GET 4 KiB"): (t, None), ("rand_bytes", "raw/GET 4 KiB"): (after - before, None)}
    if system == "native":
        m = ctx.mount("native", "")
        path = m.path / "rand.bin"
        write_file(path, repeat(ctx.blob, size))
        drop_page_cache(path)
    else:
        m = ctx.mount(system, ctx.data_bucket)
        path = m.path / "rand.bin"
    before, reqs_before = ctx.proxy.counters()
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in offsets:
            if len(os.pread(fd, 4096, off)) != 4096:
                raise BenchError(f"short read at {off}")
    finally:
        os.close(fd)
    t = time.perf_counter() - t0
    after, reqs_after = ctx.proxy.counters()
    note = None
    if system == "mountsync":
        backend = ctx.systems["mountsync"].status(m).get("backend", {})  # type: ignore[attr-defined]
        note = f"status bytes_down {backend.get('bytes_down', '?')}"
    ctx.unmount(m)
    out: Sample = {("rand_time", system): (t, None)}
    if system != "native":
        out[("rand_bytes", system)] = (after - before, note or f"{reqs_after - reqs_before} requests")
    return out


def tar_x(ctx: Ctx, system: str) -> Sample:
    bucket = "" if system == "native" else ctx.new_bucket()
    try:
        m = ctx.mount(system, bucket)
        t0 = time.perf_counter()
        run(["tar", "-xf", str(ctx.tar_archive), "-C", str(m.path)], timeout=ctx.remaining())
        t = time.perf_counter() - t0
        got = sum(len(files) for _, _, files in os.walk(m.path / "tree"))
        ctx.unmount(m)
    finally:
        if bucket:
            ctx.admin.empty(bucket)
    if got != ctx.sizes.tar_files:
        raise BenchError(f"{got} of {ctx.sizes.tar_files} files after tar -x")
    return {("tar_x", system): (t, None)}


def git_clone(ctx: Ctx, system: str) -> Sample:
    bucket = "" if system == "native" else ctx.new_bucket()
    try:
        m = ctx.mount(system, bucket)
        t0 = time.perf_counter()
        run(["git", "clone", "-q", "--no-hardlinks", f"file://{ctx.git_repo}", str(m.path / "repo")],
            timeout=ctx.remaining())
        t = time.perf_counter() - t0
        r = subprocess.run(["git", "-C", str(m.path / "repo"), "status", "--porcelain"], capture_output=True,
                           text=True, timeout=ctx.remaining(), check=False)
        ctx.unmount(m)
    finally:
        if bucket:
            ctx.admin.empty(bucket)
    if r.returncode != 0 or r.stdout.strip():
        raise BenchError(f"git status after clone: exit {r.returncode}, {len(r.stdout.splitlines())} changes")
    return {("git_clone", system): (t, None)}
