"""The bucket of the core model (see ``core_model.py``): a MemoryStore whose calls from the
mount pass a crash gate and race hooks, and another writer that bypasses both."""

from __future__ import annotations

import functools
import threading

from mountsync.backend.base import TransientError
from mountsync.backend.memory import MemoryStore

MTIMES = {None: None, "old": {"mtime": "1"}, "future": {"mtime": "4000000000"}}



PATHS = ("a.txt", "b.txt", "c", "d/e.txt")  # the paths operations name (core_model.py)


class ModelStore(MemoryStore):
    """The bucket. The mount's calls pass through ``_gate``, which can simulate a daemon
    crash at the k-th call of a ``sync`` (``arm``): that call is made ("after") or not
    ("before") and held while the test restarts the daemon; every later call fails
    without reaching the bucket; and an outage (``down``). Other writers bypass the gate
    (``OtherWriter``)."""

    def __init__(self) -> None:
        super().__init__("b")
        self._armed: tuple[int, str] | None = None
        self._calls = 0
        self._count_lock = threading.Lock()
        self.hit = threading.Event()
        self._release = threading.Event()

    def arm(self, k: int, when: str) -> None:
        self._calls = 0
        self.hit.clear()
        self._release.clear()
        self._armed = (k, when)

    def release_held(self) -> None:
        self._release.set()

    def disarm(self) -> None:
        self._armed = None
        self._release.set()

    hook: RaceHook | None = None
    down = False  # the endpoint is cut: every call of the mount fails (other writers still reach it)

    def _gate(self, method: str, *args, **kwargs):
        if self.down:
            raise TransientError("the endpoint is down")
        hook = self.hook
        if hook is not None:
            hook.before(method, args)
        result = self._crash_gate(method, *args, **kwargs)
        if hook is not None:
            hook.after(method, args)
        return result

    def _crash_gate(self, method: str, *args, **kwargs):
        call = getattr(super(), method)
        armed = self._armed
        if armed is None:
            return call(*args, **kwargs)
        with self._count_lock:
            self._calls += 1
            n = self._calls
        k, when = armed
        if n < k:
            return call(*args, **kwargs)
        if n > k:
            # after the crash point nothing reaches the bucket (not blocked: shielded
            # cleanup code, such as a multipart abort, must not wait for the restart)
            raise TransientError("the daemon is crashing: request not sent")
        outcome = None
        if when == "after":
            try:
                outcome = ("value", call(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - whatever the answer (e.g. NotFoundError), it is lost all the same
                outcome = ("error", exc)
        self.hit.set()
        self._release.wait(30)  # released once the daemon is being cancelled
        if outcome is None:
            raise TransientError("the daemon crashed before this request was sent")
        if outcome[0] == "error":
            raise outcome[1]
        return outcome[1]


for _method in ("list_page", "head", "get", "put", "create_multipart", "upload_part", "upload_part_copy",
                "complete_multipart",
                "abort_multipart", "copy", "delete", "delete_many"):
    setattr(ModelStore, _method, functools.partialmethod(ModelStore._gate, _method))


class RaceHook:
    """Hooks around the mount's store calls (run in worker threads) for ``mvdir`` races.

    ``hold_upload``: the first upload call (put, multipart start, metadata self-copy) of a
    key below ``d/`` blocks until ``release`` is set. ``put_after_copy``: right after the
    first copy *from* a key below ``d/`` (not a marker), another writer puts ``payload``
    at that key."""

    def __init__(self, store: ModelStore, *, hold_upload: bool = False, payload: bytes | None = None) -> None:
        self.store = store
        self.hold_upload = hold_upload
        self.payload = payload
        self.held = threading.Event()
        self.release = threading.Event()
        self.put_at: str | None = None
        self._lock = threading.Lock()

    def _first(self, attr: str) -> bool:
        with self._lock:
            if getattr(self, attr):
                return False
            setattr(self, attr, True)
            return True

    _held_once = False
    _put_once = False

    def before(self, method: str, args: tuple) -> None:
        if not self.hold_upload or not args or not str(args[0]).startswith("d/"):
            return
        upload = method in ("put", "create_multipart") or (method == "copy" and args[0] == args[1])
        if upload and self._first("_held_once"):
            self.held.set()
            self.release.wait(30)

    def after(self, method: str, args: tuple) -> None:
        if self.payload is None or method != "copy" or args[0] == args[1]:
            return
        src = str(args[0])
        if src.startswith("d/") and not src.endswith("/") and self._first("_put_once"):
            self.put_at = src
            MemoryStore.put(self.store, src, self.payload, None)


class OtherWriter:
    """Another writer of the same bucket: puts and deletes keys directly in the store."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.touched: set[str] = set()  # every key it ever put or deleted

    def current(self, key: str) -> bytes | None:
        return self.store.objects().get(key)

    def put(self, key: str, data: bytes, mtime: str | None) -> None:
        self.touched.add(key)
        MemoryStore.put(self.store, key, data, MTIMES[mtime])

    def delete(self, key: str) -> None:
        self.touched.add(key)
        MemoryStore.delete(self.store, key)
