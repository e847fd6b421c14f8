"""FaultyStore: wraps an ObjectStore and injects failures, delays and holds.

Tests steer it with:

- ``fail_next(op, exc, times=1, key=None, when="before")`` — the next ``times``
  matching calls raise ``exc`` (an exception instance, class, or zero-argument
  factory). ``when="before"`` fails without reaching the inner store (the
  request never arrived); ``when="after"`` lets the inner call succeed and then
  raises (the response was lost: the server *did* apply the change).
- ``set_failure_rate(rate, exc_factory=None, ops=None, seed=0)`` — each matching
  call fails "before" with probability ``rate``, drawn from this instance's own
  ``random.Random(seed)``; ``rate=0`` turns it off.
- ``set_down(True)`` — every call raises UnreachableError until ``set_down(False)``.
- ``set_delay(op, seconds)`` — sleep before delegating.
- ``hold(op, key=None, when="before")`` → ``Gate``: matching calls block at the
  gate until ``gate.release()``; ``gate.wait_held(n)`` waits until n calls are
  blocked there, so a test can freeze an upload mid-flight and act meanwhile.
- ``calls`` — a record (``CallRecord``) of every call with its outcome;
  ``calls_to(op)`` filters it. ``clear()`` removes every fault and gate.

``op`` is a method name of the protocol ("put", "get", ...; "list" is accepted
for "list_page", as StoreStats names it) or "*" for all.
``stats`` is the inner store's: this wrapper counts nothing itself; a call
failed "before" never reaches the inner store and so is not counted there.

Locking: ``self._lock`` guards the fault tables, the RNG and ``calls``. It is
never held while sleeping, waiting at a gate, or calling the inner store, so a
held call never blocks other calls or the test thread. Each ``Gate`` has its own
condition variable. There is no module-level mutable state.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import (
    PIECE,
    ListPage,
    MultipartUpload,
    ObjectInfo,
    ObjectStore,
    PutResult,
    StoreStats,
    TransientError,
    UnreachableError,
    VersionInfo,
)

OPS = (
    "check_bucket", "list_page", "head", "get", "put", "create_multipart", "upload_part", "upload_part_copy",
    "complete_multipart", "abort_multipart", "list_multipart_uploads", "copy", "delete",
    "delete_many", "versioning", "list_versions",
)

# Names as counted in StoreStats, accepted as aliases.
_ALIASES = {"list": "list_page"}

ExcSpec = BaseException | type[BaseException] | Callable[[], BaseException]


def _make_exc(spec: ExcSpec, op: str) -> BaseException:
    if isinstance(spec, BaseException):
        return copy.copy(spec)  # a fresh object per raise: tracebacks are not shared
    if isinstance(spec, type):
        try:
            return spec(f"injected failure in {op}")
        except TypeError:
            return spec()
    return spec()


@dataclass(frozen=True)
class CallRecord:
    op: str
    key: str | None
    outcome: str  # "ok", "injected:<ExcName>", or "<ExcName>" raised by the inner store


@dataclass
class _Rule:
    op: str
    key: str | None
    spec: ExcSpec
    remaining: int
    when: str

    def matches(self, op: str, key: str | None, when: str) -> bool:
        return (
            self.remaining > 0
            and self.when == when
            and self.op in ("*", op)
            and (self.key is None or self.key == key)
        )


class Gate:
    """Blocks matching calls until released. Safe from any thread."""

    def __init__(self, op: str, key: str | None, when: str, timeout: float, first: int | None = None) -> None:
        self.op, self.key, self.when = op, key, when
        self._timeout = timeout
        self.remaining = first  # how many more calls it catches (None: all); guarded by the store's lock
        self._cond = threading.Condition()
        self._released = False  # guarded by _cond
        self.held = 0  # calls currently blocked here; guarded by _cond
        self.passed = 0  # calls that went through after waiting; guarded by _cond

    def matches(self, op: str, key: str | None, when: str) -> bool:
        return (self.when == when and self.op in ("*", op) and (self.key is None or self.key == key)
                and self.remaining != 0)

    def wait(self) -> None:
        """Called by the store for a matching call: block until released (or raise after
        the timeout); counted in ``held`` while blocked, in ``passed`` after."""
        with self._cond:
            self.held += 1
            self._cond.notify_all()
            try:
                if not self._cond.wait_for(lambda: self._released, timeout=self._timeout):
                    raise RuntimeError(f"FaultyStore gate on {self.op} was never released")
            finally:
                self.held -= 1
                self.passed += 1
                self._cond.notify_all()

    def wait_held(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Wait until at least ``n`` calls are blocked here; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.held >= n, timeout=timeout)

    def release(self) -> None:
        """Let every blocked and future call through."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    @property
    def released(self) -> bool:
        with self._cond:
            return self._released


