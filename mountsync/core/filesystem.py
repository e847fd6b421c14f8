"""``FileSystem``: the core's public API, a thin facade over the core objects.

Construct it with everything it needs (no wiring after construction): a
``Bucket`` (backend.bucket: keys, threads, pagination), the ``Journal``, the
``Items`` registry, a ``ChangeSink`` (the reconciler), ``CoreOptions``, the
``EventBus`` and the ``ConflictCopies`` shared with the reconciler (renames
keep other writers' versions through it). All methods run on the trio thread
and raise ``FsError`` with a definite errno.

The objects behind it (docs/ARCHITECTURE.md, "The core"), each holding
references to the ones it needs and the shared ``CoreContext``:

- ``Tree`` (core.tree): nodes, inode table, node ↔ journal entry;
- ``Listings`` (core.listings): directory listings, lookups, metadata, readdir;
- ``Files`` (core.files): handles, file data through the cache items;
- ``Names`` (core.names): create/mkdir/symlink/unlink/rmdir/setattr and the
  per-directory namespace locks;
- ``Renames`` (core.rename) with ``DirMoves`` (core.dirmove): rename(2).

The facade only forwards calls and takes the namespace locks a rename needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import keys
from ..backend.bucket import Bucket
from ..cache.item import Items
from ..cache.journal import Journal
from ..events import EventBus
from ..reconciler.conflict import ConflictCopies
from .context import Background, ChangeSink, CoreContext, CoreOptions
from .files import Files
from .listings import Listings
from .names import Names, SetAttr
from .nodes import ROOT_INO, Attr, Node
from .rename import RENAME_EXCHANGE, RENAME_NOREPLACE, Renames
from .tree import Tree


class FileSystem:
    def __init__(self, store: Bucket, journal: Journal, items: Items, sink: ChangeSink,
                 options: CoreOptions, events: EventBus | None = None, *,
                 conflict_copies: ConflictCopies) -> None:
        self.ctx = CoreContext(store, journal, items, sink, options,
                               events if events is not None else EventBus(), conflict_copies)
        self.tree = Tree(self.ctx)
        self.background = Background()  # read-ahead, revalidations: the stack runs ``serve``
        self.listings = Listings(self.ctx, self.tree, self.background)
        self.files = Files(self.ctx, self.tree, self.background)
        self.names = Names(self.ctx, self.tree, self.listings, self.files)
        self.renames = Renames(self.ctx, self.tree, self.listings)

    def request_started(self) -> None:
        """A program made a request (transfers yield to it: ``reconciler.pace``)."""
        self.ctx.sink.foreground()

    # ------------------------------------------------------------ lookups (Listings)

    def node(self, ino: int) -> Node:
        return self.tree.node(ino)

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        return await self.listings.lookup(parent_ino, name)

    async def getattr(self, ino: int) -> Attr:
        return await self.listings.getattr(ino)

    async def readlink(self, ino: int) -> str:
        return await self.listings.readlink(ino)

    def remember(self, ino: int) -> None:
        self.listings.remember(ino)

    def forget(self, ino: int, n: int) -> None:
        self.listings.forget(ino, n)

    async def opendir(self, ino: int) -> int:
        return await self.listings.opendir(ino)

    async def readdir(self, dh: int, start: int) -> Iterator[tuple[str, Attr, int]]:
        return await self.listings.readdir(dh, start)

    def releasedir(self, dh: int) -> None:
        self.listings.releasedir(dh)

    async def resolve(self, path: str) -> int:
        """Inode of ``path`` (``""`` is the root), looking names up as the kernel would.

        Used by tests and the control socket; does not count kernel references."""
        node = self.tree.node(ROOT_INO)
        for name in [p for p in path.split("/") if p]:
            node = await self.listings.ensure_meta(node, await self.listings.child(node, name))
        return node.ino

    # ------------------------------------------------------------ data (Files)

    async def open(self, ino: int, flags: int) -> tuple[int, bool]:
        return await self.files.open(ino, flags)

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        return await self.files.read(fh, offset, size)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        return await self.files.write(fh, offset, data)

    async def flush(self, fh: int) -> None:
        await self.files.flush(fh)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        await self.files.fsync(fh, datasync)

    async def release(self, fh: int) -> None:
        await self.files.release(fh)

    # ------------------------------------------------------------ entries (Names, Renames)

    async def create(self, parent_ino: int, name: str, mode: int, flags: int,
                     uid: int, gid: int) -> tuple[int, Attr]:
        return await self.names.create(parent_ino, name, mode, flags, uid, gid)

    async def mkdir(self, parent_ino: int, name: str, mode: int, uid: int, gid: int) -> Attr:
        return await self.names.mkdir(parent_ino, name, mode, uid, gid)

    async def symlink(self, parent_ino: int, name: str, target: str, uid: int, gid: int) -> Attr:
        return await self.names.symlink(parent_ino, name, target, uid, gid)

    async def mknod(self, parent_ino: int, name: str, mode: int, rdev: int, uid: int, gid: int) -> Attr:
        return await self.names.mknod(parent_ino, name, mode, rdev, uid, gid)

    async def link(self, ino: int, new_parent_ino: int, new_name: str) -> Attr:
        return await self.names.link(ino, new_parent_ino, new_name)

    async def unlink(self, parent_ino: int, name: str) -> None:
        await self.names.unlink(parent_ino, name)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        await self.names.rmdir(parent_ino, name)

    async def setattr(self, ino: int, changes: SetAttr) -> Attr:
        return await self.names.setattr(ino, changes)

    async def rename(self, old_parent_ino: int, old_name: str, new_parent_ino: int,
                     new_name: str, flags: int = 0) -> None:
        """rename(2), holding both directories' namespace locks (``DirLocks.hold``)."""
        async with self.names.locks.hold(old_parent_ino, new_parent_ino):
            await self.renames.rename(old_parent_ino, old_name, new_parent_ino, new_name, flags)

    def statfs(self) -> dict[str, int]:
        bsize = 4096
        blocks = (1 << 50) // bsize
        return {"bsize": bsize, "frsize": bsize, "blocks": blocks, "bfree": blocks, "bavail": blocks,
                "files": 1 << 32, "ffree": 1 << 31, "favail": 1 << 31, "namemax": keys.MAX_NAME_BYTES}


__all__ = ["FileSystem", "CoreOptions", "ChangeSink", "SetAttr", "Attr", "ROOT_INO",
           "RENAME_NOREPLACE", "RENAME_EXCHANGE"]
