"""``trees``: the mount and a local directory for the differential permission tests
(harness.py), with ``trees.compare(scenario, user, uploaded=...)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.permissions.harness import User, cleanup, compare, public_dir


@dataclass
class Trees:
    mount_root: Path
    local_root: Path
    mount: object  # tests.support.mount_fixtures.Mount

    def compare(self, scenario: str, user: User, *, uploaded: bool = False) -> list:
        """``uploaded``: the mount syncs between setup and actions, so the actions meet
        entries that are in the bucket (and, for renames and deletes, the own-creations
        rule of SPEC §6)."""
        between = self.mount.sync if uploaded else None  # type: ignore[attr-defined]
        return compare(self.mount_root, self.local_root, scenario, user, between)


@pytest.fixture
def trees(mount):
    mnt = public_dir("mnt")
    local = public_dir("local")
    m = mount("--allow-other", mountpoint=mnt)
    yield Trees(m.mountpoint, local, m)
    m.unmount()
    cleanup(local)
    mnt.rmdir()
