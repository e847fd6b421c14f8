"""The FUSE adapter: the only module that imports pyfuse3.

Each handler unpacks the kernel's arguments, awaits the core, and packs the
result. Errors are converted exactly once, here: ``FsError`` → its errno;
any other exception is a bug, logged with its traceback and reported as EIO,
so no exception ever escapes a handler (that would take the mount down).

Lookup counting: the kernel's references are counted in the core
(``lookup``/``create``/``mkdir``/``symlink`` count one; readdirplus entries
count one when ``readdir_reply`` accepts them; ``forget`` subtracts).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import time

import pyfuse3

from ..core.filesystem import ROOT_INO, Attr, FileSystem, SetAttr
from ..core.nodes import NoEntry
from ..errors import FsError

log = logging.getLogger("mountsync.fuse")


def _entry(a: Attr) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = a.ino
    e.generation = 0
    e.entry_timeout = a.ttl
    e.attr_timeout = a.ttl
    e.st_mode = a.mode
    e.st_nlink = a.nlink
    e.st_uid = a.uid
    e.st_gid = a.gid
    e.st_rdev = a.rdev
    e.st_size = a.size
    e.st_blksize = 4096
    e.st_blocks = (a.size + 511) // 512
    e.st_atime_ns = a.mtime_ns
    e.st_mtime_ns = a.mtime_ns
    e.st_ctime_ns = a.ctime_ns
    return e


def _negative_entry(ttl: float) -> pyfuse3.EntryAttributes:
    """"No such name", which the kernel may remember for ``ttl`` seconds (a negative
    dentry): never longer than the core trusts the answer (--negative-metadata-ttl)."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = 0
    e.entry_timeout = ttl
    e.attr_timeout = 0
    return e


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


# errors that are a policy decision, not a failure: one INFO line says why
_REFUSALS = frozenset({errno.EPERM, errno.EROFS, errno.ENOTSUP})


def _warn_disk_full(adapter: FuseAdapter, op: str, exc: BaseException) -> None:
    """One WARNING per minute at most while the cache disk stays full."""
    now = time.monotonic()
    if now - adapter.disk_full_warned_at >= 60:
        adapter.disk_full_warned_at = now
        log.warning("cache disk full (%s: %s): writes fail with ENOSPC until uploads let clean "
                    "data be evicted", op, exc)


