"""A refused operation fails with a definite errno *and one log line* (SEMANTICS, tenet 3).

Programs turn the errno into something vague (sqlite3: "disk I/O error"; tar: "File exists"),
so the log line is what lets a user find out that --allow-delete was the answer.
"""

from __future__ import annotations

import errno
import os

import pytest

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _refuse_unlink(m):
    os.unlink(m.path("uploaded-victim.txt"))


def _refuse_rename(m):
    os.rename(m.path("uploaded-victim.txt"), m.path("elsewhere.txt"))


def _refuse_link(m):
    os.link(m.path("uploaded-victim.txt"), m.path("hardlink.txt"))


@pytest.mark.parametrize("op", [_refuse_unlink, _refuse_rename, _refuse_link], ids=["unlink", "rename", "link"])
def test_refusal_has_errno_and_log_line(mount, op, s3, bucket):
    # put there by another writer: the mount did not create it (SPEC §6)
    s3.put_object(Bucket=bucket, Key="uploaded-victim.txt", Body=b"in the bucket\n")
    m = mount()
    mount.allow_warning("uploaded-victim")
    before = m.log_file.read_text(errors="replace")
    with pytest.raises(OSError) as info:
        op(m)
    assert info.value.errno == errno.EPERM
    assert m.path("uploaded-victim.txt").read_bytes() == b"in the bucket\n"
    new = m.log_file.read_text(errors="replace")[len(before):]
    # the line names what was refused (for a hard link: the file or the new name)
    assert "uploaded-victim.txt" in new or "hardlink.txt" in new, \
        f"no log line about the refusal; new daemon.log lines:\n{new}"
