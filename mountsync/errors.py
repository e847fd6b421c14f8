"""Errors that carry their errno from creation.

Invariant: every error the filesystem core raises towards the FUSE adapter is an
``FsError`` (or a subclass) whose ``errno`` is final; the adapter converts it
exactly once. Anything else reaching the adapter is a bug and becomes EIO with a
logged traceback.

``UserError`` is what the command line prints as one line (what, why, what to
do) before exiting non-zero.
"""

from __future__ import annotations

import errno as _errno


class FsError(Exception):
    """A filesystem operation failed with a definite errno."""

    def __init__(self, errno: int, message: str = "") -> None:
        super().__init__(message or _errno.errorcode.get(errno, str(errno)))
        self.errno = errno

    def __repr__(self) -> str:
        return f"FsError({_errno.errorcode.get(self.errno, self.errno)}, {str(self)!r})"


class UserError(Exception):
    """A failure the user can act on; printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
