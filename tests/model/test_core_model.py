"""Model-based test of the core + reconciler on a MemoryStore (SPEC §5–§8, docs/SEMANTICS.md).

Hypothesis generates a *program*: mount parameters (conflict strategy,
--allow-delete, conditional writes or the HEAD fallback, multipart or not) and a
list of operations on a few paths. Each program runs in ONE ``run_rig`` call
(one trio run); a failure shrinks to a short, readable op list, which is then
kept below as a named regression test.

Operations
----------
``("write", p)``            local create/overwrite (O_TRUNC) of ``p`` with a fresh payload
``("append", p)``           local append of a fresh payload (a create if ``p`` is missing)
``("unlink", p)``           local unlink (EPERM allowed without --allow-delete)
``("rename", p, q)``        local rename (EPERM allowed without --allow-delete)
``("put", p, mtime)``       another writer puts a fresh payload at key ``p``; ``mtime``
                            metadata ``None`` (LastModified), ``"old"`` or ``"future"``
``("delete", p)``           another writer deletes key ``p``
``("sync",)``               ``await rig.sync()`` (the only way uploads start: delay 60 s)
``("restart",)``            crash + restart on the same cache dir

Every payload ever written is unique (a counter), so every *version* (the
whole content of a file) is unique and can be tracked by its bytes.

The model
---------
The model does not predict what the mount shows; it observes it, like a user:
each local operation first reads the paths it touches through the core (this is
the "user saw it" of the invariant). A set ``live`` holds the versions that must
not vanish; the invariant, checked after EVERY step, is

    every live version is, byte for byte, the content of (a) an object in the
    bucket, (b) the data file of a *pending* journal entry (evictable clean
    cache copies do not count), or (c) a file in ``<cache>/recovery/``.

A version becomes live when it is written (locally: write/append; remotely:
put) and is retired only by an operation that legitimately replaces it:

- a local write/append/unlink of ``p`` retires the version the user saw at
  ``p`` just before (and nothing else: a remote change the mount has not shown
  yet must survive as a conflict);
- a local rename onto ``q`` retires the version seen at ``q``; the source's
  version moves, it stays live;
- another writer's put/delete of key ``p`` retires the version the bucket held
  at ``p`` (it replaces the remote version only) -- unless a pending journal
  entry still holds those same bytes (an edit the mount has not confirmed as
  uploaded); then it stays live (the stricter choice; it does not arise in
  these sequential programs).

Versions displaced by a conflict (conflict name, recovery folder, manual
pending edit) are never retired by the model: the user cannot address them.

Between operations the reconciler is allowed to settle (``_quiesce``), so that
what the user saw is still what the operation acts on; the write-back delay is
60 s, so uploads start only from ``sync`` and from restart recovery (which
queues pending items at once) and from deletes (queued at once).

Extra checks: reads show only versions that were written; a write or rename is
visible at once (read your writes); after a successful unlink the unlinked
version is not shown at that path; EPERM/ENOENT leave the views unchanged;
after each ``sync`` nothing is pending except items stopped by a ``manual``
conflict, no tombstone is left, and no key in the bucket is under
``.mountsync``; no WARNING is logged except conflicts. At the end: a final
sync, ``resolve`` of manual conflicts, and then nothing pending and every live
version in the bucket or the recovery folder (in the bucket alone for
keep-both, SPEC §7), every recovery file listed in the conflicts table.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import shutil
import stat
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mountsync.backend.memory import MemoryStore
from mountsync.errors import FsError

from tests.core.rig import run_rig

pytestmark = pytest.mark.model

PATHS = ("a.txt", "b.txt", "c", "d/e.txt")
STRATEGIES = ("keep-both", "local-wins", "remote-wins", "newest-wins", "manual")
ALLOWED_LOGS = (re.compile(r"conflict on "),)
MTIMES = {None: None, "old": {"mtime": "1"}, "future": {"mtime": "4000000000"}}


@dataclass(frozen=True)
class Params:
    strategy: str = "keep-both"
    allow_delete: bool = False
    conditional_writes: str = "yes"  # "no": the HEAD-before-upload fallback of SPEC §7
    multipart: bool = False  # tiny multipart threshold: most uploads go multipart


# ----------------------------------------------------------------- the model


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class OtherWriter:
    """Another writer of the same bucket: puts and deletes keys directly in the store."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def current(self, key: str) -> bytes | None:
        return self.store.objects().get(key)

    def put(self, key: str, data: bytes, mtime: str | None) -> None:
        self.store.put(key, data, MTIMES[mtime])

    def delete(self, key: str) -> None:
        self.store.delete(key)


