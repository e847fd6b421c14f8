"""mount(8) helper: ``mount -t fuse.mountsync BUCKET[/PREFIX/] MOUNTPOINT -o opts``.

mount(8) runs ``/sbin/mount.fuse.mountsync SOURCE MOUNTPOINT [-sfnv] [-N ns]
[-o OPTIONS] [-t fuse.mountsync]``; the installed wrapper (see
packaging/mount.fuse.mountsync) runs ``python -I -m mountsync.mount_helper "$@"``.
This module turns the ``-o`` option string into ``mountsync mount`` flags and
execs ``mountsync mount ...`` with the same interpreter, isolated (``-I``) and
from this copy of the package (mountsync.spawn): mount(8) may run in any
directory, with any environment, and neither may add code (docs/SECURITY.md).

Mapping of each comma-separated option:

* ``name``        -> ``--name``         (underscores become dashes)
* ``name=value``  -> ``--name value``   (split at the first ``=`` only)
* ``ro``          -> ``--read-only``
* ``noexec``, ``nosuid``, ``nodev`` -> the same kernel mount flags (``--noexec`` ...)
* generic mount options that are not ours (``rw``, ``defaults``, ``auto``,
  ``_netdev``, ``nofail``, ``x-systemd.*``, ``comment=...``, ...) are dropped;
  those mountsync cannot honour (``sync``, ``dirsync``, ``atime``, ``strictatime``,
  ``mand``) are dropped with a warning on stderr saying why.
"""

from __future__ import annotations

import os
import sys

from .spawn import mountsync_argv

# Options mount(8), fstab or systemd use for themselves; never passed on.
GENERIC_OPTIONS = frozenset(
    {
        "rw",
        "defaults",
        "auto",
        "noauto",
        "user",
        "nouser",
        "users",
        "owner",
        "group",
        "exec",
        "suid",
        "dev",
        "_netdev",
        "nofail",
        "async",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "nostrictatime",
        "lazytime",
        "nolazytime",
        "silent",
        "loud",
        "helper",
    }
)
# Options a user may expect to work that mountsync cannot honour: dropped with a warning.
UNSUPPORTED = {
    "sync": "writes go through the write-back cache; fsync_upload makes fsync wait for the upload",
    "dirsync": "directory changes go through the write-back cache",
    "atime": "access times are not kept",
    "strictatime": "access times are not kept",
    "mand": "mandatory locks are not supported",
}

# Prefixes of userspace-only options (util-linux: x-*, e.g. x-systemd.automount,
# x-mount.mkdir, x-gvfs-show) and comments.
GENERIC_PREFIXES = ("x-", "comment=")

# Options whose flag name differs from the plain underscore->dash rule.
RENAMED = {"ro": "read-only"}


def _is_generic(name: str, item: str) -> bool:
    return name in GENERIC_OPTIONS or item.startswith(GENERIC_PREFIXES)


def translate(source: str, mountpoint: str, options_string: str | None) -> list[str]:
    """Build the argv for ``mountsync`` (starting with ``"mount"``).

    >>> translate("b/p/", "/mnt/b", "rw,ro,allow_delete,endpoint_url=http://x")
    ['mount', 'b/p/', '/mnt/b', '--read-only', '--allow-delete', '--endpoint-url', 'http://x']
    """
    argv = ["mount", source, mountpoint]
    for raw in (options_string or "").split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not name or _is_generic(name, item):
            continue
        if name in UNSUPPORTED:
            print(f"mount.fuse.mountsync: ignoring option {name!r}: {UNSUPPORTED[name]}", file=sys.stderr)
            continue
        flag = "--" + RENAMED.get(name, name.replace("_", "-"))
        argv.append(flag)
        if sep:
            argv.append(value)
    return argv


def _usage(msg: str) -> int:
    print(f"mount.fuse.mountsync: {msg}", file=sys.stderr)
    print(
        "usage: mount.fuse.mountsync BUCKET[/PREFIX/] MOUNTPOINT [-sfnv] [-o opt[,opt=val...]]",
        file=sys.stderr,
    )
    return 1


def parse_helper_args(argv: list[str]) -> tuple[list[str], str, bool]:
    """Parse mount(8)'s helper command line.

    Returns (positionals, joined option string, fake). Raises ValueError on
    a malformed command line.
    """
    positionals: list[str] = []
    options: list[str] = []
    fake = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "-t", "-N"):
            if i + 1 >= len(argv):
                raise ValueError(f"option {arg} needs a value")
            if arg == "-o":
                options.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            options.append(arg[2:])
        elif arg.startswith(("-t", "-N")) and len(arg) > 2:
            pass
        elif arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= set("sfnvrw"):
            # -s sloppy, -n no mtab, -v verbose, -r/-w ro/rw, -f fake.
            if "f" in arg:
                fake = True
            if "r" in arg:
                options.append("ro")
        elif arg.startswith("-") and len(arg) > 1:
            raise ValueError(f"unknown option {arg}")
        else:
            positionals.append(arg)
        i += 1
    return positionals, ",".join(o for o in options if o), fake


def main(argv: list[str] | None = None) -> int:
    """Exec ``mountsync mount ...`` (isolated); returns only on error or -f."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        positionals, options, fake = parse_helper_args(argv)
    except ValueError as exc:
        return _usage(str(exc))
    if len(positionals) != 2:
        return _usage("expected SOURCE and MOUNTPOINT")
    source, mountpoint = positionals
    args = mountsync_argv(*translate(source, mountpoint, options))
    if fake:  # mount -f: do everything but the mount itself
        return 0
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        print(f"mount.fuse.mountsync: cannot run {args[0]}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0  # not reached: execvp does not return on success


if __name__ == "__main__":
    sys.exit(main())
