"""Foreground first: how many transfers may start while programs are using the mount.

Background transfers share one interpreter lock and one trio loop with the FUSE
handlers. Eight upload threads signing requests, hashing and parsing responses make
every FUSE request wait for the interpreter (2,000 small creates took 12-25 s with
uploads running against 5 s with uploads held back). So while FUSE requests keep
arriving, only ``BUSY_SLOTS`` transfers run at once; once the mount has had no
request for ``QUIET`` seconds, all ``workers`` run. Transfers already running
finish; the cap only gates starting new ones, so a busy mount still makes progress.

``upload_slots`` is the pure decision; ``Pace`` holds the time of the last request.
Single-threaded: the adapter (through the core's ``ChangeSink.foreground``) and the
reconciler loop, both on the trio thread.
"""

from __future__ import annotations

import math

import trio

QUIET = 0.25  # seconds without a FUSE request after which the mount counts as idle
BUSY_SLOTS = 2  # transfers that may run while programs are using the mount


def upload_slots(workers: int, since_last_request: float, *, quiet: float = QUIET,
                 busy_slots: int = BUSY_SLOTS) -> int:
    """How many transfers may run now: all ``workers`` when the mount has been quiet for
    ``quiet`` seconds, else at most ``busy_slots`` (never fewer than one)."""
    if since_last_request >= quiet:
        return workers
    return max(1, min(workers, busy_slots))


class Pace:
    def __init__(self, quiet: float = QUIET, busy_slots: int = BUSY_SLOTS) -> None:
        self.quiet = quiet
        self.busy_slots = busy_slots
        self.last_request = -math.inf  # trio time of the last foreground request

    def request(self) -> None:
        """A program is using the mount now."""
        self.last_request = trio.current_time()

    def slots(self, workers: int) -> int:
        return upload_slots(workers, trio.current_time() - self.last_request,
                            quiet=self.quiet, busy_slots=self.busy_slots)

    def quiet_at(self) -> float:
        """When the mount counts as idle if no request comes before."""
        return self.last_request + self.quiet
