"""SPEC §5/§7/§8 on the memory backend: restart, retries, permanent errors, multipart,
conditional uploads, symlinks, metadata-only changes."""

import random
import re
import stat

import trio

from mountsync.backend.base import AccessDeniedError, TransientError
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

MiB = 1024 * 1024


def test_restart_resumes_pending_uploads(tmp_path):
    files = {f"dir/f{i:02d}": f"content {i}".encode() * (i + 1) for i in range(20)}

    async def body(rig):
        await rig.mkdir("dir")
        for path, data in files.items():
            await rig.write_file(path, data)
        assert rig.store.objects() == {}  # nothing uploaded yet (60 s delay)
        await rig.restart()  # no drain: a crash as far as the bucket is concerned
        assert rig.stack.journal.get("dir/f07").pending
        assert sorted(await rig.listdir("dir")) == sorted(p.split("/")[1] for p in files)
        assert await rig.read_file("dir/f13") == files["dir/f13"]
        res = await rig.sync()
        assert res.ok, res
        objs = rig.store.objects()
        assert {k: v for k, v in objs.items() if k != "dir/"} == files
        assert "dir/" in objs
        assert rig.stack.journal.pending() == []

    run_rig(body, tmp_path, write_back_delay=60)


def test_restart_keeps_unflushed_truncate_and_overwrite(tmp_path):
    async def body(rig):
        await rig.write_file("a", b"0123456789")
        await rig.truncate("a", 3)
        await rig.write_at("a", 1, b"XY")
        await rig.restart()
        assert await rig.read_file("a") == b"0XY"
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"a": b"0XY"}

    run_rig(body, tmp_path, write_back_delay=60)


def test_transient_errors_are_retried(tmp_path):
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("put", TransientError("503 SlowDown", code="SlowDown"), times=2)

    async def body(rig):
        await rig.write_file("f", b"eventually")
        res = await rig.sync(timeout=20)
        assert res.ok, res
        assert mem.objects() == {"f": b"eventually"}
        outcomes = [c.outcome for c in faulty.calls_to("put")]
        assert outcomes == ["injected:TransientError", "injected:TransientError", "ok"]
        e = rig.stack.journal.get("f")
        assert e.error is None and e.attempts == 0 and not e.pending
        assert rig.status()["errors"] == []

    run_rig(body, tmp_path, faulty, write_back_delay=60)


def test_transient_errors_in_the_background_without_sync(tmp_path):
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("put", TransientError("connection reset"), times=1)

    async def body(rig):
        await rig.write_file("f", b"bg")
        with trio.move_on_after(15):
            while mem.objects().get("f") != b"bg":
                await trio.sleep(0.05)
        assert mem.objects() == {"f": b"bg"}

    run_rig(body, tmp_path, faulty, write_back_delay=0)


def test_permanent_error_stops_item_and_keeps_data(tmp_path, allow_log):
    allow_log(r"stopped .*AccessDenied")
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("put", AccessDeniedError("403 Forbidden", code="AccessDenied"), times=1, key="secret")

    async def body(rig):
        await rig.write_file("secret", b"precious")
        await rig.write_file("other", b"fine")
        res = await rig.sync(timeout=20)
        assert not res.ok
        assert res.remaining == []
        assert len(res.failed) == 1 and res.failed[0].startswith("secret:")
        assert "AccessDenied" in res.failed[0]
        assert mem.objects() == {"other": b"fine"}
        assert len(faulty.calls_to("put")) == 2  # not retried in a loop
        # data stays local and readable
        assert await rig.read_file("secret") == b"precious"
        st = rig.status()
        assert [e["item"] for e in st["errors"]] == ["secret"]
        assert "AccessDenied" in st["errors"][0]["error"]
        pend = {p["path"]: p for p in st["pending"]}
        assert pend["secret"]["state"] == "stopped"
        assert "403" in pend["secret"]["error"]
        await trio.sleep(0.3)
        assert len(faulty.calls_to("put")) == 2  # stopped: no retry behind our back
        # the next sync tries again (the fault is gone)
        res = await rig.sync(timeout=20)
        assert res.ok, res
        assert mem.objects()["secret"] == b"precious"
        assert rig.status()["errors"] == []

    run_rig(body, tmp_path, faulty, write_back_delay=60)


