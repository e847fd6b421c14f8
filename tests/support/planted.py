"""Plant look-alike packages that must never be imported (docs/SECURITY.md: item "code from the cwd").

``plant(root, marker)`` writes ``root/mountsync/__init__.py`` and
``root/moto/__init__.py``; importing either appends a line to ``marker``. A test
runs mountsync with ``root`` as its working directory (or on PYTHONPATH) and
then checks that ``marker`` does not exist.
"""

from __future__ import annotations

import sys
from pathlib import Path

_CODE = (
    "import os, sys\n"
    "with open({marker!r}, 'a') as f:\n"
    "    f.write(f'planted {name} imported by pid {{os.getpid()}}: {{sys.argv}}\\n')\n"
)


def plant(root: Path, marker: Path) -> Path:
    for name in ("mountsync", "moto"):
        pkg = root / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(_CODE.format(marker=str(marker), name=name))
    return root


def planted_lines(marker: Path) -> str:
    return marker.read_text() if marker.exists() else ""


def cli_script() -> str:
    """The installed ``mountsync`` console script next to this interpreter."""
    script = Path(sys.executable).with_name("mountsync")
    assert script.exists(), f"the mountsync console script is not installed at {script} (run make setup)"
    return str(script)
