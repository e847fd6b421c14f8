"""A training-style loop that checkpoints into a mountsync mount and resumes after a crash.

    python examples/checkpoint/train.py --dir /mnt/bucket/run1 --steps 1000 --every 10

Each step updates the "model" (here a 64 KiB state derived deterministically from the
previous one, so a resumed run can be checked); every ``--every`` steps the state is
saved as ``ckpt-STEP.bin`` the way checkpoints should be saved on any filesystem:

1. write ``ckpt-STEP.bin.tmp`` (a header with the step and a SHA-256 of the state,
   then the state), ``fsync`` it;
2. ``rename`` it to ``ckpt-STEP.bin`` (atomic: a reader sees the old set of
   checkpoints or the new one, never a half-written file);
3. delete all but the newest ``--keep`` checkpoints.

At start, the newest checkpoint whose checksum is right is loaded and the loop goes on
from the step after it: killed at any moment (the daemon with it), at most the steps
since the last checkpoint are done again. On mountsync, the journal makes a closed and
renamed file survive a SIGKILL of the daemon; the upload happens in the background.
Prints ``resumed from step N`` (or ``started fresh``) and ``saved step N`` lines.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from pathlib import Path

STATE_BYTES = 64 * 1024
MAGIC = b"CKPT1"
NAME = re.compile(r"^ckpt-(\d{8})\.bin$")


def initial_state() -> bytes:
    return hashlib.sha256(b"seed").digest() * (STATE_BYTES // 32)


def train_step(state: bytes, step: int) -> bytes:
    """The next state: deterministic, so any resumed run can be checked against a fresh one."""
    digest = hashlib.sha256(state[:64] + step.to_bytes(8, "big")).digest()
    return digest + state[:-32]


def encode(step: int, state: bytes) -> bytes:
    return MAGIC + step.to_bytes(8, "big") + hashlib.sha256(state).digest() + state


def decode(blob: bytes) -> tuple[int, bytes] | None:
    """(step, state) of a complete checkpoint, None for anything else."""
    if len(blob) != len(MAGIC) + 8 + 32 + STATE_BYTES or not blob.startswith(MAGIC):
        return None
    step = int.from_bytes(blob[5:13], "big")
    digest, state = blob[13:45], blob[45:]
    return (step, state) if hashlib.sha256(state).digest() == digest else None


def newest_checkpoint(directory: Path) -> tuple[int, bytes] | None:
    names = sorted((n for n in os.listdir(directory) if NAME.match(n)), reverse=True)
    for name in names:
        loaded = decode((directory / name).read_bytes())
        match = NAME.match(name)
        if loaded is not None and match is not None and loaded[0] == int(match.group(1)):
            return loaded
        print(f"skipping damaged checkpoint {name}", flush=True)
    return None


def save(directory: Path, step: int, state: bytes, keep: int) -> None:
    final = directory / f"ckpt-{step:08d}.bin"
    tmp = directory / (final.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, encode(step, state))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, final)
    for old in sorted((n for n in os.listdir(directory) if NAME.match(n)), reverse=True)[keep:]:
        os.unlink(directory / old)
    print(f"saved step {step}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, type=Path, help="checkpoint directory (inside the mount)")
    p.add_argument("--steps", type=int, default=1000, help="train until this step")
    p.add_argument("--every", type=int, default=10, help="checkpoint every this many steps")
    p.add_argument("--keep", type=int, default=2, help="checkpoints kept")
    p.add_argument("--step-seconds", type=float, default=0.01, help="time one step takes")
    args = p.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    loaded = newest_checkpoint(args.dir)
    if loaded is None:
        step, state = 0, initial_state()
        print("started fresh", flush=True)
    else:
        step, state = loaded
        print(f"resumed from step {step}", flush=True)
    while step < args.steps:
        step += 1
        state = train_step(state, step)
        time.sleep(args.step_seconds)
        if step % args.every == 0 or step == args.steps:
            save(args.dir, step, state, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
