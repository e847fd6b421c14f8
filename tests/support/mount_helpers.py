"""Helpers for the mount tests: running the CLI, looking at the bucket, building file trees."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

MiB = 1024 * 1024


def run_cli(env: dict, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """``python -m mountsync ARGS`` in a subprocess; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mountsync", *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def list_keys(client, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def file_keys(client, bucket: str) -> set[str]:
    """Every key except directory markers (zero-byte keys ending in ``/``)."""
    return {k for k in list_keys(client, bucket) if not k.endswith("/")}


def get_bytes(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def key_exists(client, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def etags(client, bucket: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["ETag"]
    return out


def is_mounted(path: os.PathLike | str) -> bool:
    """Whether ``path`` is a mount point (per /proc/self/mounts; never stats the path)."""
    real = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
    with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                where = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
                where = where.replace("\\134", "\\")
                if where == real:
                    return True
    return False


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until process ``pid`` has exited (or is a zombie); False if it is still there
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# Directories of the 200-file tree: nesting, spaces, unicode (NFC and a combining mark).
TREE_DIRS = [
    "",
    "docs",
    "docs/with space",
    "docs/with space/ünïcödé",
    "日本語",
    "日本語/深い/さらに深い",
    "a/b/c/d",
    "two  spaces",
    "emoji 🚀",
    "cafe\u0301",  # decomposed é: must round-trip byte for byte
]
FIXED_SIZES = [0, 1, 2, 4095, 4096, 4097, 65535, 131072, 131073, 1 * MiB, 1 * MiB + 1, 2 * MiB - 1, 2 * MiB]


def make_tree(root: Path, count: int = 200, seed: int = 1234, max_size: int = 2 * MiB) -> dict[str, Path]:
    """Write ``count`` files of 0 B..``max_size`` under ``root``; return {relative path: file}."""
    rnd = random.Random(seed)
    files: dict[str, Path] = {}
    name_styles = [
        "file {i}.bin", "naïve résumé {i}.txt", "データ_{i}.dat", "ε-{i}", ".hidden {i}",
        "plain{i}", "mixed Ünï cödé 🚀 {i}.log", "with'quote {i}", "(paren) [{i}]",
    ]
    for i in range(count):
        d = TREE_DIRS[i % len(TREE_DIRS)]
        name = name_styles[i % len(name_styles)].format(i=i)
        rel = f"{d}/{name}" if d else name
        size = FIXED_SIZES[i] if i < len(FIXED_SIZES) else min(max_size, int(2 ** rnd.uniform(0, 21)) - 1)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(size))
        files[rel] = path
    return files
