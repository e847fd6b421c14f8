"""Inodes: the in-memory nodes of the mounted tree and the table that owns them.

Invariants (all state lives on the trio thread; no locks needed beyond trio's
cooperative scheduling, i.e. code between two ``await``\\ s is atomic):

- ``InodeTable.by_ino`` holds every node the kernel may still name: nodes in
  the tree plus detached ones (unlinked, replaced) whose ``nlookup`` or
  ``open_count`` is still positive.
- ``InodeTable.by_path`` holds exactly the nodes in the tree, keyed by path.
- A detached node is freed (and its data file dropped if no journal entry
  owns it anymore) when both ``nlookup`` and ``open_count`` reach zero.
- A node's kind never changes: a path whose kind changes gets a new node
  (and a new inode number), so the kernel never sees an inode change type.
- ``entry_id`` names the node's journal entry (and data file) when the cache
  holds anything for it; the journal is the durable truth for base ETag and
  pending state, the node mirrors size/attributes for fast getattr.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..cache.item import CacheItem
from ..errors import FsError
from .readahead import Reader

ROOT_INO = 1


@dataclass(frozen=True)
class Attr:
    """What getattr/lookup report. Times in nanoseconds."""

    ino: int
    mode: int
    size: int
    uid: int
    gid: int
    mtime_ns: int
    ctime_ns: int
    nlink: int
    ttl: float  # how long the kernel may cache this entry and its attributes
    rdev: int = 0  # device nodes


class NoEntry(FsError):
    """ENOENT from a lookup; ``ttl``: how much longer the answer may be trusted (the
    kernel may cache it as a negative entry that long)."""

    def __init__(self, ttl: float, message: str = "") -> None:
        super().__init__(errno.ENOENT, message)
        self.ttl = ttl


MAX_ABSENT_NAMES = 4096  # per directory; beyond that the oldest answers are dropped


class Node:
    __slots__ = (
        "ino", "kind", "path", "mode", "uid", "gid", "size", "mtime_ns", "ctime_ns",
        "etag", "meta_known", "attr_time", "nlookup", "open_count",
        "detached", "entry_id", "children", "listed_at", "remote", "target",
        "item", "_reader", "content_version", "kernel_version",
        "deferred_delete", "absent_at", "rdev", "listed",
    )

    def __init__(self, ino: int, kind: int, path: str, *, mode: int, uid: int, gid: int,
                 size: int = 0, mtime_ns: int = 0) -> None:
        self.ino = ino
        self.kind = kind
        self.path = path
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime_ns = mtime_ns
        self.ctime_ns = mtime_ns
        self.etag: str | None = None  # remote ETag when known and no journal entry says otherwise
        self.meta_known = False  # attributes came from HEAD or from local state
        self.attr_time = 0.0  # when remote attributes were last fetched (trio time)
        self.nlookup = 0
        self.open_count = 0
        self.detached = False
        self.entry_id: int | None = None
        # directories
        self.children: dict[str, Node] | None = None  # None: never listed
        self.listed_at = float("-inf")
        self.listed = False  # its children came from a bucket listing at least once (kept when moved)
        # names asked about one by one and found missing since the last listing → when
        self.absent_at: dict[str, float] | None = None
        self.remote = False  # exists in the bucket (object, marker or keys below)
        # symlinks
        self.target: str | None = None
        self.rdev = 0  # device nodes
        # files
        self.item: CacheItem | None = None  # the open cache item while any handle is open
        self._reader: Reader | None = None  # read-ahead and ranges in flight (files; made when first read)
        # bumped when the bytes change behind the kernel's back (another writer);
        # open() lets the kernel keep its page cache only if it saw this version
        self.content_version = 0
        self.kernel_version = 0
        self.deferred_delete: str | None = None  # unlinked while open: remote delete at last close

    @property
    def reader(self) -> Reader | None:
        """A regular file's read state (None for other kinds), made at its first use: most
        listed files are never read, and an idle Reader is ~0.6 KB (60 MB for 100,000 names)."""
        if self._reader is None and self.kind == stat.S_IFREG:
            self._reader = Reader()
        return self._reader

    def stop_readahead(self) -> None:
        """Cancel the read-ahead tasks of the file's reader, if it ever had one."""
        if self._reader is not None:
            self._reader.stop_readahead()

    @property
    def is_dir(self) -> bool:
        return self.kind == stat.S_IFDIR

    @property
    def is_file(self) -> bool:
        return self.kind == stat.S_IFREG

    def attr(self, ttl: float) -> Attr:
        return Attr(
            ino=self.ino,
            mode=self.kind | (self.mode & 0o7777),
            size=len(self.target.encode("utf-8", "surrogateescape")) if self.target is not None else self.size,
            uid=self.uid,
            gid=self.gid,
            mtime_ns=self.mtime_ns,
            ctime_ns=self.ctime_ns,
            nlink=2 if self.is_dir else 1,
            ttl=ttl,
            rdev=self.rdev,
        )

    def __repr__(self) -> str:
        return f"<Node {self.ino} {stat.filemode(self.kind)[0]} {self.path!r}>"


class InodeTable:
    """Allocates inode numbers and indexes nodes by number and by path."""

    def __init__(self) -> None:
        self.by_ino: dict[int, Node] = {}
        self.by_path: dict[str, Node] = {}
        self._next = ROOT_INO

    def new(self, kind: int, path: str, **kw) -> Node:
        node = Node(self._next, kind, path, **kw)
        self._next += 1
        self.by_ino[node.ino] = node
        self._take_path(node, path)
        return node

    def _take_path(self, node: Node, path: str) -> None:
        """A path has at most one node in the tree: a node still holding it is replaced."""
        old = self.by_path.get(path)
        if old is not None and old is not node:
            old.detached = True
        self.by_path[path] = node

    def get(self, ino: int) -> Node | None:
        return self.by_ino.get(ino)

    def detach(self, node: Node) -> None:
        """Take ``node`` out of the tree (unlinked, replaced); it lives while referenced."""
        if self.by_path.get(node.path) is node:
            del self.by_path[node.path]
        node.detached = True

    def repath(self, node: Node, new_path: str) -> None:
        if self.by_path.get(node.path) is node:
            del self.by_path[node.path]
        node.path = new_path
        self._take_path(node, new_path)

    def collectable(self, node: Node) -> bool:
        return node.detached and node.nlookup <= 0 and node.open_count <= 0

    def drop(self, node: Node) -> None:
        self.by_ino.pop(node.ino, None)


H = TypeVar("H")


class HandleTable(Generic[H]):
    """Open handles by number (file handles of ``open``, directory handles of ``opendir``);
    numbers start at 1 and are never reused while the mount lives."""

    def __init__(self) -> None:
        self._by_number: dict[int, H] = {}
        self._next = 1

    def add(self, handle: H) -> int:
        number = self._next
        self._next += 1
        self._by_number[number] = handle
        return number

    def get(self, number: int) -> H | None:
        return self._by_number.get(number)

    def pop(self, number: int) -> H | None:
        return self._by_number.pop(number, None)
