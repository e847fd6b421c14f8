"""Suite-wide rules and shared fixtures (tests/README.md says which tier uses what).

- Log hygiene: a WARNING or ERROR logged by ``mountsync`` during a test fails
  it, unless the test declared it with ``allow_log(pattern)``.
- The real-mount fixtures (``cli_env``, ``moto_endpoint``, ``s3``, ``bucket``,
  ``mount``) live in ``tests/support/mount_fixtures.py`` and are registered
  here for every tier, so tests/mount, tests/faults/mount, tests/programs and
  tests/model share one instance of each session fixture (one moto subprocess
  per run). A fixture is only set up when a test asks for it.
- FUSE policy (``tests/support/fuse.py``): ``require_fuse()`` skips a test when
  FUSE cannot be used here, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import logging
import re

import pytest

pytest_plugins = ["tests.support.azurite", "tests.support.gcs_emulator", "tests.support.mount_fixtures"]


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
