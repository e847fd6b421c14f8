"""``python -m bench`` (``make bench``): side-by-side benchmark, writes docs/benchmarks.md.

Starts a moto server on 127.0.0.1, fills the shared data (a big object, the
listing prefixes), then for each profile (loopback, 20 ms latency) puts a
counting/delaying proxy in front of it and runs every case group: for each
sample, each system in turn (fresh mount and cache dir). Each sample of each
system is bounded in time; a failure or overrun is recorded with its reason
and the run goes on. Results go to docs/bench/results.json, plots to
docs/bench/PROFILE.png, the report to docs/benchmarks.md.

Everything it starts (moto, mounts, proxy threads) is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

from bench import cases_meta
from bench.cases import Group, groups, select
from bench.context import Ctx, Sizes, bounded, make_git_repo, make_tar, repeat
from bench.proxy import DelayProxy
from bench.raw import Admin, Raw
from bench.report import plot, render_markdown
from bench.stats import Result
from bench.systems import ALL_SYSTEMS, BenchError, Env, versions

ROOT = Path(__file__).resolve().parent.parent
PROFILES = {"loopback": 0.0, "latency": 0.020}
WRITE_BACK_DELAY = 1.0
PEER_SYSTEMS = ("rclone", "s3fs")  # bounded by Sizes.peer_timeout per sample


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one sample (same cases); a few minutes")
    p.add_argument("--only", action="append", default=[], metavar="CASE",
                   help="run only this case group or row id (repeatable, or comma-separated)")
    p.add_argument("--profile", choices=["loopback", "latency", "both"], default="both")
    p.add_argument("--systems", default="native,raw,mountsync,rclone,s3fs",
                   help="comma-separated subset of native,raw,mountsync,rclone,s3fs")
    p.add_argument("--samples", type=int, default=None, help="samples per cell (median); default 3, quick 1")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--plots-dir", type=Path, default=None, help="default: bench/ beside --out")
    p.add_argument("--render-only", action="store_true", help="re-render --out from the saved results.json")
    p.add_argument("--keep-workdir", action="store_true")
    a = p.parse_args(argv)
    a.only = [x for item in a.only for x in item.split(",") if x]
    a.systems = [s for s in a.systems.split(",") if s]
    bad = [s for s in a.systems if s not in ("raw", *ALL_SYSTEMS)]
    if bad:
        p.error(f"unknown system {', '.join(bad)}")
    return a


def child_env(workdir: Path) -> dict:
    env = dict(os.environ)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        env.pop(k, None)
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "MOUNTSYNC_RUNTIME_DIR": str(workdir / "runtime")})
    (workdir / "runtime").mkdir(parents=True, exist_ok=True)
    return env


def start_moto(env: dict) -> tuple[subprocess.Popen, int]:
    import socket
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
                return proc, port
            except OSError:
                time.sleep(0.1)
        proc.kill()
        proc.wait(10)
    raise BenchError("the moto server did not start")


def machine() -> dict:
    cpu = "?"
    mem = "?"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        mem = f"{kb / 1048576:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {"cpu": f"{cpu}, {os.cpu_count()} cores", "memory": mem,
            "kernel": platform.release(), "os": _os_release(),
            "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def commit() -> str:
    try:
        c = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=20, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no",
                                "--", "mountsync"],
                               capture_output=True, text=True, timeout=20, check=False).stdout.strip()
        return c + (" (+ local changes to mountsync/)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def py_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("mountsync", "pyfuse3", "boto3", "moto"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


class Runner:
    def __init__(self, args: argparse.Namespace, sizes: Sizes, workdir: Path) -> None:
        self.args = args
        self.sizes = sizes
        self.workdir = workdir
        self.results: dict[tuple[str, str, str], Result] = {}
        self.env = child_env(workdir)

    def record(self, profile: str, row: str, system: str, unit: str, value: float | None = None,
               note: str | None = None, error: str | None = None) -> None:
        r = self.results.setdefault((profile, row, system), Result(profile, row, system, unit))
        if value is not None:
            r.samples.append(value)
        if note:
            r.note = note
        if error and r.error is None:
            r.error = error

    def fail(self, profile: str, group: Group, system: str, reason: str) -> None:
        print(f"  {system}: FAILED {reason}", flush=True)
        for row in group.rows:
            self.record(profile, row.id, system, row.unit, error=reason)

    def run_profile(self, profile: str, ctx_base: dict, chosen: list[Group]) -> None:
        proxy = DelayProxy(ctx_base["moto_port"], PROFILES[profile])
        pdir = self.workdir / profile
        pdir.mkdir(exist_ok=True)
        env = Env(proxy.endpoint, pdir, self.env, WRITE_BACK_DELAY)
        systems = {name: cls(env) for name, cls in ALL_SYSTEMS.items()}
        ctx = Ctx(profile=profile, sizes=self.sizes, systems=systems, raw=Raw(proxy.endpoint),
                  admin=ctx_base["admin"], proxy=proxy, workdir=pdir, blob=ctx_base["blob"],
                  data_bucket=ctx_base["data_bucket"], list_bucket=ctx_base["list_bucket"],
                  rss_bucket=ctx_base["rss_bucket"],
                  tar_archive=ctx_base["tar"], git_repo=ctx_base["git"])
        try:
            for group in chosen:
                if group.profiles and profile not in group.profiles:
                    continue
                units = {r.id: r.unit for r in group.rows}
                wanted = [s for s in group.systems if s in self.args.systems and s not in ctx_base["missing"]]
                for s in group.systems:
                    if s in ctx_base["missing"] and s in self.args.systems:
                        self.fail(profile, group, s, ctx_base["missing"][s])
                samples = min(self.sizes.samples, group.max_samples or self.sizes.samples)
                for i in range(samples):
                    print(f"[{profile}] {group.name} sample {i + 1}/{samples}", flush=True)
                    ctx.sample = i
                    if group.sample is None:
                        self._listing(ctx, group, wanted, units)
                        continue
                    for system in wanted:
                        if self.failed_before(profile, group, system):
                            print(f"  {system}: skipped (failed in an earlier sample)", flush=True)
                            continue
                        self._one(ctx, group, system, units)
        finally:
            ctx.kill_all()
            proxy.close()

    def failed(self, profile: str, group: Group) -> frozenset[tuple[str, str]]:
        """(row, system) cells of ``group`` in ``profile`` that already failed."""
        rows = {r.id for r in group.rows}
        return frozenset((row, system) for (p, row, system), r in self.results.items()
                         if p == profile and row in rows and r.error is not None)

    def failed_before(self, profile: str, group: Group, system: str) -> bool:
        """A failed cell stays failed (``Result.value``): more samples of that system would only cost time."""
        return any(s == system for _, s in self.failed(profile, group))

    def _one(self, ctx: Ctx, group: Group, system: str, units: dict[str, str]) -> None:
        t0 = time.monotonic()
        bound = group.timeout or (self.sizes.peer_timeout if system in PEER_SYSTEMS else self.sizes.timeout)
        ctx.deadline = t0 + bound
        try:
            out = bounded(lambda: group.sample(ctx, system), bound + 30, ctx.kill_all)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self.fail(ctx.profile, group, system, _reason(exc))
            return
        finally:
            ctx.kill_all()
            ctx.clean_samples()
        for (row, label), (value, note) in out.items():
            self.record(ctx.profile, row, label, units[row], value, note)
        print(f"  {system}: " + ", ".join(f"{row}/{label}={v:.3g}" for (row, label), (v, _) in out.items())
              + f"  ({time.monotonic() - t0:.1f} s)", flush=True)

    def _listing(self, ctx: Ctx, group: Group, systems: list[str], units: dict[str, str]) -> None:
        budget = self.sizes.timeout * max(1, len(systems))
        ctx.deadline = time.monotonic() + budget
        failed = self.failed(ctx.profile, group)
        systems = [s for s in systems if not all((r.id, s) in failed for r in group.rows)]
        row_errors: dict[tuple[str, str], str] = {}
        try:
            out, errors, row_errors = bounded(lambda: cases_meta.listing_all(ctx, systems, failed), budget + 30,
                                              ctx.kill_all)
        except Exception as exc:  # noqa: BLE001 - recorded
            out, errors = {}, {s: _reason(exc) for s in systems}
        finally:
            ctx.kill_all()
            ctx.clean_samples()
        for (row, label), (value, note) in out.items():
            self.record(ctx.profile, row, label, units[row], value, note)
        for (row, system), reason in row_errors.items():
            print(f"  {system}: {row} FAILED {reason}", flush=True)
            self.record(ctx.profile, row, system, units[row], error=reason)
        for system, reason in errors.items():
            self.fail(ctx.profile, group, system, reason)
        print("  " + ", ".join(f"{row}/{label}={v:.3g}" for (row, label), (v, _) in out.items()), flush=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if not isinstance(exc, BenchError) else text[:200]


def prepare(admin: Admin, sizes: Sizes, chosen: list[Group], workdir: Path) -> dict:
    """Shared data: the big object, the append base, the listing prefixes, the tar archive, the git repo."""
    names = {g.name for g in chosen}
    blob = os.urandom(sizes.big)
    data_bucket = admin.create_bucket("bench-data")
    list_bucket = admin.create_bucket("bench-list")
    # rss/ has a bucket of its own: moto reads every key of a bucket for each LIST page, so
    # 100,000 keys next to d2000/ would slow the `ls` group's listings (and raw's) tenfold
    rss_bucket = admin.create_bucket("bench-rss") if "rss" in names else list_bucket
    if "read" in names:
        admin.put_big(data_bucket, "big.bin", blob)
    if "random" in names:
        admin.put_big(data_bucket, "rand.bin", repeat(blob, sizes.rand_object))
    base = {"blob": blob, "data_bucket": data_bucket, "list_bucket": list_bucket, "rss_bucket": rss_bucket,
            "admin": admin,
            "tar": workdir / "none.tar", "git": workdir / "none"}
    if "rss_append" in names:
        admin.put_big(data_bucket, "base.bin", repeat(blob, sizes.append_base))
    if "ls" in names:
        for n in sizes.ls_counts:
            print(f"filling d{n}/ with {n:,} objects", flush=True)
            admin.fill(list_bucket, [f"d{n}/obj-{i:05d}" for i in range(n)], b"x")
    if "rss" in names:
        print(f"filling rss/ with {sizes.rss_list:,} objects", flush=True)
        admin.fill(rss_bucket, [f"rss/obj-{i:06d}" for i in range(sizes.rss_list)], b"x")
    if "tar" in names:
        base["tar"] = make_tar(workdir, sizes.tar_files)
    if "git" in names:
        base["git"] = make_git_repo(workdir, sizes.git_files, sizes.git_commits)
    return base


def write_report(args: argparse.Namespace, meta: dict, all_groups: list[Group], results: dict) -> None:
    plots_dir = args.plots_dir or args.out.parent / "bench"
    profiles = [p for p in PROFILES if any(k[0] == p for k in results)]
    plots: dict[str, str] = {}
    for p in profiles:
        png = plots_dir / f"{p}.png"
        if plot(p, all_groups, results, png):
            plots[p] = os.path.relpath(png, args.out.parent)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # the hand-written analysis beside the plots (docs/bench/analysis.md for docs/benchmarks.md)
    analysis_md = args.out.parent / "bench" / "analysis.md"
    analysis = analysis_md.read_text() if analysis_md.is_file() else ""
    args.out.write_text(render_markdown(meta, all_groups, results, profiles, plots, analysis))
    print(f"wrote {args.out}" + (f" and {', '.join(plots.values())}" if plots else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.samples:
        sizes = replace(sizes, samples=args.samples)
    all_groups = groups(sizes, WRITE_BACK_DELAY)
    try:
        chosen = select(all_groups, args.only)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    plots_dir = args.plots_dir or args.out.parent / "bench"
    results_json = plots_dir / "results.json"
    if args.render_only:
        saved = json.loads(results_json.read_text())
        results = {(r["profile"], r["case"], r["system"]): Result.from_json(r) for r in saved["results"]}
        write_report(args, saved["meta"], all_groups, results)
        return 0
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    workdir = Path(tempfile.mkdtemp(prefix="mountsync-bench-"))
    runner = Runner(args, sizes, workdir)
    started = time.monotonic()
    meta = {"kind": "Quick run (`--quick`)" if args.quick else "Full run",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(), "samples": sizes.samples, "machine": machine(),
            "sizes": ", ".join(f"{k}={v}" for k, v in asdict(sizes).items())}
    missing = {s: f"{ALL_SYSTEMS[s].program} is not installed" for s in ("rclone", "s3fs")
               if shutil.which(ALL_SYSTEMS[s].program) is None}
    moto = None
    try:
        moto, port = start_moto(runner.env)
        meta["versions"] = {**py_versions(), **versions(Env("", workdir, runner.env))}
        admin = Admin(f"http://127.0.0.1:{port}")
        base = prepare(admin, sizes, chosen, workdir)
        base.update({"moto_port": port, "missing": missing})
        for profile in profiles:
            runner.run_profile(profile, base, chosen)
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        meta["kind"] += ", stopped before the end (interrupted): groups not reached show as not measured"
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(10)
            except subprocess.TimeoutExpired:
                moto.kill()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["duration"] = f"{time.monotonic() - started:.0f} s"
    meta.setdefault("versions", py_versions())
    plots_dir.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps({"meta": meta, "results": [r.to_json() for r in runner.results.values()]},
                                       indent=1))
    write_report(args, meta, all_groups, runner.results)
    print(f"bench: done in {meta['duration']}", flush=True)
    return 0
