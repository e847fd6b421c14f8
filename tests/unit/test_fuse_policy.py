"""The rule that CI never skips a FUSE test, checked with a fake environment."""

import pytest

from tests.support import fuse


def test_ci_turns_missing_fuse_into_failure(monkeypatch):
    monkeypatch.setattr(fuse, "fuse_problem", lambda: "no /dev/fuse (simulated)")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        fuse.require_fuse()


def test_outside_ci_missing_fuse_is_a_skip(monkeypatch):
    monkeypatch.setattr(fuse, "fuse_problem", lambda: "no /dev/fuse (simulated)")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        fuse.require_fuse()
