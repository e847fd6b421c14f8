"""FUSE can be used on this machine (moved from tests/test_fuse_policy.py; the policy itself is
checked in tests/unit/test_fuse_policy.py)."""

from tests.support import fuse


def test_fuse_works_on_this_machine():
    """Mount tests depend on it; in CI a problem here must be a failure."""
    fuse.require_fuse()
    assert fuse.fuse_problem() is None
