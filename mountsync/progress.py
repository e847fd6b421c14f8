"""What ``mountsync sync`` shows while it waits.

The sync request blocks in the daemon; meanwhile the command polls the daemon's
``progress`` (the reconciler's counts, no request to the endpoint) and shows how much of
what was pending when the sync began is done: a bar on a terminal (tqdm: files, bytes,
rate, time left), one plain line every ``PLAIN_EVERY`` seconds otherwise, nothing with
``--quiet``. ``Progress`` and ``plain_line`` are pure; ``watch`` is the I/O shell.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .logs import fmt_bytes

POLL = 0.5  # seconds between progress requests
PLAIN_EVERY = 5.0  # seconds between plain lines (not a terminal)


@dataclass(frozen=True)
class Progress:
    """Done and total of the work pending when the sync began (files: uploads, renames and
    deletes; bytes: of the uploads). Work queued after the start raises the totals."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


def items_left(st: dict) -> tuple[int, int]:
    """(items, bytes) still to do in a ``progress``/``status`` reply; bytes already sent of
    uploads under way count as done."""
    files = st.get("pending_files", 0) + len(st.get("pending_deletes", []))
    sent = sum(p.get("sent", 0) for p in st.get("pending", []))
    return files, max(0, st.get("pending_bytes", 0) - sent)


def progress(first: dict, now: dict) -> Progress:
    files0, bytes0 = items_left(first)
    files1, bytes1 = items_left(now)
    files_total, bytes_total = max(files0, files1), max(bytes0, bytes1)
    return Progress(files_total - files1, files_total, bytes_total - bytes1, bytes_total)


def plain_line(p: Progress, seconds: float) -> str:
    """``sync: 12 of 40 file(s), 3.1 MiB of 9.0 MiB, 1.2 MiB/s, about 5 s left``."""
    line = f"sync: {p.files_done} of {p.files_total} file(s), {fmt_bytes(p.bytes_done)} of {fmt_bytes(p.bytes_total)}"
    if seconds > 0 and p.bytes_done > 0:
        rate = p.bytes_done / seconds
        line += f", {fmt_bytes(int(rate))}/s, about {(p.bytes_total - p.bytes_done) / rate:.0f} s left"
    return line


def watch(ask: Callable[[], dict], done: threading.Event, *, quiet: bool, tty: bool | None = None) -> None:
    """Show progress until ``done`` is set (``ask``: one ``progress`` request)."""
    if quiet:
        done.wait()
        return
    tty = sys.stderr.isatty() if tty is None else tty
    try:
        first = ask()
    except Exception:  # noqa: BLE001 - progress is a courtesy: the sync itself reports its outcome
        done.wait()
        return
    started = last_line = time.monotonic()
    bar = None
    if tty:
        from tqdm import tqdm  # type: ignore[import-untyped]  # (no stubs; used in this function only)

        bar = tqdm(total=max(1, items_left(first)[1]), unit="B", unit_scale=True, unit_divisor=1024,
                   desc="sync", file=sys.stderr, leave=True)
    try:
        while not done.wait(POLL):
            try:
                p = progress(first, ask())
            except Exception:  # noqa: BLE001 - see above
                continue
            if bar is not None:
                bar.total = max(1, p.bytes_total)
                bar.n = p.bytes_done
                bar.set_postfix_str(f"{p.files_done}/{p.files_total} files", refresh=False)
                bar.refresh()
            elif time.monotonic() - last_line >= PLAIN_EVERY:
                print(plain_line(p, time.monotonic() - started), file=sys.stderr, flush=True)
                last_line = time.monotonic()
        if bar is not None:
            final = progress(first, ask())
            bar.total, bar.n = max(1, final.bytes_total), final.bytes_done
            bar.set_postfix_str(f"{final.files_done}/{final.files_total} files", refresh=False)
    except Exception:  # noqa: BLE001 - see above
        pass
    finally:
        if bar is not None:
            bar.close()
