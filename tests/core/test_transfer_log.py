"""One INFO line per thing the reconciler does in the bucket (issue: user experience)."""

from __future__ import annotations

import logging

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig


def test_uploads_renames_and_deletes_are_each_one_info_line(tmp_path, caplog):
    mem = MemoryStore("b")
    mem.put("old", b"O" * 100)

    async def body(rig):
        await rig.write_file("new.txt", b"N" * 3000)
        await rig.mkdir("d")
        await rig.listdir("")
        await rig.rename("old", "renamed")
        assert (await rig.sync()).ok
        await rig.unlink("new.txt")
        assert (await rig.sync()).ok

    with caplog.at_level(logging.INFO, logger="mountsync.reconciler"):
        run_rig(body, tmp_path, mem, allow_delete=True)
    lines = [r for r in caplog.records if r.name == "mountsync.reconciler" and r.levelno == logging.INFO
             and hasattr(r, "event")]
    events = sorted((r.event, r.key) for r in lines)
    assert events == [("copy", "renamed"), ("delete", "new.txt"), ("delete", "old"), ("marker", "d/"),
                      ("upload", "new.txt")], events
    upload = next(r for r in lines if r.event == "upload")
    assert upload.bytes == 3000 and upload.attempt == 1 and upload.seconds >= 0
    assert upload.getMessage().startswith("uploaded 'new.txt': 2.9 KiB in ")
    copy = next(r for r in lines if r.event == "copy")
    assert copy.source == "old" and copy.getMessage().startswith("renamed 'old' to 'renamed' in the bucket")
