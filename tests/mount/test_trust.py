"""What a root mount trusts, through the real CLI and real mounts (docs/SECURITY.md).

- No code from the working directory or PYTHONPATH runs in the daemon or the
  mount helper.
- A cache dir of another user, or one others can write, is refused with one
  line; a symbolic link planted in a cache dir is never followed.
- A mount point whose name holds shell syntax mounts, and clearing it when its
  daemon died runs no shell.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.mount_fixtures import Mount, MountFactory
from tests.support.mount_helpers import is_mounted, pid_alive
from tests.support.planted import cli_script, plant, planted_lines

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

OTHER_UID = 65534
HELPER = Path(__file__).resolve().parents[2] / "packaging" / "mount.fuse.mountsync"


def _run(factory: MountFactory, argv: list[str], *, mountpoint: Path, cache_dir: Path, cwd: Path,
         env: dict | None = None) -> Mount:
    """Run a mount command line (CLI or helper) and register the mount for the fixture's teardown."""
    result = subprocess.run(argv, cwd=cwd, env=env or factory.env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=180, check=False)
    m = Mount(bucket=factory.default_bucket, mountpoint=mountpoint, cache_dir=cache_dir, env=factory.env,
              result=result)
    factory.mounts.append(m)
    factory.cache_dirs.append(cache_dir)
    if result.returncode == 0:
        m.pid = m.status()["pid"]
    return m


def _mount_argv(factory: MountFactory, mountpoint: Path, cache_dir: Path) -> list[str]:
    return ["mount", factory.default_bucket, str(mountpoint), "--endpoint-url", factory.endpoint,
            "--force-path-style", "--region", "us-east-1", "--cache-dir", str(cache_dir)]


def _assert_mounted_without_planted_code(m: Mount, marker: Path) -> None:
    assert m.ok, f"mount failed ({m.result.returncode}): {m.result.stderr.strip()}\n{m.log_tail()}"
    assert m.is_mounted()
    (m.mountpoint / "hello.txt").write_text("hi")
    assert (m.mountpoint / "hello.txt").read_text() == "hi"
    assert planted_lines(marker) == "", f"planted code ran: {planted_lines(marker)}"
    with open(f"/proc/{m.pid}/cmdline", "rb") as f:
        cmdline = f.read().split(b"\0")
    assert b"-I" in cmdline, f"the daemon does not run isolated: {cmdline}"


# ---------------------------------------------------------------- code from the cwd / environment


@pytest.fixture
def planted(tmp_path):
    marker = tmp_path / "planted-code-ran"
    return plant(tmp_path / "planted", marker), marker


def test_cli_in_a_directory_with_a_planted_package_runs_none_of_it(mount, planted):
    root, marker = planted
    mp, cache = mount.new_dir("mnt"), mount.new_dir("cache")
    mp.mkdir()
    m = _run(mount, [cli_script(), *_mount_argv(mount, mp, cache)], mountpoint=mp, cache_dir=cache, cwd=root)
    _assert_mounted_without_planted_code(m, marker)


def test_pythonpath_of_the_caller_does_not_reach_the_daemon(mount, planted):
    """The CLI itself runs isolated here; before, the daemon it started honoured PYTHONPATH."""
    root, marker = planted
    mp, cache = mount.new_dir("mnt"), mount.new_dir("cache")
    mp.mkdir()
    env = dict(mount.env, PYTHONPATH=str(root))
    m = _run(mount, [sys.executable, "-I", "-m", "mountsync", *_mount_argv(mount, mp, cache)],
             mountpoint=mp, cache_dir=cache, cwd=root, env=env)
    _assert_mounted_without_planted_code(m, marker)


def test_mount_helper_ignores_cwd_and_pythonpath(mount, planted, tmp_path):
    """packaging/mount.fuse.mountsync, installed as packaging/README.md says (PYTHON= set)."""
    root, marker = planted
    helper = tmp_path / "mount.fuse.mountsync"
    text = HELPER.read_text()
    assert re.search(r"^PYTHON=", text, re.MULTILINE), "the helper has no PYTHON= line to set"
    helper.write_text(re.sub(r"^PYTHON=.*$", f"PYTHON={sys.executable}", text, flags=re.MULTILINE))
    helper.chmod(0o755)
    mp, cache = mount.new_dir("mnt"), mount.new_dir("cache")
    mp.mkdir()
    opts = (f"rw,_netdev,endpoint_url={mount.endpoint},force_path_style,region=us-east-1,"
            f"cache_dir={cache}")
    env = dict(mount.env, PYTHONPATH=str(root), MOUNTSYNC_PYTHON=str(root / "no-such-python"))
    m = _run(mount, [str(helper), mount.default_bucket, str(mp), "-o", opts],
             mountpoint=mp, cache_dir=cache, cwd=root, env=env)
    _assert_mounted_without_planted_code(m, marker)


# ---------------------------------------------------------------- cache dir


def _refused_with_one_line(m: Mount, *words: str) -> str:
    r = m.result
    assert r.returncode != 0, f"mount succeeded: {r.stdout}"
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {r.stderr!r}"
    for w in words:
        assert w in lines[0], lines[0]
    assert not is_mounted(m.mountpoint)
    return lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")
def test_cache_dir_of_another_user_is_refused(mount):
    cache = mount.new_dir("cache")
    cache.mkdir(mode=0o700)
    os.chown(cache, OTHER_UID, OTHER_UID)
    m = mount(cache_dir=cache, check=False)
    _refused_with_one_line(m, str(cache), "owned by uid 65534")
    assert os.stat(cache).st_uid == OTHER_UID and os.listdir(cache) == []


def test_cache_dir_writable_by_everyone_is_refused(mount):
    cache = mount.new_dir("cache")
    cache.mkdir()
    cache.chmod(0o777)
    m = mount(cache_dir=cache, check=False)
    _refused_with_one_line(m, str(cache), "writable by other users")
    assert os.listdir(cache) == []


@pytest.mark.parametrize("name", ["lock", "daemon.log", "journal.db"])
def test_symlink_planted_in_the_cache_dir_is_not_followed(mount, tmp_path, name):
    cache = mount.new_dir("cache")
    cache.mkdir(mode=0o700)
    victim = tmp_path / "root-owned-file"
    victim.write_text("precious")
    (cache / name).symlink_to(victim)
    m = mount(cache_dir=cache, check=False)
    _refused_with_one_line(m, name, "symbolic link")
    assert victim.read_text() == "precious"


# ---------------------------------------------------------------- no shell


def test_dead_mount_with_shell_syntax_in_its_name_is_cleared_without_a_shell(mount, tmp_path):
    mp = tmp_path / "it's $(touch pwned) `touch pwned2`"
    mp.mkdir()
    first = mount(mountpoint=mp)
    (mp / "a.txt").write_text("a")
    first.sync()
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(first.pid):
        assert time.monotonic() < deadline, "the killed daemon did not exit"
        time.sleep(0.05)
    with pytest.raises(OSError) as info:
        os.statvfs(mp)
    assert info.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    # mounting again clears the dead mount first (daemon.clear_dead_mount)
    again = _run(mount, [cli_script(), *_mount_argv(mount, mp, first.cache_dir)],
                 mountpoint=mp, cache_dir=first.cache_dir, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []
    assert again.ok, f"mount failed: {again.result.stderr.strip()}\n{again.log_tail()}"
    assert (mp / "a.txt").read_text() == "a"
