"""Command lines for the Python processes mountsync starts (daemon, CLI calls, moto).

``python -m mountsync`` puts the working directory first on ``sys.path`` and
obeys PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONUSERBASE...: a
``mountsync/`` package planted by another user in the directory where root
runs ``mountsync mount`` (or on a PYTHONPATH that ``su`` kept) would run as root
in the daemon. So every Python process mountsync starts runs the interpreter
in isolated mode (``-I``: neither the working directory nor the environment
adds to ``sys.path``, no user site-packages) and imports the very copy of the
package that is running now: the daemon runs the same code as the CLI that
started it, whether that copy is installed or not. See docs/SECURITY.md.
"""

from __future__ import annotations

import os
import sys


def package_root() -> str:
    """The directory that holds the ``mountsync`` package running now."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mountsync_argv(*args: str) -> list[str]:
    """argv that runs ``mountsync ARGS`` with this interpreter, isolated, from this copy of the package.

    The root is added to ``sys.path`` only when isolated mode does not already
    have it (an installed package is found in site-packages as usual)."""
    boot = (f"import sys; root = {package_root()!r}; root in sys.path or sys.path.insert(0, root); "
            "from mountsync.cli import main; sys.exit(main())")
    return [sys.executable, "-I", "-c", boot, *args]


def module_argv(module: str, *args: str) -> list[str]:
    """argv that runs an installed module (``python -I -m MODULE ARGS``), e.g. ``moto.server``."""
    return [sys.executable, "-I", "-m", module, *args]