def test_multipart_upload_is_byte_identical(tmp_path):
    blob = random.Random(11).randbytes(3 * MiB + 1000)

    async def body(rig):
        await rig.write_file("big", blob)
        res = await rig.sync()
        assert res.ok, res
        reqs = rig.store.stats.requests
        assert reqs.get("create_multipart") == 1
        assert reqs.get("upload_part") == 13  # ceil((3 MiB + 1000) / 256 KiB)
        assert reqs.get("complete_multipart") == 1
        assert reqs.get("put", 0) == 0
        assert rig.store.objects()["big"] == blob
        assert rig.store.etag_of("big").endswith("-13")
        assert rig.store.list_multipart_uploads() == []  # nothing leaked
        assert rig.stack.journal.get("big").mpu_id is None
        md = rig.store.metadata_of("big")
        assert md["mode"] == str(stat.S_IFREG | 0o644)
        # a small file still goes up with one PUT
        await rig.write_file("small", b"s" * 1000)
        assert (await rig.sync()).ok
        assert rig.store.stats.requests.get("put") == 1

    run_rig(body, tmp_path, write_back_delay=60, multipart_threshold=1 * MiB, part_size=256 * 1024)


def test_multipart_part_failure_is_retried_without_leaking(tmp_path):
    blob = random.Random(12).randbytes(2 * MiB)
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("upload_part", TransientError("500"), times=1)

    async def body(rig):
        await rig.write_file("big", blob)
        res = await rig.sync(timeout=20)
        assert res.ok, res
        assert mem.objects()["big"] == blob
        assert mem.list_multipart_uploads() == []
        assert mem.stats.requests.get("abort_multipart") == 1

    run_rig(body, tmp_path, faulty, write_back_delay=60, multipart_threshold=1 * MiB, part_size=256 * 1024)


CONFLICT_RE = re.compile(r"^shared\.conflict-\d{8}-\d{6}-[^/]+\.txt$")


def test_new_key_upload_does_not_overwrite_another_writer(tmp_path, allow_log):
    """A new key goes up with If-None-Match: another writer's object at the same key
    is never overwritten; with keep-both (default) the local version gets a conflict name."""
    allow_log(r"conflict on 'shared.txt'")
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("shared.txt", b"local bytes")
        assert rig.stack.journal.get("shared.txt").base_etag is None  # "did not exist"
        store.put("shared.txt", b"other writer")  # appears after our create
        other_etag = store.etag_of("shared.txt")
        await rig.sync()
        objs = store.objects()
        # the other writer's object is untouched
        assert objs["shared.txt"] == b"other writer"
        assert store.etag_of("shared.txt") == other_etag
        # the local bytes are not lost: uploaded under a conflict name (keep-both)
        others = [k for k in objs if k != "shared.txt"]
        assert len(others) == 1 and CONFLICT_RE.match(others[0]), others
        assert objs[others[0]] == b"local bytes"
        assert (await rig.sync()).ok
        # the mount shows both: the original name is the bucket's version
        names = sorted(await rig.listdir(""))
        assert names == sorted(["shared.txt", others[0]])
        assert await rig.read_file("shared.txt") == b"other writer"
        assert await rig.read_file(others[0]) == b"local bytes"
        cs = rig.stack.journal.conflicts()
        assert [(c.path, c.kind) for c in cs] == [("shared.txt", "modified")]
        assert others[0] in cs[0].local_to

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_edit_of_remotely_changed_file_does_not_overwrite(tmp_path, allow_log):
    allow_log(r"conflict on 'f'")
    store = MemoryStore("b")
    store.put("f", b"base")

    async def body(rig):
        await rig.write_at("f", 4, b"+local")
        store.put("f", b"remote edit")
        await rig.sync()
        assert (await rig.sync()).ok
        objs = store.objects()
        assert objs["f"] == b"remote edit"
        others = {k: v for k, v in objs.items() if k != "f"}
        assert len(others) == 1
        (name, data), = others.items()
        assert re.match(r"^f\.conflict-\d{8}-\d{6}-.+$", name), name
        assert data == b"base+local"
        assert await rig.read_file("f") == b"remote edit"
        assert await rig.read_file(name) == b"base+local"

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_symlink_round_trip(tmp_path):
    async def body(rig):
        await rig.mkdir("d")
        await rig.symlink("d/link", "../some/target file")
        assert await rig.readlink("d/link") == "../some/target file"
        st = await rig.stat("d/link")
        assert stat.S_ISLNK(st.mode) and st.size == len("../some/target file")
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects()["d/link"] == b"../some/target file"
        md = rig.store.metadata_of("d/link")
        assert stat.S_ISLNK(int(md["mode"]))
        # a fresh mount with an empty cache sees a symlink, not a file
        await rig.restart(cache_dir=str(tmp_path / "cache2"))
        assert await rig.listdir("d") == ["link"]
        assert await rig.readlink("d/link") == "../some/target file"
        st = await rig.stat("d/link")
        assert stat.S_ISLNK(st.mode)
        assert st.size == len("../some/target file")

    run_rig(body, tmp_path, write_back_delay=60)


