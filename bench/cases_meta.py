"""Metadata and daemon cases: ``ls -l`` cold/warm, remount with pending uploads, peak RSS.

Same contract as ``bench.cases_io``: one sample of one system, returning
``{(row_id, system_label): (value, note)}``. The listing case mounts the
systems one after the other but waits the "10 s later" only once for all of
them (``listing_all``), so the wait does not multiply by the number of peers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bench.context import Ctx
from bench.systems import BenchError, Mounted, is_mounted, pid_alive, wait_until

Sample = dict[tuple[str, str], tuple[float, str | None]]
Errors = dict[tuple[str, str], str]  # (row, system) -> why that cell has no value


class ListingOverran(BenchError):
    """One ``ls -l`` ran past its bound (the listing was killed)."""


def ls_rows(counts: tuple[int, ...]) -> list[str]:
    return [f"ls_{kind}_{n}" for n in counts for kind in ("cold", "warm", "warm10")]


def _ls(ctx: Ctx, path: Path, n: int, bound: float | None = None) -> float:
    """Seconds ``ls -l path`` takes; BenchError if it fails, lists other than ``n`` or overruns ``bound``."""
    limit = ctx.remaining() if bound is None else min(bound, ctx.remaining())
    t0 = time.perf_counter()
    try:
        r = subprocess.run(["ls", "-l", str(path)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise ListingOverran(f"`ls -l` overran {limit:.0f} s") from None
    t = time.perf_counter() - t0
    if r.returncode != 0:
        raise BenchError(f"ls -l exited {r.returncode}: {r.stderr.strip()[:120]}")
    got = len(r.stdout.splitlines()) - 1  # the "total" line
    if got != n:
        raise BenchError(f"ls -l listed {got} of {n} entries")
    return t


def make_native_listing(ctx: Ctx) -> Path:
    root = ctx.workdir / "native-list"
    for n in ctx.sizes.ls_counts:
        d = root / f"d{n}"
        if not d.exists():
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"obj-{i:05d}").write_bytes(b"x")
    return root


def listing_all(ctx: Ctx, systems: list[str],
                failed: frozenset[tuple[str, str]] = frozenset()) -> tuple[Sample, dict[str, str], Errors]:
    """One sample of every system: cold, warm, then (after one shared wait) warm again.

    Each ``ls -l`` is bounded by ``sizes.listing_timeout``; one that overruns fails
    its (row, system) only and the system goes on with its next listing. Cells in
    ``failed`` (rows of systems that failed in an earlier sample) are not listed
    again: a failed cell stays failed. Returns the values, per system the error
    that stopped it (its later rows are skipped), and the rows that failed alone.
    """
    out: Sample = {}
    errors: dict[str, str] = {}
    row_errors: Errors = {}
    counts = ctx.sizes.ls_counts
    mounts: dict[str, Mounted | Path] = {}
    if "raw" in systems:
        try:
            for n in counts:
                t_list, keys = ctx.raw.list_pass(ctx.list_bucket, f"d{n}/")
                if len(keys) != n:
                    raise BenchError(f"LIST returned {len(keys)} of {n} keys")
                out[(f"ls_cold_{n}", "raw/LIST")] = (t_list, None)
                if n == ctx.sizes.target_listing:  # HEADs of the bigger one: minutes a sample
                    out[(f"ls_cold_{n}", "raw/LIST+HEADs")] = (ctx.raw.list_and_heads(ctx.list_bucket, f"d{n}/"),
                                                               None)
        except Exception as exc:  # noqa: BLE001 - recorded
            errors["raw"] = str(exc) or type(exc).__name__
    fs_systems = [s for s in systems if s != "raw"]
    try:
        for kind in ("cold", "warm", "warm10"):
            if kind == "warm10" and any(s not in errors for s in fs_systems):
                time.sleep(min(ctx.sizes.warm_wait, ctx.remaining()))
            for system in fs_systems:
                if system in errors:
                    continue
                try:
                    if system not in mounts:
                        if system == "native":
                            mounts[system] = make_native_listing(ctx)
                        else:
                            mounts[system] = ctx.mount(system, ctx.list_bucket)
                    m = mounts[system]
                    root = m if isinstance(m, Path) else m.path
                    for n in counts:
                        row = f"ls_{kind}_{n}"
                        if (row, system) in failed or (row, system) in row_errors:
                            continue
                        try:
                            out[(row, system)] = (_ls(ctx, root / f"d{n}", n, ctx.sizes.listing_timeout), None)
                        except ListingOverran as exc:
                            if ctx.remaining() <= 0:
                                raise
                            row_errors[(row, system)] = str(exc)
                except Exception as exc:  # noqa: BLE001 - recorded
                    errors[system] = str(exc) or type(exc).__name__
    finally:
        for system, m in mounts.items():
            if isinstance(m, Mounted):
                try:
                    ctx.unmount(m)
                except Exception as exc:  # noqa: BLE001 - recorded
                    errors.setdefault(system, f"unmount: {exc}")
    return out, errors, row_errors


def remount_pending(ctx: Ctx, system: str) -> Sample:
    """Leave N uploads pending in the cache dir, then time a remount with that cache dir.

    mountsync: the proxy refuses connections while the files are written and
    ``unmount --timeout 2`` gives up (exit 3, uploads kept in the cache).
    rclone: ``--vfs-write-back 1h`` and the same refusing proxy, then ``fusermount3 -u``
    (SIGKILL if it has not exited within 30 s). Then the proxy lets everything
    through and the same cache dir is mounted again.
    """
    n = ctx.sizes.pending
    bucket = ctx.new_bucket()
    cache_dir = ctx.new_dir(f"{system}-cache")
    mnt = ctx.new_dir(f"{system}-mnt")
    block = os.urandom(1024)
    try:
        if system == "mountsync":
            m = ctx.mount(system, bucket, cache_dir=cache_dir, mnt=mnt)
            ctx.proxy.block()
            try:
                _create(ctx, m.path, n, block)
                r = ctx.systems[system].cli("unmount", str(mnt), "--timeout", "2",  # type: ignore[attr-defined]
                                            timeout=60, check=False)
                ctx.active.remove(m)
                if r.returncode not in (0, 3):
                    m.kill()
                    raise BenchError(f"unmount with pending uploads exited {r.returncode}: {r.stderr.strip()[:120]}")
                if m.pid is not None:
                    wait_until(lambda: not pid_alive(m.pid), 30, "the daemon to exit")
            finally:
                ctx.proxy.unblock()
        else:
            m = ctx.mount(system, bucket, cache_dir=cache_dir, mnt=mnt, options=["--vfs-write-back", "1h"])
            _create(ctx, m.path, n, block)
            ctx.proxy.block()
            try:
                # a clean unmount: rclone keeps what it has not uploaded in its cache dir
                subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, timeout=30, check=False)
                if m.pid is not None:
                    try:
                        wait_until(lambda: not pid_alive(m.pid), 30, "rclone to exit")
                    except BenchError:
                        os.kill(m.pid, signal.SIGKILL)
                        wait_until(lambda: not pid_alive(m.pid), 30, "rclone to exit")
                ctx.active.remove(m)
                if is_mounted(mnt):
                    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, timeout=30,
                                   check=False)
            finally:
                ctx.proxy.unblock()
        already = ctx.admin.count(bucket, "pending/")
        if already >= n:
            raise BenchError(f"all {n} files were uploaded before the remount: nothing pending")
        t0 = time.perf_counter()
        m2 = ctx.mount(system, bucket, cache_dir=cache_dir, mnt=mnt)
        os.listdir(m2.path)
        t_usable = time.perf_counter() - t0
        try:
            visible = len(os.listdir(m2.path / "pending"))
        except FileNotFoundError:
            visible = 0
        vis_note = f"{visible:,} of {n - already:,} pending files visible once usable"
        if ctx.sample >= ctx.sizes.upload_wait_samples:
            # "until all uploaded" is timed in the first samples only (Sizes.upload_wait_samples)
            m2.kill()
            ctx.active.remove(m2)
            return {("remount_usable", system): (t_usable, vis_note)}
        state = {"next": 0.0}

        def all_there() -> bool:
            now = time.monotonic()
            if now < state["next"]:
                return False
            state["next"] = now + 0.5
            return ctx.admin.count(bucket, "pending/") >= n

        ctx.wait(all_there, "the pending uploads", interval=0.05)
        t_up = time.perf_counter() - t0
        ctx.unmount(m2)
    finally:
        ctx.admin.empty(bucket)
    note = f"{n - already:,} pending ({already:,} went up before the remount)" if already else None
    return {("remount_usable", system): (t_usable, vis_note), ("remount_uploaded", system): (t_up, note)}


def _create(ctx: Ctx, root: Path, n: int, block: bytes) -> None:
    (root / "pending").mkdir()
    for i in range(n):
        with open(root / "pending" / f"f{i:05d}.dat", "wb") as f:
            f.write(block)
        if i % 64 == 0:
            ctx.check_time("creating files")


def rss_list(ctx: Ctx, system: str) -> Sample:
    """Peak RSS of the daemon after ``ls -l`` of ``rss_list`` entries."""
    m = ctx.mount(system, ctx.rss_bucket)
    try:
        _ls(ctx, m.path / "rss", ctx.sizes.rss_list)
        peak = m.rss_peak()
    finally:
        ctx.unmount(m)
    if peak is None:
        raise BenchError("no daemon pid to read VmHWM from")
    return {("rss_list", system): (peak, None)}


def rss_append(ctx: Ctx, system: str) -> Sample:
    """Peak RSS of the daemon while appending ``append_size`` to an ``append_base`` object,
    until the whole object is back in the bucket."""
    bucket = ctx.new_bucket()
    try:
        ctx.admin.s3.copy_object(Bucket=bucket, Key="base.bin",
                                 CopySource={"Bucket": ctx.data_bucket, "Key": "base.bin"})
        m = ctx.mount(system, bucket)
        add = ctx.blob[:ctx.sizes.append_size]
        with open(m.path / "base.bin", "ab", buffering=0) as f:
            view = memoryview(add)
            f.writelines(view[off:off + 1024 * 1024] for off in range(0, len(add), 1024 * 1024))
        want = ctx.sizes.append_base + len(add)
        ctx.wait(lambda: ctx.admin.size(bucket, "base.bin") == want, "the appended object in the bucket",
                 interval=0.2)
        peak = m.rss_peak()
        ctx.unmount(m)
        if peak is None:
            raise BenchError("no daemon pid to read VmHWM from")
        return {("rss_append", system): (peak, None)}
    finally:
        ctx.admin.empty(bucket)

