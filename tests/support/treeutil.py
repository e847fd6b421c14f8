"""Tree snapshots for comparing a directory on a mount with a local copy (tests/programs)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """{relative path: (kind, mode bits, content or link target)} of everything below ``root``.

    Directories named in ``skip`` (at any depth) are left out.
    """
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(dirnames) + sorted(filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


def describe_diff(a: dict, b: dict, limit: int = 10) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    parts = []
    if only_a:
        parts.append(f"{len(only_a)} only in first: {only_a[:limit]}")
    if only_b:
        parts.append(f"{len(only_b)} only in second: {only_b[:limit]}")
    if changed:
        def short(v):
            return tuple(x if not isinstance(x, bytes) else f"<{len(x)} bytes>" for x in v)
        parts.append(f"{len(changed)} differ: " + "; ".join(f"{k}: {short(a[k])} != {short(b[k])}"
                                                            for k in changed[:limit]))
    return "\n".join(parts) or "no difference"
