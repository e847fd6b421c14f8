"""Pure conflict rules: conflict names and what each strategy does with two versions.

No I/O here; ``reconciler.conflict`` carries the decisions out (``ConflictCopies`` is
the one place that names, records and writes conflict copies).

Names: ``STEM.conflict-YYYYMMDD-HHMMSS-HOST.EXT`` next to the original.

- The extension is the last suffix (``report.pdf`` → ``report.conflict-…pdf``),
  or a known compound one (``.tar.gz``, ``.tar.bz2``, ``.tar.xz``, ``.tar.zst``,
  ``.tar.lz4``): ``data.tar.gz`` → ``data.conflict-….tar.gz``.
- Dotfiles without a further dot and names without an extension get the
  suffix at the end: ``.bashrc`` → ``.bashrc.conflict-…``, ``Makefile`` →
  ``Makefile.conflict-…``. A dotfile with an extension keeps it:
  ``.config.yaml`` → ``.config.conflict-….yaml``.
- HOST is the short host name with anything but ``[A-Za-z0-9_-]`` replaced by ``-``.
- When the name is taken, ``-2``, ``-3``, … is appended to the HOST part.
- A name that would exceed 255 bytes shortens the stem.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

COMPOUND_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tar.lz4")
STRATEGIES = ("keep-both", "local-wins", "remote-wins", "newest-wins", "manual")


def split_extension(name: str) -> tuple[str, str]:
    """``(stem, ext)`` with ``ext`` including its leading dot, or ``""``."""
    lower = name.lower()
    for ext in COMPOUND_EXTENSIONS:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], name[-len(ext):]
    body = name[1:] if name.startswith(".") else name
    dot = body.rfind(".")
    if dot <= 0 or dot == len(body) - 1:
        return name, ""
    cut = dot + (1 if name.startswith(".") else 0)
    return name[:cut], name[cut:]


def safe_host(host: str) -> str:
    short = host.split(".", maxsplit=1)[0] or "host"
    return re.sub(r"[^A-Za-z0-9_-]", "-", short)[:40]


_CONFLICT_RE = re.compile(r"\.conflict-\d{8}-\d{6}-[A-Za-z0-9_-]+")


def strip_conflict_suffix(name: str) -> str:
    """The original name of a conflict copy (``a.conflict-…-h.txt`` → ``a.txt``); others unchanged."""
    return _CONFLICT_RE.sub("", name, count=1)


def conflict_name(name: str, when: float, host: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The conflict name for ``name`` at time ``when`` (UTC), not in ``taken``."""
    stem, ext = split_extension(name)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
    h = safe_host(host)
    n = 1
    while True:
        suffix = f".conflict-{stamp}-{h}" + (f"-{n}" if n > 1 else "")
        room = 255 - len((suffix + ext).encode("utf-8", "surrogateescape"))
        s = stem
        while len(s.encode("utf-8", "surrogateescape")) > room:
            s = s[:-1]
        candidate = s + suffix + ext
        if candidate not in taken:
            return candidate
        n += 1


@dataclass(frozen=True)
class Resolution:
    """What to do with the two versions of one conflicted key.

    ``upload_local_as``: ``"original"`` (overwrite the remote version),
    ``"conflict-name"`` (keep both) or ``None`` (the local version is not
    uploaded). ``recover``: which version is copied into the recovery folder
    before it is discarded (``"local"``, ``"remote"`` or ``None``).
    ``keep_pending``: the local edit stays pending (manual).
    """

    upload_local_as: str | None
    recover: str | None
    keep_pending: bool = False
    winner: str = "both"


def decide(strategy: str, local_mtime_ns: int, remote_mtime_ns: int | None, remote_exists: bool) -> Resolution:
    """The resolution of a conflict between a local edit and a changed remote object.

    ``remote_exists`` is False when the conflict is a remote delete under a local
    edit: then the local edit is always uploaded under the original name
    (nothing remote to lose), whatever the strategy, except ``manual``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown conflict strategy {strategy!r}")
    if not remote_exists:
        if strategy == "manual":
            return Resolution(None, None, keep_pending=True, winner="none")
        return Resolution("original", None, winner="local")
    if strategy == "keep-both":
        return Resolution("conflict-name", None, winner="both")
    if strategy == "local-wins":
        return Resolution("original", "remote", winner="local")
    if strategy == "remote-wins":
        return Resolution(None, "local", winner="remote")
    if strategy == "newest-wins":
        if remote_mtime_ns is not None and remote_mtime_ns > local_mtime_ns:
            return Resolution(None, "local", winner="remote")
        return Resolution("original", "remote", winner="local")
    return Resolution(None, None, keep_pending=True, winner="none")
