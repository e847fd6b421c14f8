"""Suite-wide rules.

- Log hygiene: a WARNING or ERROR logged by ``mountsync`` during a test fails
  it, unless the test declared it with ``allow_log(pattern)``.
- FUSE policy: ``require_fuse()`` skips a test when FUSE cannot be used here,
  except in CI (``CI=true``), where that is a failure: a skipped mount test
  must never pass CI silently.
"""

from __future__ import annotations

import logging
import os
import re
import shutil

import pytest


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _log_hygiene(request):
    collector = _Collector()
    logger = logging.getLogger("mountsync")
    logger.addHandler(collector)
    allowed: list[re.Pattern] = []
    request.node._allowed_logs = allowed
    yield
    logger.removeHandler(collector)
    unexpected = [r for r in collector.records
                  if not any(p.search(r.getMessage()) for p in allowed)]
    if unexpected:
        lines = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in unexpected[:10])
        pytest.fail(f"unexpected warnings/errors were logged:\n{lines}", pytrace=False)


@pytest.fixture
def allow_log(request):
    """``allow_log(r"regex")``: a WARNING/ERROR matching it is expected in this test."""

    def allow(pattern: str) -> None:
        request.node._allowed_logs.append(re.compile(pattern))

    return allow


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
