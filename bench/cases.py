"""The catalogue: case groups (what ``--only`` selects), their table rows, and the targets.

A group is measured together (one mount gives several rows, e.g. "until close"
and "until in the bucket"). Row titles are filled with the run's sizes.
Targets apply to mountsync's value; see ``bench.stats.Target``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import cases_io, cases_meta, cases_rename
from bench.context import Sizes
from bench.stats import MiB, Ref, Target, fmt_size

PEERS = ("mountsync", "rclone", "s3fs")


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    unit: str = "s"
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    rows: tuple[Row, ...]
    systems: tuple[str, ...]
    sample: Callable | None  # (ctx, system) -> Sample; None: the listing group (run together)
    profiles: tuple[str, ...] = ()  # where it runs (empty: every profile)
    max_samples: int | None = None  # fewer samples than the run's (memory peaks: one)
    timeout: float | None = None  # a sample's bound when it differs from the run's (Sizes.timeout)


def _n(x: int) -> str:
    return f"{x:,}"


def groups(sizes: Sizes, write_back_delay: float = 1.0) -> list[Group]:
    big, wbd = fmt_size(sizes.big), write_back_delay
    n_small = _n(sizes.small_count)
    ls_rows: list[Row] = []
    for n in sizes.ls_counts:
        cold_targets: list[Target] = []
        if n == sizes.target_listing:
            heads = Ref(f"ls_cold_{n}", "raw/LIST+HEADs", 2)
            cold_targets = [Target("≤ 2× raw LIST + 16 concurrent HEADs", refs=(heads,)),
                            Target("< 3 s", limit=3.0, strict=True, profiles=("latency",))]
        warm = (Target("≤ 0.1 s", limit=0.1),)
        ls_rows += [
            Row(f"ls_cold_{n}", f"`ls -l` of {_n(n)} objects never seen (cold)", targets=tuple(cold_targets)),
            Row(f"ls_warm_{n}", f"… warm (second listing) of {_n(n)}", targets=warm),
            Row(f"ls_warm10_{n}", f"… warm again {sizes.warm_wait:g} s later, {_n(n)}", targets=warm),
        ]
    return [
        Group("write", (
            Row("write_close", f"write {big} until close",
                targets=(Target("≤ 2× native", refs=(Ref("write_close", "native", 2),)),)),
            Row("write_bucket", f"write {big} until the object is whole in the bucket",
                targets=(Target(f"≤ 1.3× best raw (PUT or multipart) + {wbd:g} s write-back delay",
                                refs=(Ref("write_bucket", "raw/PUT", 1.3, wbd),
                                      Ref("write_bucket", "raw/multipart", 1.3, wbd))),)),
        ), ("native", "raw", *PEERS), cases_io.write_big),
        Group("read", (
            Row("seq_read", f"cold sequential read of a {big} object", targets=(
                Target("≤ 1.5× one raw GET", refs=(Ref("seq_read", "raw/GET", 1.5),), profiles=("loopback",)),
                Target("≤ 1.5× raw parallel ranged GETs", refs=(Ref("seq_read", "raw/ranged", 1.5),),
                       profiles=("latency",)),
            )),
        ), ("native", "raw", *PEERS), cases_io.seq_read),
        Group("small", (
            Row("small_close", f"create {n_small} × {fmt_size(sizes.small_size)} files until the last close",
                targets=(Target("≤ 1 s", limit=1.0),)),
            Row("small_bucket", f"… until all {n_small} are in the bucket",
                targets=(Target(f"≤ 1.3× raw 8-thread PUTs + {wbd:g} s write-back delay",
                                refs=(Ref("small_bucket", "raw/8 threads", 1.3, wbd),)),)),
        ), ("native", "raw", *PEERS), cases_io.small_files),
        Group("ls", tuple(ls_rows), ("native", "raw", *PEERS), None),
        Group("random", (
            Row("rand_time",
                f"{sizes.random_reads} random 4 KiB reads of a {fmt_size(sizes.rand_object)} object: time"),
            Row("rand_bytes", "… bytes fetched (at the proxy)", unit="B",
                targets=(Target("≤ 16 MiB", limit=16 * MiB),)),
        ), ("native", "raw", *PEERS), cases_io.random_reads),
        Group("remount", (
            Row("remount_usable", f"remount with {_n(sizes.pending)} pending uploads: until usable",
                targets=(Target("< 2 s", limit=2.0, strict=True),)),
            Row("remount_uploaded", f"… until all {_n(sizes.pending)} are uploaded"),
        ), ("mountsync", "rclone"), cases_meta.remount_pending),
        # memory peaks, not times, and memory does not depend on latency: loopback, one sample.
        # The listing HEADs every one of the 100,000 objects, and moto serves about 250 HEADs a
        # second (one new connection each): 7-10 minutes a system, so mountsync only (the
        # target is its own) with a bound of its own
        Group("rss", (
            Row("rss_list", f"daemon peak RSS after `ls -l` of {_n(sizes.rss_list)} objects", unit="B",
                targets=(Target("< 200 MiB", limit=200 * MiB, strict=True),)),
        ), ("mountsync",), cases_meta.rss_list, profiles=("loopback",), max_samples=1,
            timeout=max(sizes.timeout, sizes.rss_list * 0.018)),
        Group("rss_append", (
            Row("rss_append", f"daemon peak RSS appending {fmt_size(sizes.append_size)} to a "
                              f"{fmt_size(sizes.append_base)} object", unit="B",
                targets=(Target("< 200 MiB", limit=200 * MiB, strict=True),)),
        ), PEERS, cases_meta.rss_append, profiles=("loopback",), max_samples=1),
        Group("rename", (
            Row("rename_call", f"`mv` of a directory of {_n(sizes.rename_files)} uploaded files: until mv returns",
                targets=(Target("≤ 0.1 s", limit=0.1),)),
            Row("rename_bucket", "… until the bucket holds only the new keys"),
        ), ("native", *PEERS), cases_rename.rename_dir),
        Group("rename_offline", (
            Row("rename_offline_call", "… the same `mv` with the endpoint refusing connections: until mv returns",
                targets=(Target("≤ 0.1 s", limit=0.1),)),
            Row("rename_offline_bucket", "… then until the bucket holds only the new keys (from the endpoint's "
                                         "return)"),
        ), ("mountsync",), cases_rename.rename_offline),
        Group("tar", (
            Row("tar_x", f"`tar -x` of a {_n(sizes.tar_files)}-file archive (until tar exits)"),
        ), ("native", *PEERS), cases_io.tar_x),
        Group("git", (
            Row("git_clone", f"`git clone` of a {_n(sizes.git_files)}-file, {sizes.git_commits}-commit "
                             "repository (until git exits)"),
        ), ("native", *PEERS), cases_io.git_clone),
    ]


def select(all_groups: list[Group], only: list[str]) -> list[Group]:
    """Groups named in ``only`` (a group name, or any of its row ids); all when ``only`` is empty."""
    if not only:
        return all_groups
    chosen = [g for g in all_groups if g.name in only or any(r.id in only for r in g.rows)]
    unknown = [o for o in only if not any(g.name == o or any(r.id == o for r in g.rows) for g in all_groups)]
    if unknown:
        names = ", ".join(g.name for g in all_groups)
        raise ValueError(f"unknown case {', '.join(unknown)}: choose among {names} (or a row id)")
    return chosen
