"""``mountsync versions PATH`` and ``mountsync restore PATH --version-id ID``: the CLI side
(the daemon's is ``mountsync.versions``).

PATH is a file inside a mount (it may have been deleted since); the mount is found by
walking up from it to the nearest directory that is a mount point served by a daemon of
this user. Restoring copies the version's bytes (fetched by the daemon into a private file
in its cache dir) into the mount at PATH: an ordinary write, uploaded and checked for
conflicts like any other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from . import control
from .errors import UserError
from .logs import fmt_bytes

VERSIONING_HINT = ("turn it on with: aws s3api put-bucket-versioning --bucket BUCKET "
                   "--versioning-configuration Status=Enabled")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("versions", help="list the versions a versioned bucket keeps of a file")
    p.add_argument("path", help="the file, inside a mount (it may have been deleted)")
    p.add_argument("--json", action="store_true", help="one JSON object (default: a table)")
    p = sub.add_parser("restore", help="bring back an older version of a file (written like any change)")
    p.add_argument("path", help="the file, inside a mount (it may have been deleted)")
    p.add_argument("--version-id", required=True, metavar="ID",
                   help="the version to bring back, as 'mountsync versions' shows it (required)")


def locate(path: str) -> tuple[str, str]:
    """(mountpoint, path inside it) of ``path``. Symlinks in the directories above the file
    are resolved, the file's own name is not (it may be a symlink inside the mount)."""
    head, name = os.path.split(os.path.abspath(path))
    full = os.path.join(os.path.realpath(head), name)
    candidate = os.path.dirname(full)
    while True:
        if os.path.ismount(candidate) and control.has_socket(candidate):
            return candidate, os.path.relpath(full, candidate)
        if candidate == os.path.dirname(candidate):
            raise UserError(f"{path} is not inside a mountsync mount; give the path of a file in one")
        candidate = os.path.dirname(candidate)


def _a_file(path: str, mountpoint: str, inside: str) -> None:
    full = os.path.join(mountpoint, inside)
    if os.path.isdir(full) and not os.path.islink(full):
        raise UserError(f"{path} is a directory: the bucket keeps versions of files; name a file in it")


def format_versions(inside: str, versions: list[dict]) -> str:
    if not versions:
        return f"the bucket holds no version of {inside}"
    width = max(len("VERSION ID"), *(len(v["version_id"]) for v in versions))
    lines = [f"{'VERSION ID':{width}}  {'LAST MODIFIED':19}  {'SIZE':>10}  NOTE"]
    for v in versions:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["last_modified"]))
        size = "-" if v["deleted"] else fmt_bytes(v["size"])
        notes = [n for n, on in (("current", v["latest"]), ("deleted here (delete marker)", v["deleted"]),
                                 (v.get("storage_class", ""), v.get("storage_class", "") not in ("", "STANDARD")))
                 if on]
        lines.append(f"{v['version_id']:{width}}  {when}  {size:>10}  {', '.join(notes)}".rstrip())
    return "\n".join(lines)


def cmd_versions(args: argparse.Namespace) -> int:
    mountpoint, inside = locate(args.path)
    _a_file(args.path, mountpoint, inside)
    reply = control.request(mountpoint, {"op": "versions", "path": inside}, timeout=120)
    if not reply.get("ok"):
        print(f"mountsync: versions failed: {reply.get('error')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    if not reply["versioning"]:
        print(f"mountsync: the bucket is not versioned: it keeps only the current version ({VERSIONING_HINT})",
              file=sys.stderr)
    print(format_versions(inside, reply["versions"]))
    if any(not v["latest"] and not v["deleted"] for v in reply["versions"]):
        print(f"\nbring one back with: mountsync restore {args.path} --version-id ID")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    mountpoint, inside = locate(args.path)
    _a_file(args.path, mountpoint, inside)
    target = os.path.join(mountpoint, inside)
    if os.path.islink(target):
        raise UserError(f"{args.path} is a symbolic link now: remove it first to restore a file there")
    reply = control.request(mountpoint, {"op": "fetch_version", "path": inside, "version_id": args.version_id},
                            timeout=None)
    if not reply.get("ok"):
        print(f"mountsync: restore failed: {reply.get('error')}", file=sys.stderr)
        return 1
    fetched = reply["file"]
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(fetched, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    except OSError as exc:
        raise UserError(f"cannot write {args.path}: {exc.strerror or exc}") from None
    finally:
        try:
            os.unlink(fetched)
        except FileNotFoundError:
            pass
    print(f"restored {args.path} from version {args.version_id} ({fmt_bytes(reply['size'])}); it goes to "
          f"the bucket like any change ('mountsync sync {mountpoint}' waits for it)")
    return 0