class Model:
    def __init__(self, rig, params: Params, store: MemoryStore) -> None:
        self.rig = rig
        self.p = params
        self.store = store
        self.other = OtherWriter(store)
        self.live: dict[bytes, str] = {}  # version → why it must survive
        self.known: set[bytes] = set()  # every version that ever existed
        self.trace: list[str] = []
        self._n = itertools.count(1)

    # -- bookkeeping
    def log(self, line: str) -> None:
        self.trace.append(line)

    def fresh(self, who: str) -> bytes:
        return f"[{who} {next(self._n)}]".encode()

    def make_live(self, version: bytes, why: str) -> None:
        self.known.add(version)
        self.live[version] = why

    def retire(self, version: bytes | None) -> None:
        if version is not None:
            self.live.pop(version, None)

    def retire_remote(self, version: bytes | None) -> None:
        if version is None:
            return
        if any(version == data for _path, data in self._pending_files()):
            return  # still a pending local edit (see the module docstring)
        self.live.pop(version, None)

    # -- what exists where
    @property
    def journal(self):
        return self.rig.stack.journal

    @property
    def reconciler(self):
        return self.rig.stack.reconciler

    def _pending_files(self) -> list[tuple[str, bytes]]:
        out = []
        for e in self.journal.pending():
            if e.kind == stat.S_IFREG:
                try:
                    with open(self.rig.stack.data.path_for(e.id), "rb") as f:
                        out.append((e.path, f.read()))
                except FileNotFoundError:
                    out.append((e.path, b"<data file missing>"))
        return out

    def _recovery_files(self) -> dict[str, bytes]:
        rdir = os.path.join(self.rig.stack.cache_dir, "recovery")
        out = {}
        for name in sorted(os.listdir(rdir)):
            with open(os.path.join(rdir, name), "rb") as f:
                out[os.path.join(rdir, name)] = f.read()
        return out

    def where(self) -> dict[bytes, list[str]]:
        found: dict[bytes, list[str]] = defaultdict(list)
        for key, data in self.store.objects().items():
            found[data].append(f"bucket:{key}")
        for path, data in self._pending_files():
            found[data].append(f"pending:{path}")
        for path, data in self._recovery_files().items():
            found[data].append(f"recovery:{os.path.basename(path)}")
        return found

    def describe(self) -> str:
        lines = ["bucket:"]
        lines += [f"  {k!r}: {v!r}" for k, v in sorted(self.store.objects().items())]
        lines.append("pending journal entries:")
        lines += [f"  {p!r}: {d!r}" for p, d in self._pending_files()]
        lines.append("tombstones: " + ", ".join(repr(t.path) for t in self.journal.tombstones()))
        lines.append("recovery:")
        lines += [f"  {os.path.basename(p)}: {d!r}" for p, d in self._recovery_files().items()]
        lines.append("conflicts:")
        lines += [f"  {c.path!r} {c.kind} {c.strategy}: local→{c.local_to} bucket→{c.remote_to}"
                  for c in self.journal.conflicts()]
        return "\n".join(lines)

    # -- checks
    def check_invariant(self, where: str) -> None:
        found = self.where()
        missing = {v: why for v, why in self.live.items() if v not in found}
        assert not missing, (f"after {where}: live versions vanished: "
                             + "; ".join(f"{v!r} ({why})" for v, why in missing.items())
                             + "\n" + self.describe())

    def check_after_sync(self, res) -> None:
        pending = self.journal.pending()
        for e in pending:
            reason = self.reconciler.stopped.get(("up", e.id), "")
            assert self.p.strategy == "manual" and "manual" in reason, (
                f"after sync {e.path!r} is still pending ({reason or 'not stopped'}); sync said {res}\n"
                + self.describe())
        assert self.journal.tombstones() == [], f"tombstones left after sync\n{self.describe()}"
        if pending:
            assert not res.ok and not res.remaining and all("manual" in f for f in res.failed), res
        else:
            assert res.ok, f"sync failed with nothing pending: {res}"
        bad = [k for k in self.store.objects() if any(s.startswith(".mountsync") for s in k.split("/"))]
        assert not bad, f"internal keys in the bucket: {bad}"

    async def view(self, path: str) -> bytes | None:
        """What a program reading ``path`` through the mount sees (None: ENOENT)."""
        try:
            data = await self.rig.read_file(path)
        except FsError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise AssertionError(f"reading {path!r} failed: {exc!r}") from exc
        assert data in self.known, f"{path!r} shows bytes nobody wrote: {data!r}"
        return data

    async def quiesce(self, timeout: float = 20.0) -> None:
        """Let the reconciler finish what is due now (restart recovery, queued deletes,
        re-queued conflict uploads); items due after the 60 s write-back delay are not."""
        rec = self.reconciler
        with trio.move_on_after(timeout):
            while True:
                await trio.sleep(0)
                now = trio.current_time()
                busy = rec.inflight or any(when < now + 30 and rec._eligible(item)
                                           for item, when in rec.due.items())
                if not busy:
                    return
                await trio.sleep(0.001)
        raise AssertionError(f"the reconciler did not settle: in flight {list(rec.inflight)}, due {rec.due}")

    # -- operations
    async def setup(self) -> None:
        await self.rig.mkdir("d")
        res = await self.rig.sync()
        assert res.ok, res
        await self.quiesce()

    async def apply(self, op: tuple) -> str:
        kind, args = op[0], op[1:]
        return await getattr(self, "op_" + kind)(*args)

    async def op_write(self, path: str) -> str:
        seen = await self.view(path)
        data = self.fresh("local")
        await self.rig.write_file(path, data)
        self.retire(seen)
        self.make_live(data, f"written locally to {path}")
        got = await self.view(path)
        assert got == data, f"wrote {data!r} to {path!r}, read back {got!r}"
        return f"saw {seen!r}, wrote {data!r}"

    async def op_append(self, path: str) -> str:
        seen = await self.view(path)
        token = self.fresh("local")
        if seen is None:
            await self.rig.write_file(path, token)
            new = token
        else:
            await self.rig.write_at(path, len(seen), token)
            new = seen + token
        self.retire(seen)
        self.make_live(new, f"appended locally to {path}")
        got = await self.view(path)
        assert got == new, f"appended to {path!r}: expected {new!r}, read back {got!r}"
        return f"saw {seen!r}, now {new!r}"

    async def op_unlink(self, path: str) -> str:
        seen = await self.view(path)
        try:
            await self.rig.unlink(path)
        except FsError as exc:
            return await self._refused(exc, {path: seen}, path)
        assert seen is not None, f"unlink of {path!r} succeeded but it was not visible"
        self.retire(seen)
        after = await self.view(path)
        assert after != seen, f"{path!r} still shows {seen!r} after unlink"
        return f"removed {seen!r}; now {after!r}"

    async def op_rename(self, src: str, dst: str) -> str:
        seen_src, seen_dst = await self.view(src), await self.view(dst)
        try:
            await self.rig.rename(src, dst)
        except FsError as exc:
            return await self._refused(exc, {src: seen_src, dst: seen_dst}, src)
        assert seen_src is not None, f"rename of {src!r} succeeded but it was not visible"
        self.retire(seen_dst)
        got = await self.view(dst)
        assert got == seen_src, f"after rename {src!r}→{dst!r}, {dst!r} shows {got!r}, not {seen_src!r}"
        return f"moved {seen_src!r} over {seen_dst!r}"

    async def _refused(self, exc: FsError, seen: dict[str, bytes | None], src: str) -> str:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        if exc.errno == errno.ENOENT:
            assert seen[src] is None, f"ENOENT for visible {src!r}: {exc}"
        elif exc.errno == errno.EPERM:
            assert not self.p.allow_delete, f"EPERM with --allow-delete: {exc}"
            assert seen[src] is not None, f"EPERM for invisible {src!r}: {exc}"
        else:
            raise AssertionError(f"unexpected {exc!r}") from exc
        for path, before in seen.items():
            after = await self.view(path)
            assert after == before, f"{name} changed {path!r}: {before!r} → {after!r}"
        return name

    async def op_put(self, path: str, mtime: str | None) -> str:
        old = self.other.current(path)
        data = self.fresh("other")
        self.other.put(path, data, mtime)
        self.retire_remote(old)
        self.make_live(data, f"put by another writer at {path}")
        return f"replaced {old!r} by {data!r}"

    async def op_delete(self, path: str) -> str:
        old = self.other.current(path)
        self.other.delete(path)
        self.retire_remote(old)
        return f"deleted {old!r}"

    async def op_sync(self) -> str:
        res = await self.rig.sync()
        await self.quiesce()
        self.check_after_sync(res)
        return f"{res}"

    async def op_restart(self) -> str:
        await self.rig.restart()
        return "restarted"

    async def finish(self, resolve: str) -> None:
        await self.op_sync()
        self.check_invariant("final sync")
        if self.p.strategy == "manual":
            for e in self.journal.pending():
                res = await self.reconciler.resolve(e.path, resolve)
                self.log(f"resolve {e.path!r} keep {resolve}: {res}")
                assert res.ok, f"resolve {e.path!r} ({resolve}) failed: {res}\n{self.describe()}"
                await self.quiesce()
                self.check_invariant(f"resolve {e.path!r}")
            await self.op_sync()
        assert self.journal.pending() == [] and self.journal.tombstones() == [], self.describe()
        objects = set(self.store.objects().values())
        recovery = self._recovery_files()
        if self.p.strategy == "keep-both":
            # SPEC §7: every byte written by either side is in the bucket, nothing discarded
            assert not recovery, f"keep-both put something into the recovery folder\n{self.describe()}"
            missing = {v: why for v, why in self.live.items() if v not in objects}
            assert not missing, f"keep-both: not in the bucket after sync: {missing}\n{self.describe()}"
        referenced = {x[len("recovery:"):] for c in self.journal.conflicts()
                      for x in (c.local_to or "", c.remote_to or "") if x.startswith("recovery:")}
        unlisted = set(recovery) - referenced
        assert not unlisted, f"recovery files not in the conflicts table: {unlisted}"


