"""What a mount trusts on disk: the cache dir and the files in it (docs/SECURITY.md).

A daemon often runs as root. Anyone who can write to its cache dir, or to a
directory above it, could swap the cache dir or plant a symbolic link in it
(``lock -> /etc/shadow``) and make root overwrite a file of their choosing.
So, before anything is opened:

- the cache dir must be owned by the mounting user and not writable by group
  or others (a looser *read* mode is tightened to 0700);
- every directory above it must be owned by root or the mounting user and not
  writable by group or others, unless it has the sticky bit (like /tmp);
- every symbolic link on the way to it must be owned by root or the user; the
  cache dir is then used by its real path, which has no links left;
- directories created for it, the cache dir included, are created 0700;
- a link in place of one of the files the daemon opens there (``lock``,
  ``daemon.log``, ``journal.db*``, ``data``, ``snap``, ``recovery``) is refused,
  and every file in the cache dir is opened with O_NOFOLLOW anyway.

Once these hold, no other user can change any name on the path, so the checks
cannot be raced. Every refusal is a ``UserError`` of one line.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from .errors import UserError

# Names in the cache dir that the daemon opens or creates (sqlite adds the -suffixes).
FILES = ("lock", "daemon.log", "journal.db", "journal.db-wal", "journal.db-shm", "journal.db-journal")
DIRS = ("data", "snap", "recovery")

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _others_can_write(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _check_link_owners(path: str, me: int) -> None:
    """Every symbolic link met while resolving ``path`` is owned by root or ``me``."""
    resolved = "/"
    for part in path.strip("/").split("/"):
        if not part:
            continue
        here = os.path.join(resolved, part)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            return  # the rest is created by us
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, me):
                raise UserError(f"cache dir {path}: the path goes through {here}, a symbolic link owned by "
                                f"uid {st.st_uid}: that user chooses where it points; give the real path")
            here = os.path.realpath(here)
        resolved = here


def _check_parent(cache_dir: str, parent: str, st: os.stat_result, me: int) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"cache dir {cache_dir}: {parent} is not a directory")
    if st.st_uid not in (0, me):
        raise UserError(f"cache dir {cache_dir} is inside {parent}, which is owned by uid {st.st_uid}: "
                        "that user could swap the cache dir; use a --cache-dir under a directory only "
                        "you or root can change")
    if _others_can_write(st.st_mode) and not st.st_mode & stat.S_ISVTX:
        raise UserError(f"cache dir {cache_dir} is inside {parent}, which is writable by other users "
                        f"(mode {stat.S_IMODE(st.st_mode):04o}, no sticky bit): they could swap the cache dir; "
                        "use a --cache-dir under a directory only you or root can change")


def _check_cache_dir(cache_dir: str, st: os.stat_result, me: int) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"cache dir {cache_dir} is not a directory: remove it or pass another --cache-dir")
    if st.st_uid != me:
        raise UserError(f"cache dir {cache_dir} is owned by uid {st.st_uid}, not by you (uid {me}): a mount "
                        "never uses another user's cache dir; pass a --cache-dir of your own")
    if _others_can_write(st.st_mode):
        raise UserError(f"cache dir {cache_dir} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                        f"they could have planted files in it; check its contents, then chmod 700 {cache_dir}, "
                        "or pass another --cache-dir")


def _check_contents(cache_dir: str) -> None:
    for name in FILES + DIRS:
        try:
            st = os.lstat(os.path.join(cache_dir, name))
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise UserError(f"cache dir {cache_dir}: {name} is a symbolic link; mountsync never follows links "
                            "in its cache dir: remove it (and find out who made it)")
        want_dir = name in DIRS
        if stat.S_ISDIR(st.st_mode) != want_dir or not (want_dir or stat.S_ISREG(st.st_mode)):
            kind = "a directory" if want_dir else "a regular file"
            raise UserError(f"cache dir {cache_dir}: {name} is not {kind}: remove it")


def prepare_cache_dir(path: str) -> str:
    """Check (and create, 0700) the cache dir and the directories above it; returns its real path.

    Raises ``UserError`` if another user could change the cache dir or anything
    on the way to it, or if a file the daemon opens there is a link."""
    me = os.geteuid()
    path = os.path.abspath(path)
    _check_link_owners(path, me)
    real = os.path.realpath(path)
    current = "/"
    parts = [p for p in real.split("/") if p]
    for part in parts:
        parent_st = os.lstat(current)
        _check_parent(real, current, parent_st, me)
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o700)
            os.chmod(current, 0o700)  # whatever the umask
        except FileExistsError:
            pass
        except OSError as exc:
            raise UserError(f"cannot create cache dir {real}: {current}: {exc.strerror}") from None
    st = os.lstat(real)
    _check_cache_dir(real, st, me)
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(real, 0o700)
    _check_contents(real)
    return real


def open_private(path: str, flags: int) -> int:
    """``os.open`` of a file mountsync owns (created 0600), never through a symbolic link.

    A regular file that belongs to another user is refused too (someone made it
    in advance to read what we write); a device such as /dev/null is fine."""
    try:
        fd = os.open(path, flags | NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; mountsync does not write through links: "
                            "remove it") from None
        raise UserError(f"cannot open {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid != os.geteuid():
        os.close(fd)
        raise UserError(f"{path} belongs to uid {st.st_uid}, not to you: mountsync writes only to its own "
                        "files; remove it or choose another path")
    return fd


def lock_cache_dir(path: str) -> int:
    """Take the one-daemon-per-cache-dir lock; returns the lock fd (held until exit)."""
    fd = open_private(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            other = os.pread(fd, 32, 0).decode().strip()
        except OSError:
            other = "?"
        os.close(fd)
        raise UserError(f"cache dir {path} is in use by another mountsync daemon (pid {other}); "
                        "unmount that mount first or pass a different --cache-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def check_private_dir(path: str, what: str) -> None:
    """``path`` is a real directory of the caller's that no one else may write to or list."""
    me = os.geteuid()
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be used: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{what} {path} is a symbolic link: remove it, or set MOUNTSYNC_RUNTIME_DIR "
                        "to a directory of your own")
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is not a directory: remove it")
    if st.st_uid != me:
        raise UserError(f"{what} {path} is owned by uid {st.st_uid}, not by you (uid {me}): it may be a trap; "
                        "remove it, or set MOUNTSYNC_RUNTIME_DIR to a directory of your own")
    if stat.S_IMODE(st.st_mode) & 0o077:
        detail = "writable by other users" if _others_can_write(st.st_mode) else "open to other users"
        raise UserError(f"{what} {path} is {detail} (mode {stat.S_IMODE(st.st_mode):04o}): "
                        f"chmod 700 {path}, or set MOUNTSYNC_RUNTIME_DIR to a private directory")
