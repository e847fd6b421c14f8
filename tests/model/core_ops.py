"""The operations of the core model (the table in ``core_model.py``'s docstring).

``Operations`` is a mixin of ``core_model.Model``: each ``op_<kind>`` runs one
operation through the rig, records which versions became live or were retired
(``make_live``/``retire``/``retire_remote``) and checks what the user sees right
after it; the returned line goes into the trace."""

from __future__ import annotations

import contextlib
import errno
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio

from mountsync.errors import FsError
from tests.model.core_store import PATHS, ModelStore, OtherWriter, RaceHook

if TYPE_CHECKING:
    from tests.model.core_model import Params


class Operations:
    """``op_<kind>(*args)`` for each operation; state and checks are ``Model``'s."""

    rig: Any
    p: Params
    store: ModelStore
    other: OtherWriter
    reconciler: Any
    _n: itertools.count

    async def op_mvdir(self, race: str) -> str:
        """Rename ``d`` to a fresh name and back (see ``core_model.py``)."""
        name = f"m{next(self._n)}"
        before = await self.files_below("d")
        hook = None
        if race == "upload":
            hook = RaceHook(self.store, hold_upload=True)
        elif race == "other":
            hook = RaceHook(self.store, payload=self.fresh("other"))
        self.store.hook = hook
        note = ""
        try:
            try:
                if race == "upload":
                    note = await self._rename_during_upload(hook, name)
                elif race == "offline":
                    with self.offline():
                        await self.rig.rename("d", name)
                else:
                    await self.rig.rename("d", name)
                    if race == "other":
                        await self.rig.sync()  # the copies run now; another writer follows the first
            finally:
                if hook is not None:
                    hook.release.set()
                self.store.hook = None
        except FsError as exc:
            if hook is not None and hook.put_at is not None:
                self.other.touched.add(hook.put_at)
            assert exc.errno == errno.EPERM and not self.p.allow_delete, f"mv d {name}: unexpected {exc!r}"
            # SPEC §6: d and what the mount created below it are its own creations
            assert self._maybe_foreign_below("d", before), f"mv d {name}: EPERM, but all below d is ours: {before}"
            after = await self.files_below("d")
            assert after == before, f"EPERM changed d: {before} → {after}"
            return note + "EPERM"
        if hook is not None and hook.put_at is not None:
            self.other.touched.add(hook.put_at)
            self.make_live(hook.payload, f"put by another writer at {hook.put_at} during a directory rename")
            note += f"other writer put {hook.payload!r} at {hook.put_at!r} after its copy; "
        moved = await self.files_below(name)
        assert moved == before, f"after mv d {name}: {name} shows {moved}, d showed {before}"
        if await self.rig.exists("d"):
            return note + f"moved d to {name} ({before}); d exists again: {await self.files_below('d')}"
        try:
            with self.offline() if race == "offline" else contextlib.nullcontext():
                await self.rig.rename(name, "d")
        except FsError as exc:
            # d reappeared meanwhile: a key below it that was not ours to delete (another
            # writer's) became visible again once the move's deletes were done
            assert exc.errno in (errno.ENOTEMPTY, errno.ENOTDIR) and await self.rig.exists("d"), \
                f"mv {name} d: unexpected {exc!r}"
            return note + f"moved d to {name} ({before}); d reappeared: {await self.files_below('d')}"
        back = await self.files_below("d")
        assert back == before, f"after mv {name} d: d shows {back}, showed {before}"
        return note + f"moved d to {name} and back ({before})"

    async def _rename_during_upload(self, hook: RaceHook, name: str) -> str:
        """A ``sync`` runs; while its first upload below d/ is held in flight, rename d."""
        sync_done = trio.Event()
        renamed = trio.Event()
        failed: list[FsError] = []

        async def bg_sync() -> None:
            await self.rig.sync()
            sync_done.set()

        async def bg_rename() -> None:
            try:
                await self.rig.rename("d", name)
            except FsError as exc:
                failed.append(exc)
            finally:
                renamed.set()

        async with trio.open_nursery() as n:
            n.start_soon(bg_sync)
            while not (hook.held.is_set() or sync_done.is_set()):
                await trio.sleep(0.001)
            if hook.held.is_set():
                n.start_soon(bg_rename)
                # release the upload once the rename waits for it (or, if it does not wait, is done)
                while not (renamed.is_set() or getattr(self.reconciler, "held_paths", None)):
                    await trio.sleep(0.001)
                hook.release.set()
                await renamed.wait()
            n.cancel_scope.cancel()
        if failed:
            raise failed[0]
        if not hook.held.is_set():
            await self.rig.rename("d", name)
            return "no upload below d to race with; "
        return "renamed while an upload below d was in flight; "

    async def parent_for(self, path: str) -> str:
        """Like ``mkdir -p``: the directory of ``path`` may be gone (a directory without a
        marker vanishes with its last key, e.g. after it was moved away and came back
        with another writer's key only); a program writing there makes it first."""
        parent = path.rpartition("/")[0]
        if parent and not await self.rig.exists(parent):
            await self.rig.mkdir(parent)
            return f"(made {parent}) "
        return ""

    async def op_write(self, path: str) -> str:
        note = await self.parent_for(path)
        seen = await self.view(path)
        data = self.fresh("local")
        await self.rig.write_file(path, data)
        self.retire(seen)
        self.make_live(data, f"written locally to {path}")
        got = await self.view(path)
        assert got == data, f"wrote {data!r} to {path!r}, read back {got!r}"
        return note + f"saw {seen!r}, wrote {data!r}"

    async def op_append(self, path: str) -> str:
        note = await self.parent_for(path)
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
        return note + f"saw {seen!r}, now {new!r}"

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

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        """The endpoint is cut for the mount (not for other writers) inside the block."""
        self.store.down = True
        try:
            yield
        finally:
            self.store.down = False

    async def op_offline_rename(self, src: str, dst: str) -> str:
        """A rename while the endpoint is cut (what the user saw is read before the cut)."""
        return await self.op_rename(src, dst, offline=True)

    async def op_rename(self, src: str, dst: str, offline: bool = False) -> str:
        note = await self.parent_for(dst) if await self.view(src) is not None else ""
        seen_src, seen_dst = await self.view(src), await self.view(dst)
        try:
            with self.offline() if offline else contextlib.nullcontext():
                await self.rig.rename(src, dst)
        except FsError as exc:
            return note + await self._refused(exc, {src: seen_src, dst: seen_dst}, src)
        assert seen_src is not None, f"rename of {src!r} succeeded but it was not visible"
        self.retire(seen_dst)
        got = await self.view(dst)
        assert got == seen_src, f"after rename {src!r}→{dst!r}, {dst!r} shows {got!r}, not {seen_src!r}"
        return note + f"moved {seen_src!r} over {seen_dst!r}"

    async def _refused(self, exc: FsError, seen: dict[str, bytes | None], src: str) -> str:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        if exc.errno == errno.ENOENT:
            assert seen[src] is None, f"ENOENT for visible {src!r}: {exc}"
        elif exc.errno == errno.EPERM:
            assert not self.p.allow_delete, f"EPERM with --allow-delete: {exc}"
            assert seen[src] is not None, f"EPERM for invisible {src!r}: {exc}"
            # SPEC §6: only what another writer touched (or a conflict copy, which the
            # model does not count as the mount's creation) may be refused
            assert self._maybe_foreign(src), f"EPERM for {src!r}, which only the mount ever wrote: {exc}"
        else:
            raise AssertionError(f"unexpected {exc!r}") from exc
        for path, before in seen.items():
            after = await self.view(path)
            assert after == before, f"{name} changed {path!r}: {before!r} → {after!r}"
        return name

    def _maybe_foreign(self, path: str) -> bool:
        """May the bucket's object at ``path`` be one this mount did not create? Yes for a
        key another writer ever touched and for a name the mount made up (a conflict copy)."""
        return path in self.other.touched or path not in PATHS

    def _maybe_foreign_below(self, d: str, shown: dict[str, bytes | None]) -> bool:
        return any(k.startswith(d + "/") for k in self.other.touched) or \
            any(self._maybe_foreign(f"{d}/{n}") for n in shown)

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

    async def op_crash(self, k: int, when: str) -> str:
        """``sync``, and the daemon crashes at its k-th store call (made or not)."""
        self.store.arm(k, when)
        result = None
        try:
            async with trio.open_nursery() as nursery:
                async def run_sync():
                    nonlocal result
                    result = await self.rig.sync()

                nursery.start_soon(run_sync)
                while result is None and not self.store.hit.is_set():
                    await trio.sleep(0.001)
                nursery.cancel_scope.cancel()
            if self.store.hit.is_set():
                self.rig.crash()  # the daemon dies: cancel everything it runs...
                self.store.release_held()  # ...and answer the held call (shielded cleanup may wait on it)
                await self.rig.restart()
                return f"crashed {when} store call {k}"
        finally:
            self.store.disarm()
        await self.quiesce()
        self.check_after_sync(result)
        return f"no crash: {result}"

    async def op_restart(self) -> str:
        await self.rig.restart()
        return "restarted"
