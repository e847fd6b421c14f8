"""Foreground first: the pure rule for how many transfers may start (reconciler.pace)."""

from mountsync.reconciler.pace import upload_slots


def test_all_workers_once_the_mount_has_been_quiet():
    assert upload_slots(8, 0.25, quiet=0.25, busy_slots=2) == 8
    assert upload_slots(8, float("inf")) == 8


def test_few_workers_while_programs_use_the_mount():
    assert upload_slots(8, 0.0, quiet=0.25, busy_slots=2) == 2
    assert upload_slots(8, 0.2499, quiet=0.25, busy_slots=2) == 2


def test_never_more_than_the_workers_nor_fewer_than_one():
    assert upload_slots(1, 0.0, busy_slots=2) == 1
    assert upload_slots(8, 0.0, busy_slots=0) == 1
