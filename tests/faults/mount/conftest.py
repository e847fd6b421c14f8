"""Fixtures for fault-injection tests of real mounts.

The real-mount fixtures (``cli_env``, ``moto_endpoint``, ``s3``, ``bucket``,
``mount``) come from ``tests/support/mount_fixtures.py`` (registered by
``tests/conftest.py``). On top of them:

- ``proxy``: a ``tests.support.proxy.Proxy`` in front of the moto server
  (closed after the test).
- ``fmount``: like ``mount`` but through the proxy (``--endpoint-url`` is the
  proxy's). Before the ``mount`` fixture's teardown unmounts (which uploads
  what is pending), the proxy is healed: restored, no faults, no rate limit.
  ``fmount.allow_warning`` and ``fmount.proxy`` are there too.
"""

from __future__ import annotations

import pytest

from tests.support.proxy import Proxy


@pytest.fixture
def proxy(moto_endpoint):
    p = Proxy(moto_endpoint)
    yield p
    p.close()


class FaultMountFactory:
    def __init__(self, mount, proxy: Proxy) -> None:
        self._mount = mount
        self.proxy = proxy

    def __call__(self, *options: str, **kwargs):
        kwargs.setdefault("endpoint", self.proxy.endpoint)
        return self._mount(*options, **kwargs)

    def allow_warning(self, pattern: str) -> None:
        self._mount.allow_warning(pattern)

    def scan_log_in(self, directory) -> None:
        """``directory/daemon.log`` (a ``--log-file`` outside the cache dir) is scanned at teardown too."""
        self._mount.cache_dirs.append(directory)

    def heal(self) -> None:
        self.proxy.set_fault_rate(0.0)
        self.proxy.set_rate_limit(None)
        if self.proxy.is_cut:
            self.proxy.restore()


@pytest.fixture
def fmount(proxy, mount):
    """``mount`` through ``proxy``; the proxy is healed before the mounts are torn down."""
    factory = FaultMountFactory(mount, proxy)
    yield factory
    factory.heal()


def pytest_collection_modifyitems(config, items):
    """``slow`` variants here are left out of a developer's default run: select them with
    ``-m slow`` (or any -m expression naming slow) or MOUNTSYNC_SLOW_TESTS=1. CI runs them
    (they fit its time, and a FUSE test must never be skipped there)."""
    import os

    from tests.support.fuse import in_ci

    if ("slow" in (config.getoption("markexpr") or "") or os.environ.get("MOUNTSYNC_SLOW_TESTS") == "1"
            or in_ci()):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    skip = pytest.mark.skip(reason="slow variant: run with -m slow or MOUNTSYNC_SLOW_TESTS=1")
    for item in items:
        if item.get_closest_marker("slow") and str(item.path).startswith(here + os.sep):
            item.add_marker(skip)
