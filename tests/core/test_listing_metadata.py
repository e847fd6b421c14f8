"""A listing that carries the objects' metadata (Azure, GCS) spares the HEADs: ``ls -l``
of objects never seen makes LIST requests only, and the attributes come out right."""

from __future__ import annotations

import stat

from mountsync.backend.base import ListPage, ObjectInfo
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig


class ListingWithMetadata(MemoryStore):
    """A memory store whose listings carry each object's metadata (as Azure's and GCS's do);
    ``heads`` records the keys HEADed."""

    def __init__(self, bucket: str) -> None:
        super().__init__(bucket)
        self.heads: list[str] = []

    def head(self, key):
        self.heads.append(key)
        return super().head(key)

    def list_page(self, prefix, delimiter="/", token=None, max_keys=1000):
        page = super().list_page(prefix, delimiter, token, max_keys)
        objects = [ObjectInfo(o.key, o.size, o.etag, o.last_modified, self.metadata_of(o.key)) for o in page.objects]
        return ListPage(objects, page.prefixes, page.next_token)


def test_ls_l_needs_no_head_when_the_listing_has_the_metadata(tmp_path):
    store = ListingWithMetadata("b")
    for i in range(20):
        store.put(f"d/f{i:02d}", b"x" * i, {"mode": str(stat.S_IFREG | 0o600), "uid": "1234", "gid": "55",
                                              "mtime": "1700000000"})
    store.put("d/link", b"f01", {"mode": str(stat.S_IFLNK | 0o777)})  # a symlink: its target is its body

    async def body(rig):
        names = await rig.listdir("d")
        assert len(names) == 21
        for name in names:
            st = await rig.stat(f"d/{name}")
            if name.startswith("f"):
                assert (st.mode, st.uid, st.gid, st.size) == (stat.S_IFREG | 0o600, 1234, 55,
                                                                          int(name[1:]))
        assert [k for k in store.heads if k.startswith("d/f")] == [], store.heads  # no HEAD per file
        assert await rig.readlink("d/link") == "f01"  # a symlink's target is its body: fetched

    run_rig(body, tmp_path, store, metadata_ttl=300)
