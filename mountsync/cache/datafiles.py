"""Cache data files: where they live on disk (one sparse file per journal entry id,
never named by key) and the plain file operations on them.

Layout below the cache dir: ``data/<id % 256 as 2 hex>/<id>`` and
``snap/<id>.upload`` for upload snapshots. Every file is created 0600 and never
opened through a symlink.

``DataStore`` knows only the layout; the open files, their present ranges and
their journal state belong to ``cache.item`` (``Items``/``CacheItem``).
"""

from __future__ import annotations

import os
import shutil


def copy_file(fd: int, dst: str) -> int:
    """Copy the open file ``fd`` to a new private file ``dst``; returns the size copied."""
    size = os.fstat(fd).st_size
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        offset = 0
        while offset < size:
            n = os.copy_file_range(fd, out, size - offset, offset, offset)
            if n == 0:
                break
            offset += n
        os.ftruncate(out, size)
    finally:
        os.close(out)
    return size


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class DataStore:
    """Data files below ``root`` (layout only; see the module doc)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.data_dir = os.path.join(root, "data")
        self.snap_dir = os.path.join(root, "snap")
        for d in (self.data_dir, self.snap_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def path_for(self, entry_id: int) -> str:
        return os.path.join(self.data_dir, f"{entry_id % 256:02x}", str(entry_id))

    def snapshot_path(self, entry_id: int) -> str:
        """Where the upload snapshot of ``entry_id`` is taken (one upload per entry at a time)."""
        return os.path.join(self.snap_dir, f"{entry_id}.upload")

    def exists(self, entry_id: int) -> bool:
        return os.path.exists(self.path_for(entry_id))

    def file_size(self, entry_id: int) -> int:
        try:
            return os.stat(self.path_for(entry_id)).st_size
        except FileNotFoundError:
            return 0

    def free_bytes(self) -> int:
        """Space left for us on the cache filesystem."""
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def allocated(self, entry_id: int) -> int:
        """Bytes the data file occupies on disk (holes excluded)."""
        try:
            return os.stat(self.path_for(entry_id)).st_blocks * 512
        except FileNotFoundError:
            return 0

    def remove(self, entry_id: int) -> None:
        """Delete the data file (callers ensure nobody holds it open)."""
        unlink_quietly(self.path_for(entry_id))

    def clear_snapshots(self) -> None:
        shutil.rmtree(self.snap_dir, ignore_errors=True)
        os.makedirs(self.snap_dir, mode=0o700, exist_ok=True)

    def disk_usage(self) -> int:
        """Bytes allocated by data files (sparse holes not counted)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.data_dir):
            for f in files:
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
                except FileNotFoundError:
                    pass
        return total