class FaultyStore:
    """An ObjectStore wrapper that fails, delays and holds calls on command."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []  # guarded by _lock
        self._gates: list[Gate] = []  # guarded by _lock
        self._delays: dict[str, float] = {}  # guarded by _lock
        self._down = False  # guarded by _lock
        self._rate = 0.0  # guarded by _lock
        self._rate_ops: frozenset[str] | None = None  # guarded by _lock
        self._rate_factory: ExcSpec = TransientError
        self._rng = random.Random(0)  # guarded by _lock
        self._calls: list[CallRecord] = []  # guarded by _lock

    # ---------------------------------------------------------- control

    @property
    def stats(self) -> StoreStats:
        return self.inner.stats

    def fail_next(
        self, op: str, exc: ExcSpec, times: int = 1, *, key: str | None = None, when: str = "before"
    ) -> None:
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        op = self._check_op(op)
        with self._lock:
            self._rules.append(_Rule(op, key, exc, times, when))

    def set_failure_rate(
        self,
        rate: float,
        exc_factory: ExcSpec | None = None,
        ops: list[str] | tuple[str, ...] | set[str] | None = None,
        seed: int | None = 0,
    ) -> None:
        ops = [self._check_op(op) for op in ops or ()]
        with self._lock:
            self._rate = float(rate)
            self._rate_factory = exc_factory if exc_factory is not None else TransientError
            self._rate_ops = frozenset(ops) if ops else None
            self._rng = random.Random(seed)

    def set_down(self, down: bool = True) -> None:
        with self._lock:
            self._down = down

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    def set_delay(self, op: str, seconds: float) -> None:
        op = self._check_op(op)
        with self._lock:
            if seconds > 0:
                self._delays[op] = seconds
            else:
                self._delays.pop(op, None)

    def hold(self, op: str, key: str | None = None, *, when: str = "before", timeout: float = 60.0,
             first: int | None = None) -> Gate:
        """Block matching calls until the returned gate is released (or ``timeout`` s pass);
        with ``first``, only the first ``first`` matching calls (later ones pass)."""
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        op = self._check_op(op)
        gate = Gate(op, key, when, timeout, first)
        with self._lock:
            self._gates.append(gate)
        return gate

    def clear(self) -> None:
        """Remove every rule, rate, delay and down state; release every gate."""
        with self._lock:
            gates, self._gates = self._gates, []
            self._rules.clear()
            self._delays.clear()
            self._down = False
            self._rate = 0.0
        for gate in gates:
            gate.release()

    @property
    def calls(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, op: str) -> list[CallRecord]:
        op = self._check_op(op)
        return [c for c in self.calls if op in ("*", c.op)]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    @staticmethod
    def _check_op(op: str) -> str:
        """The canonical name of ``op`` ("list" → "list_page"); ValueError if unknown."""
        op = _ALIASES.get(op, op)
        if op != "*" and op not in OPS:
            raise ValueError(f"unknown operation {op!r}; one of {OPS} or '*'")
        return op

    # ---------------------------------------------------------- machinery

    def _take_rule(self, op: str, key: str | None, when: str) -> ExcSpec | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(op, key, when):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule.spec
        return None

    def _gate_for(self, op: str, key: str | None, when: str) -> Gate | None:
        with self._lock:
            for gate in self._gates:
                if gate.matches(op, key, when) and not gate.released:
                    if gate.remaining is not None:
                        gate.remaining -= 1
                    return gate
        return None

    def _record(self, op: str, key: str | None, outcome: str) -> None:
        with self._lock:
            self._calls.append(CallRecord(op, key, outcome))

    def _invoke(self, op: str, key: str | None, fn: Callable[[], Any]) -> Any:
        with self._lock:
            down = self._down
            delay = self._delays.get(op, 0.0) or self._delays.get("*", 0.0)
            random_spec: ExcSpec | None = None
            # the random draw only for an op the rate applies to (keeps a seeded run's sequence)
            if (self._rate > 0 and (self._rate_ops is None or op in self._rate_ops)
                    and self._rng.random() < self._rate):
                random_spec = self._rate_factory
        if down:
            self._record(op, key, "injected:UnreachableError")
            raise UnreachableError(f"injected: endpoint down ({op})", code="Injected")
        spec = self._take_rule(op, key, "before") or random_spec
        if spec is not None:
            injected = _make_exc(spec, op)
            self._record(op, key, f"injected:{type(injected).__name__}")
            raise injected
        if delay:
            time.sleep(delay)
        gate = self._gate_for(op, key, "before")
        if gate is not None:
            gate.wait()
        try:
            result = fn()
        except BaseException as exc:
            self._record(op, key, type(exc).__name__)
            raise
        gate = self._gate_for(op, key, "after")
        if gate is not None:
            gate.wait()
        spec = self._take_rule(op, key, "after")
        if spec is not None:
            injected = _make_exc(spec, op)
            self._record(op, key, f"injected:{type(injected).__name__}")
            raise injected
        self._record(op, key, "ok")
        return result

    # ---------------------------------------------------------- protocol

    def describe(self) -> str:
        return f"faulty({self.inner.describe()})"

    def check_bucket(self) -> None:
        return self._invoke("check_bucket", None, self.inner.check_bucket)

    def list_page(
        self, prefix: str, delimiter: str | None = "/", token: str | None = None, max_keys: int = 1000
    ) -> ListPage:
        return self._invoke("list_page", prefix, lambda: self.inner.list_page(prefix, delimiter, token, max_keys))

    def head(self, key: str) -> ObjectInfo:
        return self._invoke("head", key, lambda: self.inner.head(key))

    def get(self, key: str, start: int = 0, end: int | None = None, if_match: str | None = None) -> bytes:
        return self._invoke("get", key, lambda: self.inner.get(key, start, end, if_match))

    def get_into(self, key: str, start: int, end: int, if_match: str | None,
                 sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
        """Faults, delays and gates as for ``get`` (the op is "get")."""
        return self._invoke("get", key, lambda: self.inner.get_into(key, start, end, if_match, sink, piece))

    def put(self, key, body, metadata=None, *, if_match=None, if_none_match=False) -> PutResult:
        return self._invoke(
            "put", key,
            lambda: self.inner.put(key, body, metadata, if_match=if_match, if_none_match=if_none_match),
        )

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        return self._invoke("create_multipart", key, lambda: self.inner.create_multipart(key, metadata))

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        return self._invoke(
            "upload_part", key, lambda: self.inner.upload_part(key, upload_id, part_number, body)
        )

    def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                         length: int, *, if_match: str | None = None) -> str:
        return self._invoke(
            "upload_part_copy", key,
            lambda: self.inner.upload_part_copy(key, upload_id, part_number, src_key, start, length,
                                                if_match=if_match),
        )

    def complete_multipart(self, key, upload_id, parts, *, if_match=None, if_none_match=False) -> PutResult:
        return self._invoke(
            "complete_multipart", key,
            lambda: self.inner.complete_multipart(
                key, upload_id, parts, if_match=if_match, if_none_match=if_none_match
            ),
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        return self._invoke("abort_multipart", key, lambda: self.inner.abort_multipart(key, upload_id))

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        return self._invoke("list_multipart_uploads", prefix, lambda: self.inner.list_multipart_uploads(prefix))

    def copy(self, src_key, dst_key, metadata=None, *, if_match=None, if_none_match=False) -> PutResult:
        return self._invoke(
            "copy", dst_key,
            lambda: self.inner.copy(src_key, dst_key, metadata, if_match=if_match, if_none_match=if_none_match),
        )

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        return self._invoke("delete", key, lambda: self.inner.delete(key, if_match=if_match))

    def delete_many(self, keys: list[str]) -> list[str]:
        return self._invoke("delete_many", None, lambda: self.inner.delete_many(keys))

    def versioning(self) -> str:
        return self._invoke("versioning", None, self.inner.versioning)

    def list_versions(self, key: str) -> list[VersionInfo]:
        return self._invoke("list_versions", key, lambda: self.inner.list_versions(key))

    def get_version_into(self, key: str, version_id: str, sink: Callable[[bytes, int], object],
                         piece: int = PIECE) -> int:
        """Faults, delays and gates as for ``get`` (the op is "get")."""
        return self._invoke("get", key, lambda: self.inner.get_version_into(key, version_id, sink, piece))