def _converting(fn):
    """Wrap a handler: FsError → FUSEError(errno); anything else → EIO with a logged traceback."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            args[0].fs.request_started()
            return await fn(*args, **kwargs)
        except FsError as exc:
            if exc.errno == errno.ENOSPC:
                _warn_disk_full(args[0], fn.__name__, exc)
            elif exc.errno in _REFUSALS:
                log.info("%s refused (%s): %s", fn.__name__, errno.errorcode.get(exc.errno, exc.errno), exc)
            elif exc.errno == errno.EIO:
                log.debug("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except pyfuse3.FUSEError:
            raise
        except OSError as exc:
            if exc.errno is None:
                log.exception("unexpected error in %s; answering EIO", fn.__name__)
                raise pyfuse3.FUSEError(errno.EIO) from None
            if exc.errno == errno.ENOSPC:
                _warn_disk_full(args[0], fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except Exception:
            log.exception("unexpected error in %s; answering EIO", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


class FuseAdapter(pyfuse3.Operations):
    supports_dot_lookup = True

    def __init__(self, fs: FileSystem, *, writeback_cache: bool = False) -> None:
        super().__init__()
        self.fs = fs
        self.enable_writeback_cache = writeback_cache
        self.disk_full_warned_at = float("-inf")

    @_converting
    async def lookup(self, parent_inode, name, ctx=None):
        try:
            return _entry(await self.fs.lookup(parent_inode, _name(name)))
        except NoEntry as exc:
            if exc.ttl <= 0:
                raise
            return _negative_entry(exc.ttl)

    async def forget(self, inode_list):
        try:
            for ino, n in inode_list:
                self.fs.forget(ino, n)
        except Exception:
            log.exception("unexpected error in forget")

    @_converting
    async def getattr(self, inode, ctx=None):
        return _entry(await self.fs.getattr(inode))

    @_converting
    async def setattr(self, inode, attr, fields, fh, ctx):
        changes = SetAttr(
            size=attr.st_size if fields.update_size else None,
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
        )
        return _entry(await self.fs.setattr(inode, changes))

    @_converting
    async def readlink(self, inode, ctx):
        return os.fsencode(await self.fs.readlink(inode))

    @_converting
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        if not stat.S_ISREG(mode):
            return _entry(await self.fs.mknod(parent_inode, _name(name), mode, rdev, ctx.uid, ctx.gid))
        fh, attr = await self.fs.create(parent_inode, _name(name), mode, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                                        ctx.uid, ctx.gid)
        await self.fs.release(fh)
        return _entry(attr)

    @_converting
    async def mkdir(self, parent_inode, name, mode, ctx):
        return _entry(await self.fs.mkdir(parent_inode, _name(name), mode, ctx.uid, ctx.gid))

    @_converting
    async def unlink(self, parent_inode, name, ctx):
        await self.fs.unlink(parent_inode, _name(name))

    @_converting
    async def rmdir(self, parent_inode, name, ctx):
        await self.fs.rmdir(parent_inode, _name(name))

    @_converting
    async def symlink(self, parent_inode, name, target, ctx):
        return _entry(await self.fs.symlink(parent_inode, _name(name), os.fsdecode(target), ctx.uid, ctx.gid))

    @_converting
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        await self.fs.rename(parent_inode_old, _name(name_old), parent_inode_new, _name(name_new), flags)

    @_converting
    async def link(self, inode, new_parent_inode, new_name, ctx):
        return _entry(await self.fs.link(inode, new_parent_inode, _name(new_name)))

    @_converting
    async def open(self, inode, flags, ctx):
        fh, keep_cache = await self.fs.open(inode, flags)
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep_cache)

    @_converting
    async def create(self, parent_inode, name, mode, flags, ctx):
        fh, attr = await self.fs.create(parent_inode, _name(name), mode, flags, ctx.uid, ctx.gid)
        return pyfuse3.FileInfo(fh=fh), _entry(attr)

    @_converting
    async def read(self, fh, off, size):
        return await self.fs.read(fh, off, size)

    @_converting
    async def write(self, fh, off, buf):
        return await self.fs.write(fh, off, buf)

    @_converting
    async def flush(self, fh):
        await self.fs.flush(fh)

    @_converting
    async def release(self, fh):
        await self.fs.release(fh)

    @_converting
    async def fsync(self, fh, datasync):
        await self.fs.fsync(fh, bool(datasync))

    @_converting
    async def opendir(self, inode, ctx):
        return await self.fs.opendir(inode)

    @_converting
    async def readdir(self, fh, start_id, token):
        for name, attr, next_id in await self.fs.readdir(fh, start_id):
            if not pyfuse3.readdir_reply(token, os.fsencode(name), _entry(attr), next_id):
                break
            self.fs.remember(attr.ino)

    @_converting
    async def releasedir(self, fh):
        self.fs.releasedir(fh)

    @_converting
    async def fsyncdir(self, fh, datasync):
        return None

    @_converting
    async def statfs(self, ctx):
        s = self.fs.statfs()
        out = pyfuse3.StatvfsData()
        out.f_bsize = s["bsize"]
        out.f_frsize = s["frsize"]
        out.f_blocks = s["blocks"]
        out.f_bfree = s["bfree"]
        out.f_bavail = s["bavail"]
        out.f_files = s["files"]
        out.f_ffree = s["ffree"]
        out.f_favail = s["favail"]
        out.f_namemax = s["namemax"]
        return out

    @_converting
    async def getxattr(self, inode, name, ctx):
        # ENOSYS, not ENOATTR: the kernel then stops sending getxattr at all (it answers
        # ENOTSUP itself), which saves the security.capability query before every write
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @_converting
    async def listxattr(self, inode, ctx):
        return []

    @_converting
    async def setxattr(self, inode, name, value, ctx):
        raise FsError(errno.ENOTSUP, "extended attributes are not stored")

    @_converting
    async def removexattr(self, inode, name, ctx):
        raise pyfuse3.FUSEError(pyfuse3.ENOATTR)


def mount_options(fsname: str, *, allow_other: bool, allow_root: bool, read_only: bool,
                  flags: tuple[str, ...] = ()) -> set[str]:
    """The FUSE mount options; ``flags``: kernel mount flags to add (noexec, nosuid, nodev)."""
    opts = set(pyfuse3.default_options) | set(flags)
    opts.add(f"fsname={fsname.replace(',', '_')}")
    opts.add("subtype=mountsync")
    opts.add("noatime")
    if allow_other:
        opts.add("allow_other")
    elif allow_root:
        opts.add("allow_root")
    if read_only:
        opts.add("ro")
    return opts


async def serve() -> None:
    """Run the FUSE session until unmounted or ``terminate()``."""
    await pyfuse3.main()


# The kernel refuses an invalidation when it no longer holds the entry (ENOENT), when
# the name now means something else (ENOTDIR, EBUSY, ENOTEMPTY: a directory renamed or
# replaced meanwhile; kernel 6.18 answered EINVAL for a name whose directory was being
# renamed over another, seen in CI) or when the session is going away (ENOTCONN, ENODEV,
# EBADF). Each only means there is nothing left to drop: the cached entry is gone or
# will time out.
EXPECTED_REFUSALS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EBUSY,
        errno.ENOTEMPTY,
        errno.EINVAL,
        errno.ENOTCONN,
        errno.ENODEV,
        errno.EBADF,
    }
)


async def invalidate_kernel_caches(
    receive, entry=pyfuse3.invalidate_entry, inode=pyfuse3.invalidate_inode
) -> None:
    """Consume (kind, args) from a trio channel and tell the kernel to drop caches.

    Both kernel calls may block until a related request is answered (a lookup in the
    parent, a rename), so they run in a worker thread, one at a time, while the trio
    loop goes on answering requests; never on the loop itself, where that wait would
    deadlock. pyfuse3's ``invalidate_entry_async`` is not used: its thread logs every
    refusal but ENOENT as an ERROR with a traceback. A refusal is a cache hint lost, and
    the entry TTL bounds the staleness: debug level, and only for unexpected errnos.
    On cancellation (shutdown) a call still blocked in the kernel is abandoned."""
    import trio

    async for kind, args in receive:
        if kind == "inode":
            call, what = functools.partial(inode, args[0]), f"inode {args[0]}"
        else:
            call, what = functools.partial(entry, args[0], os.fsencode(args[1])), f"entry {args[1]!r}"
        try:
            await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        except OSError as exc:
            if exc.errno not in EXPECTED_REFUSALS:
                name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                log.debug("kernel cache invalidation of %s refused: %s (%s)", what, name, exc)


def init(adapter: FuseAdapter, mountpoint: str, options: set[str]) -> None:
    pyfuse3.init(adapter, mountpoint, options)


def close(unmount: bool = True) -> None:
    pyfuse3.close(unmount=unmount)


def terminate() -> None:
    pyfuse3.terminate()


__all__ = ["FuseAdapter", "mount_options", "serve", "init", "close", "terminate", "ROOT_INO"]
