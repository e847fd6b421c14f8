"""The layering of docs/ARCHITECTURE.md, checked on the source (imports only, no execution):
only the FUSE adapter imports pyfuse3; only backend/s3*.py import boto3/botocore, only
backend/azure*.py the Azure SDK; and the core, cache and reconciler never reach up to the
adapter, the daemon or the command line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mountsync"

# third-party top-level package → the modules (relative to mountsync/) allowed to import it
THIRD_PARTY = {
    "pyfuse3": ("fuse/",),
    "boto3": ("backend/s3",),
    "botocore": ("backend/s3",),
    "azure": ("backend/azure",),
}
# lower layers must not import these modules of the package
UPWARD = ("mountsync.fuse", "mountsync.daemon", "mountsync.cli", "mountsync.control")
LOWER = ("core/", "cache/", "reconciler/", "backend/")


def imports_of(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved against the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = ["mountsync", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                found.update([module] + [f"{module}.{a.name}" for a in node.names])
            elif node.module:
                found.add(node.module)
    return found


def modules() -> list[tuple[str, set[str]]]:
    return [(str(p.relative_to(PACKAGE)), imports_of(p)) for p in sorted(PACKAGE.rglob("*.py"))]


def test_third_party_sdks_stay_in_their_modules():
    bad = []
    for rel, names in modules():
        for package, allowed in THIRD_PARTY.items():
            if any(n == package or n.startswith(package + ".") for n in names) and not rel.startswith(allowed):
                bad.append(f"{rel} imports {package}")
    assert bad == []


def test_lower_layers_do_not_import_upwards():
    bad = [f"{rel} imports {n}" for rel, names in modules() if rel.startswith(LOWER)
           for n in names if n.startswith(UPWARD)]
    assert bad == []


def test_the_check_sees_imports():
    """The walk finds what it is meant to: the adapter does import pyfuse3, s3.py boto3."""
    found = dict(modules())
    assert "pyfuse3" in found["fuse/adapter.py"]
    assert "boto3" in found["backend/s3.py"]
    assert "mountsync.backend.base" in found["backend/azure.py"]
