"""The wheel is a production install (issue: user experience and packaging): built from this
tree, installed into a fresh venv with the pinned versions, it runs ``mountsync --version``,
carries the man page and the mount helper and units, and does not pull in the embedded
S3 server (moto, Flask and friends: the ``demo`` extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=900, cwd=cwd, check=False)
    assert r.returncode == 0, f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_wheel_installs_alone_and_runs(tmp_path):
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT))
    wheels = list(dist.glob("mountsync-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    _run(py, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheels[0]))
    r = _run(str(venv / "bin" / "mountsync"), "--version")
    assert r.stdout.startswith("mountsync ") and "pyfuse3" in r.stdout, r.stdout
    missing = subprocess.run([py, "-c", "import moto"], capture_output=True, check=False)
    assert missing.returncode != 0, "moto is installed with the plain wheel: it belongs to the demo extra"
    assert (venv / "share" / "man" / "man1" / "mountsync.1").read_text() == (ROOT / "docs" / "mountsync.1").read_text()
    for name in ("mount.fuse.mountsync", "mountsync.service", "mountsync.mount", "README.md"):
        assert (venv / "share" / "mountsync" / "packaging" / name).is_file(), name
    demo = subprocess.run([str(venv / "bin" / "mountsync"), "demo", str(tmp_path / "mnt")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert demo.returncode != 0 and "pip install 'mountsync[demo]'" in demo.stderr, demo.stderr
    assert len(demo.stderr.splitlines()) == 1, demo.stderr
