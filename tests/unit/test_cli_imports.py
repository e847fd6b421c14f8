"""The CLI's start-up stays light: ``mountsync mount`` and ``status`` are on the path of
every mount (the time until a mount is usable, docs/benchmarks.md), and the CLI process
only parses options, spawns the daemon and talks to its socket. trio, pyfuse3 and the
cloud SDKs are the daemon's."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("trio", "pyfuse3", "boto3", "botocore", "azure", "google")


@pytest.mark.parametrize("module", ["mountsync.cli", "mountsync.control"])
def test_the_cli_imports_no_loop_kernel_or_cloud_sdk(module: str) -> None:
    code = (f"import sys, {module}; "
            f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [], f"importing {module} imported {out.strip()}"


def test_the_daemon_does_import_them() -> None:
    """The check above can see an import: the daemon's module pulls in trio and pyfuse3."""
    code = "import sys, mountsync.daemon; print('trio' in sys.modules, 'pyfuse3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
