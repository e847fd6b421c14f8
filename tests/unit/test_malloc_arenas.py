"""The daemon caps glibc's malloc arenas, unless the user chose a number."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "from mountsync.malloc_arenas import limit_malloc_arenas; print(limit_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_the_cap_is_set_on_glibc():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"


def test_the_users_malloc_arena_max_is_left_alone():
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False"