def test_chmod_of_uploaded_file_is_a_self_copy(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"bytes stay")
        assert (await rig.sync()).ok
        puts = rig.store.stats.requests.get("put", 0)
        copies = rig.store.stats.requests.get("copy", 0)
        up = rig.store.stats.bytes_up
        await rig.chmod("f", 0o600)
        assert stat.S_IMODE((await rig.stat("f")).mode) == 0o600
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.stats.requests.get("put", 0) == puts
        assert rig.store.stats.requests.get("copy", 0) == copies + 1
        assert rig.store.stats.bytes_up == up
        assert rig.store.objects() == {"f": b"bytes stay"}
        assert rig.store.metadata_of("f")["mode"] == str(stat.S_IFREG | 0o600)
        assert not rig.stack.journal.get("f").pending
        # the new ETag is the base of the next edit: no false conflict
        await rig.write_at("f", 0, b"B")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"f": b"Bytes stay"}
        assert rig.store.metadata_of("f")["mode"] == str(stat.S_IFREG | 0o600)

    run_rig(body, tmp_path, write_back_delay=60)


def test_chown_and_utimes_of_remote_object(tmp_path):
    from mountsync.core.filesystem import SetAttr
    store = MemoryStore("b")
    store.put("r", b"x", {"mode": str(stat.S_IFREG | 0o644), "uid": "1", "gid": "1", "mtime": "100"})

    async def body(rig):
        ino = await rig.ino("r")
        await rig.fs.setattr(ino, SetAttr(uid=42, gid=43, mtime_ns=1_600_000_000_250_000_000))
        assert (await rig.sync()).ok
        md = store.metadata_of("r")
        assert (md["uid"], md["gid"], md["mtime"]) == ("42", "43", "1600000000")
        assert store.objects() == {"r": b"x"}
        assert store.stats.requests.get("put", 0) == 1  # only the test's own put
        await rig.restart(cache_dir=str(tmp_path / "cache2"))
        st = await rig.stat("r")
        assert (st.uid, st.gid, st.mtime_ns) == (42, 43, 1_600_000_000_250_000_000)

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_busy_within_counts_only_what_may_start_before_the_horizon(tmp_path):
    """``Reconciler.busy_within``: an edit waiting out the write-back delay counts only for a
    horizon past its due time; once uploaded nothing counts."""

    async def body(rig):
        rec = rig.stack.reconciler
        assert not rec.busy_within(30)
        await rig.write_file("f", b"data")  # due in 60 s
        assert not rec.busy_within(30)
        assert rec.busy_within(120)
        res = await rig.sync()
        assert res.ok, res
        assert not rec.busy_within(120)

    run_rig(body, tmp_path, write_back_delay=60)
