"""mountsync(1), rendered from the argument parser (``python -m mountsync.manpage``).

docs/mountsync.1 is this module's output, kept in the repository and installed with
the package (share/man/man1); a test fails when it no longer matches the parser.
"""

from __future__ import annotations

import argparse

from . import __version__
from .cli import build_parser

DESCRIPTION = (
    "mountsync mounts an S3 bucket (or any S3-compatible store) as a local folder. Every "
    "POSIX operation works on an on-disk write-back cache; a background reconciler uploads "
    "changes, survives crashes and outages, and never silently overwrites another writer: "
    "on a conflict both versions are kept, the local one under a conflict name. Deleting "
    "data the mount did not create needs --allow-delete."
)

FILES = [
    ("~/.cache/mountsync/BUCKET-HASH", "the default cache directory: cached and not yet uploaded data, "
                                       "and the journal (under $XDG_CACHE_HOME when set)"),
    ("CACHE_DIR/daemon.log", "the default log: one line per upload, rename, delete and conflict"),
    ("/sbin/mount.fuse.mountsync", "the mount(8) helper, for /etc/fstab (see the packaging examples "
                                   "in share/mountsync/packaging)"),
]

EXIT = [("0", "success"), ("1", "an error (or a sync that did not finish), described in one line on stderr"),
        ("2", "a usage error or a bad option value"),
        ("3", "unmount done with uploads still pending (kept in the cache, uploaded at the next mount)")]


def _esc(text: str) -> str:
    """Text safe in roff: backslashes and hyphens escaped, no line starting with a dot."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _option_lines(p: argparse.ArgumentParser) -> list[str]:
    out = []
    for a in p._actions:
        if not a.option_strings or a.help == argparse.SUPPRESS or "--help" in a.option_strings:
            continue
        names = ", ".join(f"\\fB{_esc(s)}\\fR" for s in a.option_strings)
        if a.nargs != 0:
            metavar = a.metavar if isinstance(a.metavar, str) else a.dest.upper()
            names += f" \\fI{_esc(metavar)}\\fR"
        out += [".TP", names, _esc(a.help or "")]
    return out


def render() -> str:
    parser = build_parser()
    sub = _subparsers(parser)
    helps = {c.dest: c.help for c in sub._choices_actions}
    lines = [
        f'.TH MOUNTSYNC 1 "" "mountsync {__version__}" "User Commands"',
        ".SH NAME", "mountsync \\- mount an S3 bucket as a local folder, with a write\\-back cache",
        ".SH SYNOPSIS",
        ".B mountsync mount", ".I BUCKET[/PREFIX/] MOUNTPOINT", "[\\fIOPTIONS\\fR]", ".br",
        ".B mountsync", "{\\fBsync\\fR|\\fBstatus\\fR|\\fBconflicts\\fR|\\fBunmount\\fR} \\fIMOUNTPOINT\\fR", ".br",
        ".B mountsync --version",
        ".SH DESCRIPTION", _esc(DESCRIPTION),
        ".SH COMMANDS",
    ]
    for name, p in sub.choices.items():
        lines += [".TP", f"\\fB{name}\\fR", _esc(helps.get(name) or "")]
        if name != "mount":
            opts = _option_lines(p)
            if opts:
                lines += [".RS"] + opts + [".RE"]
    lines += [".SH MOUNT OPTIONS",
              _esc("Each option can also be given in the --config file, without the leading dashes.")]
    lines += _option_lines(sub.choices["mount"])
    lines += [".SH FILES"]
    for path, what in FILES:
        lines += [".TP", f"\\fI{_esc(path)}\\fR", _esc(what)]
    lines += [".SH EXIT STATUS"]
    for code, what in EXIT:
        lines += [".TP", f"\\fB{code}\\fR", _esc(what)]
    lines += [".SH SEE ALSO", "\\fBmount\\fR(8), \\fBfusermount3\\fR(1), \\fBsystemd.mount\\fR(5)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
