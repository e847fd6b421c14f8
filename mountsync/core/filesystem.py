"""``FileSystem``: the core's public API, combining the operation mixins.

Construct it with everything it needs (no wiring after construction):
a ``Bucket`` (backend.bucket: keys, threads, pagination), the ``Journal``, the ``DataStore``, a ``ChangeSink`` (the
reconciler), ``CoreOptions``, the ``EventBus`` and the ``ConflictCopies`` shared
with the reconciler (renames keep other writers' versions through it). All methods run on the trio thread and
raise ``FsError`` with a definite errno.
"""

from __future__ import annotations

from ..reconciler.conflict import ConflictCopies
from .base import ChangeSink, CoreOptions
from .nodes import ROOT_INO, Attr
from .nsops import SetAttr
from .rename import RENAME_EXCHANGE, RENAME_NOREPLACE, RenameOps


class FileSystem(RenameOps):
    def __init__(self, *args, conflict_copies: ConflictCopies, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conflict_copies = conflict_copies
        self._init_fileops()
        self._init_nsops()

    async def rename(self, old_parent_ino: int, old_name: str, new_parent_ino: int,
                     new_name: str, flags: int = 0) -> None:
        """rename(2), holding both directories' namespace locks (see ``dir_locked``)."""
        async with self.dir_locked(old_parent_ino, new_parent_ino):
            await super().rename(old_parent_ino, old_name, new_parent_ino, new_name, flags)

    async def resolve(self, path: str) -> int:
        """Inode of ``path`` (``""`` is the root), looking names up as the kernel would.

        Used by tests and the control socket; does not count kernel references."""
        node = self.node(ROOT_INO)
        for name in [p for p in path.split("/") if p]:
            node = await self.ensure_meta(node, await self.child(node, name))
        return node.ino


__all__ = ["FileSystem", "CoreOptions", "ChangeSink", "SetAttr", "Attr", "ROOT_INO",
           "RENAME_NOREPLACE", "RENAME_EXCHANGE"]
