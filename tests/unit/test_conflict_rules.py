"""Pure conflict rules: names and strategy decisions (mountsync.conflict_rules)."""

import calendar

import pytest

from mountsync.conflict_rules import conflict_name, decide, split_extension, strip_conflict_suffix

WHEN = calendar.timegm((2026, 3, 4, 5, 6, 7))


@pytest.mark.parametrize("name,expected", [
    ("report.pdf", "report.conflict-20260304-050607-h.pdf"),
    ("data.tar.gz", "data.conflict-20260304-050607-h.tar.gz"),
    (".bashrc", ".bashrc.conflict-20260304-050607-h"),
    ("Makefile", "Makefile.conflict-20260304-050607-h"),
    (".config.yaml", ".config.conflict-20260304-050607-h.yaml"),
])
def test_names(name, expected):
    assert conflict_name(name, WHEN, "h.example.org") == expected
    assert strip_conflict_suffix(expected) == name


def test_taken_names_get_a_counter_and_long_names_fit():
    first = conflict_name("a.txt", WHEN, "h")
    assert conflict_name("a.txt", WHEN, "h", {first}) == "a.conflict-20260304-050607-h-2.txt"
    long = conflict_name("x" * 255 + ".txt", WHEN, "h")
    assert len(long.encode()) <= 255 and long.endswith(".txt")
    assert split_extension("archive.TAR.GZ") == ("archive", ".TAR.GZ")


def test_decisions():
    assert decide("keep-both", 1, 2, True).upload_local_as == "conflict-name"
    assert decide("local-wins", 1, 2, True).recover == "remote"
    assert decide("remote-wins", 1, 2, True).upload_local_as is None
    assert decide("newest-wins", 1, 2, True).winner == "remote"
    assert decide("newest-wins", 3, 2, True).winner == "local"
    assert decide("manual", 1, 2, True).keep_pending
    assert decide("remote-wins", 1, None, False).upload_local_as == "original"  # nothing remote to lose
    with pytest.raises(ValueError):
        decide("coin-flip", 1, 2, True)
