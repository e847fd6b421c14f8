"""docs/mountsync.1 is the man page rendered from the argument parser (mountsync/manpage.py)."""

from __future__ import annotations

from pathlib import Path

from mountsync.manpage import render

MAN = Path(__file__).resolve().parents[2] / "docs" / "mountsync.1"


def test_the_installed_man_page_matches_the_parser():
    assert MAN.read_text() == render(), "docs/mountsync.1 is stale: run python -m mountsync.manpage > docs/mountsync.1"


def test_every_mount_option_is_in_the_man_page():
    from tests.mount.test_cli_usage import _mount_options

    text = render()
    for action in _mount_options():
        assert action.option_strings[0].replace("-", "\\-") in text, action.option_strings[0]
    assert ".SH FILES" in text and "daemon.log" in text and ".SH EXIT STATUS" in text