def run_program(ops: list[tuple], params: Params = Params(), resolve: str = "both") -> None:
    """Run ``ops`` in one rig (one trio run), checking the model after every step."""
    tmp = tempfile.mkdtemp(prefix="mountsync-model-")
    store = MemoryStore("b")
    collector = _LogCollector()
    logger = logging.getLogger("mountsync")
    logger.addHandler(collector)
    config = dict(write_back_delay=60, metadata_ttl=0, conflict_strategy=params.strategy,
                  allow_delete=params.allow_delete, conditional_writes=params.conditional_writes)
    if params.multipart:
        config.update(multipart_threshold=16, part_size=8)

    async def body(rig):
        model = Model(rig, params, store)
        try:
            await model.setup()
            for i, op in enumerate(ops):
                outcome = await model.apply(op)
                model.log(f"{i:2d} {op!r}: {outcome}")
                await model.quiesce()
                model.check_invariant(f"step {i} {op!r}")
            await model.finish(resolve)
            return None
        except Exception as exc:  # returned, not raised: no ExceptionGroup from the rig's nursery
            exc.add_note("trace:\n" + "\n".join(model.trace))
            return exc

    try:
        error = run_rig(body, Path(tmp), store, **config)
    finally:
        logger.removeHandler(collector)
        shutil.rmtree(tmp, ignore_errors=True)
    if error is not None:
        raise error
    unexpected = [r for r in collector.records if not any(p.search(r.getMessage()) for p in ALLOWED_LOGS)]
    assert not unexpected, "unexpected warnings: " + "; ".join(r.getMessage() for r in unexpected)


# ----------------------------------------------------------------- strategies

paths = st.sampled_from(PATHS)
operations = st.one_of(
    st.just(("sync",)),
    st.tuples(st.just("write"), paths),
    st.tuples(st.just("put"), paths, st.sampled_from([None, "old", "future"])),
    st.tuples(st.just("append"), paths),
    st.tuples(st.just("unlink"), paths),
    st.tuples(st.just("delete"), paths),
    st.tuples(st.just("rename"), paths, paths).filter(lambda op: op[1] != op[2]),
    st.just(("restart",)),
)
programs = st.lists(operations, min_size=1, max_size=25)
params_st = st.builds(Params, strategy=st.sampled_from(STRATEGIES), allow_delete=st.booleans(),
                      conditional_writes=st.sampled_from(["yes", "no"]), multipart=st.booleans())


@settings(max_examples=60, deadline=None, derandomize=True, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(params=params_st, ops=programs, resolve=st.sampled_from(["both", "local", "remote"]))
def test_core_model(allow_log, params, ops, resolve):
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program(ops, params, resolve)


# ----------------------------------------------------------------- regressions
# Falsifying examples found while developing the model, kept as explicit programs.
