"""What ``mountsync status`` shows of an upload under way (issue 12 item 2): a multipart
upload's bytes sent grow part by part as each part completes, not at the end."""

from __future__ import annotations

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

PART = 256 * 1024


class WatchingStore(MemoryStore):
    """Notes, as each part starts and when the upload completes, what status says was sent."""

    def __init__(self) -> None:
        super().__init__("b")
        self.look = lambda: None
        self.seen: list[object] = []

    def upload_part(self, key, upload_id, part_number, body):
        self.seen.append(self.look())
        return super().upload_part(key, upload_id, part_number, body)

    def complete_multipart(self, key, upload_id, parts, **kw):
        self.seen.append(self.look())
        return super().complete_multipart(key, upload_id, parts, **kw)


def test_multipart_progress_grows_per_part(tmp_path):
    store = WatchingStore()
    size = 4 * PART

    async def body(rig):
        rig.stack.uploader.s.part_concurrency = 1  # parts one after another
        progress = rig.stack.uploader.progress
        await rig.write_file("big", b"z" * size)
        entry_id = rig.stack.journal.get("big").id
        store.look = lambda: progress.get(entry_id)
        assert (await rig.sync()).ok
        assert rig.status()["pending"] == []

    run_rig(body, tmp_path, store, write_back_delay=60, multipart_threshold=PART, part_size=PART)
    assert store.seen == [(0, size), (PART, size), (2 * PART, size), (3 * PART, size), (size, size)]
    assert store.objects() == {"big": b"z" * size}
