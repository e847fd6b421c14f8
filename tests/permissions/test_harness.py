"""The differential harness itself: a scenario whose outcome differs between the two
trees must fail the comparison (so the rule tests can fail)."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

DIFFERS = r'''
def setup(root):
    pass

def actions(root, rec):
    rec("device of the tree", lambda: os.lstat(".").st_dev)
'''


def test_a_difference_between_the_trees_fails_the_comparison(trees):
    with pytest.raises(AssertionError, match="device of the tree"):
        trees.compare(DIFFERS, ALICE)
