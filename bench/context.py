"""What a case sample needs: sizes, the systems, the raw client, the proxy, fixtures, bounds.

``Ctx`` is created once per profile by ``bench.run``. Samples run one at a
time (no locking needed for ``active``); a sample that overruns its time is
stopped by killing every mount in ``active`` (which makes blocked file
operations fail) while the runner waits for its thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.proxy import DelayProxy
from bench.raw import Admin, Raw
from bench.stats import MiB
from bench.systems import BenchError, Mounted, System

KiB = 1024


@dataclass(frozen=True)
class Sizes:
    big: int = 256 * MiB
    small_count: int = 2000
    small_size: int = 4 * KiB
    ls_counts: tuple[int, ...] = (2000, 10000)
    random_reads: int = 200
    rand_object: int = 256 * MiB
    pending: int = 10000
    rss_list: int = 100000
    append_base: int = 1024 * MiB
    append_size: int = 64 * MiB
    tar_files: int = 2000
    git_files: int = 1500
    git_commits: int = 30
    rename_files: int = 1000
    warm_wait: float = 10.0
    samples: int = 3
    timeout: float = 600.0  # one sample of one system
    # one sample of a peer (rclone, s3fs) and one `ls -l` of any system: the peers are
    # references, not subjects, and their slowest cases (s3fs creating files, rclone
    # listing with 20 ms latency) would otherwise make one full run longer than a session
    peer_timeout: float = 90.0
    listing_timeout: float = 90.0
    # the remount case waits for all its pending uploads (3-4 minutes of mountsync
    # uploading) in this many samples only; the later samples time "until usable"
    upload_wait_samples: int = 1

    @property
    def target_listing(self) -> int:
        """The listing the issue's cold `ls -l` targets are on (the smaller one): raw's
        LIST + HEADs, their reference, is measured on it only."""
        return min(self.ls_counts)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(big=16 * MiB, small_count=50, ls_counts=(100, 500), rand_object=32 * MiB, pending=100,
                   rss_list=2000, append_base=32 * MiB, append_size=4 * MiB, tar_files=50, git_files=40,
                   git_commits=3, rename_files=100, warm_wait=10.0, samples=1, timeout=20.0,
                   peer_timeout=20.0, listing_timeout=20.0)


@dataclass
class Ctx:
    profile: str
    sizes: Sizes
    systems: dict[str, System]
    raw: Raw
    admin: Admin
    proxy: DelayProxy
    workdir: Path
    blob: bytes  # sizes.big random bytes
    data_bucket: str  # "big.bin" (sizes.big), "rand.bin" (sizes.rand_object), "base.bin" (sizes.append_base)
    list_bucket: str  # holds d{n}/ for each ls count
    rss_bucket: str  # holds rss/ (sizes.rss_list objects)
    tar_archive: Path
    git_repo: Path
    deadline: float = 0.0
    sample: int = 0  # which sample of the group is running (0-based; set by the runner)
    active: list[Mounted] = field(default_factory=list)
    _n: int = 0

    # ------------------------------------------------------------ per sample

    def remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def check_time(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise BenchError(f"timed out ({what})")

    def new_dir(self, stem: str) -> Path:
        self._n += 1
        return self.workdir / "samples" / f"{stem}-{self._n}"

    def new_bucket(self) -> str:
        return self.admin.create_bucket(f"b-{uuid.uuid4().hex[:16]}")

    def mount(self, system: str, bucket: str, *, cache_dir: Path | None = None, mnt: Path | None = None,
              options: list[str] | None = None) -> Mounted:
        sysobj = self.systems[system]
        mnt = mnt or self.new_dir(f"{system}-mnt")
        cache_dir = cache_dir or self.new_dir(f"{system}-cache")
        try:
            m = sysobj.mount(bucket, mnt, cache_dir, options=options, timeout=min(120.0, self.remaining()))
        except BaseException:
            Mounted(sysobj, mnt, cache_dir).kill()  # whatever half-started there
            raise
        self.active.append(m)
        return m

    def unmount(self, m: Mounted, timeout: float = 60.0) -> None:
        try:
            m.unmount(min(timeout, self.remaining()))
        finally:
            if m in self.active:
                self.active.remove(m)

    def kill_all(self) -> None:
        for m in list(self.active):
            try:
                m.kill()
            except Exception:  # noqa: BLE001 - clean-up must go on
                pass
        self.active.clear()

    def wait(self, pred: Callable[[], bool], what: str, interval: float = 0.05) -> None:
        while not pred():
            self.check_time(f"waiting for {what}")
            time.sleep(interval)

    def clean_samples(self) -> None:
        shutil.rmtree(self.workdir / "samples", ignore_errors=True)


def bounded(fn: Callable[[], object], timeout: float, on_timeout: Callable[[], None]) -> object:
    """Run ``fn`` in a thread; past ``timeout`` call ``on_timeout`` and raise BenchError.

    ``on_timeout`` must unblock ``fn`` (kill the mounts it uses); the thread is
    waited for another 30 s, then left behind (it is a daemon thread).
    """
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - passed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name="bench-sample")
    t.start()
    t.join(timeout)
    if t.is_alive():
        on_timeout()
        t.join(30)
        raise BenchError(f"timed out after {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ------------------------------------------------------------------ fixtures


def repeat(blob: bytes, size: int) -> bytes:
    """``size`` bytes made of ``blob`` repeated."""
    return (blob * -(-size // len(blob)))[:size]


def write_file(path: Path, data: bytes, chunk: int = MiB) -> None:
    view = memoryview(data)
    with open(path, "wb", buffering=0) as f:
        f.writelines(view[off:off + chunk] for off in range(0, len(data), chunk))


def read_file(path: Path, chunk: int = MiB) -> int:
    buf = bytearray(chunk)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(buf)
            if not got:
                return n
            n += got


def drop_page_cache(path: Path) -> None:
    """Evict one local file from the page cache (a cold read without dropping everyone's caches)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def make_tree(root: Path, files: int, size: int, per_dir: int = 100) -> None:
    block = os.urandom(size)
    for i in range(files):
        d = root / f"dir{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.dat").write_bytes(block[i % 64:] + block[:i % 64])


def make_tar(workdir: Path, files: int) -> Path:
    archive = workdir / f"tree-{files}.tar"
    if not archive.exists():
        src = workdir / f"tree-{files}"
        make_tree(src / "tree", files, 4 * KiB)
        subprocess.run(["tar", "-cf", str(archive), "-C", str(src), "tree"], check=True, timeout=300)
        shutil.rmtree(src, ignore_errors=True)
    return archive


def make_git_repo(workdir: Path, files: int, commits: int) -> Path:
    """A synthetic repository: ``files`` text files, ``commits`` commits each touching a tenth of them."""
    repo = workdir / f"repo-{files}-{commits}"
    if (repo / ".git").exists():
        return repo
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True, timeout=300)

    repo.mkdir(parents=True)
    git("init", "-q")
    text = "".join(f"line {i} of a synthetic source file for the benchmark\n" for i in range(120))
    for c in range(commits):
        for i in range(files):
            if c == 0 or (i + c) % 10 == 0:
                p = repo / f"src{i // 50:02d}" / f"mod{i:05d}.txt"
                p.parent.mkdir(exist_ok=True)
                p.write_text(f"# {i} rev {c}\n{text}")
        git("add", "-A")
        git("commit", "-q", "-m", f"commit {c}")
    return repo
