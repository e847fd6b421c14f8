"""The rule that CI never skips a FUSE test, checked with a fake environment."""

import pytest

from tests import conftest


def test_ci_turns_missing_fuse_into_failure(monkeypatch):
    monkeypatch.setattr(conftest, "fuse_problem", lambda: "no /dev/fuse (simulated)")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        conftest.require_fuse()


def test_outside_ci_missing_fuse_is_a_skip(monkeypatch):
    monkeypatch.setattr(conftest, "fuse_problem", lambda: "no /dev/fuse (simulated)")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest.require_fuse()


def test_fuse_works_on_this_machine():
    """Mount tests depend on it; in CI a problem here must be a failure."""
    conftest.require_fuse()
    assert conftest.fuse_problem() is None
