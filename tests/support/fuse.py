"""FUSE policy for the suite: a skipped mount test must never pass CI silently.

``require_fuse()`` skips a test when FUSE cannot be used here, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest


def fuse_problem() -> str | None:
    """Why FUSE mounts cannot work here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed"
    try:
        import pyfuse3  # noqa: F401
    except ImportError as exc:
        return f"pyfuse3 cannot be imported: {exc}"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_fuse() -> None:
    problem = fuse_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"FUSE test cannot run in CI: {problem}", pytrace=False)
    pytest.skip(f"FUSE unavailable: {problem}")
