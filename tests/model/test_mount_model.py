"""Differential model test of a REAL mount against a plain local directory (SPEC §3–§6).

One mount (``--allow-delete``, short write-back delay so uploads really happen
during the run, ``--metadata-ttl 1`` so attributes and listings are re-read from
the bucket during the run) is made per test function and reused by every
hypothesis example. A plain directory on the local disk is the model: every
operation is applied to both, and

- both must succeed with the same result (bytes read, link target), or both must
  fail with the same errno;
- after every step the two trees must be the same: names, types, sizes, file
  contents, symlink targets, permission bits, uid/gid, and the mtime (to the second) of
  every entry whose mtime was set explicitly by ``utime`` (those times lie in
  2001–2011, so "explicit" is recognised on either side).

Also checked: after every ``sync`` the bucket holds exactly the local tree
(bodies, ``x-amz-meta-mode``/``-mtime``, directory markers); after every step no
new WARNING/ERROR line is in daemon.log (one writer never meets a conflict).

Between examples both sides are cleared (through the mount, which needs
``--allow-delete``), the mount is synced, and the bucket must then be empty.

The composite rule ``mvdir_race`` makes the interleavings of the safety issue frequent: another
writer adds a key below a directory, a file below it is created and its upload is let start
(``nap``), then the directory is renamed (a renamed directory is listed afresh, so the other
writer's key shows at once under the new name; if the rename fails, a ``wait`` follows).

The operations (tuples, so that a failure can be kept as an explicit op list)
and the checks live in ``mount_differ.py`` (``apply``, ``Differ``, ``run_ops``);
this module holds the state machine and the random test. When the machine
fails, the assertion message carries the op list of the failing example, ready
to paste into a regression test in ``test_mount_model_regressions.py``
(``run_ops(mnt, local, OPS)``).

Knobs (environment): ``MOUNTSYNC_MODEL_EXAMPLES`` (default 40),
``MOUNTSYNC_MODEL_STEPS`` (20), ``MOUNTSYNC_MODEL_RANDOM=1`` (random, not derandomized, examples),
``MOUNTSYNC_MODEL_DELAY`` (the mount's --write-back-delay, 0.2).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.model.mount_differ import EXPLICIT_HI, EXPLICIT_LO, Differ, fmt_op, snapshot
from tests.support.proxy import Proxy

pytestmark = [pytest.mark.model, pytest.mark.fuse, pytest.mark.moto]

MOUNT_OPTIONS = ("--allow-delete", "--metadata-ttl", "1",
                 "--write-back-delay", os.environ.get("MOUNTSYNC_MODEL_DELAY", "0.2"))

# CI: 40 derandomized examples of up to 20 steps (reproducible, ~40 s). For a bug hunt:
# MOUNTSYNC_MODEL_EXAMPLES=300 MOUNTSYNC_MODEL_STEPS=40 MOUNTSYNC_MODEL_RANDOM=1 pytest tests/model/test_mount_model.py
EXAMPLES = int(os.environ.get("MOUNTSYNC_MODEL_EXAMPLES", "40"))
STEPS = int(os.environ.get("MOUNTSYNC_MODEL_STEPS", "20"))
DERANDOMIZE = os.environ.get("MOUNTSYNC_MODEL_RANDOM", "") in ("", "0")

# A small name space, so that operations collide: names a, b, c in the root and
# in subdirectories a/ and b/ (a name can be a file, a directory or a symlink).
PATHS = ["a", "b", "c", "a/a", "a/b", "b/a", "b/c", "a/a/b"]
# Relative targets without "..": whatever they resolve to stays inside the root
# (a link can never make an operation touch something outside either tree).
# "/nonexistent-mountsync-model/x" is dangling everywhere (its parent does not exist).
TARGETS = ["a", "b", "c", "x", "a/b", "b/a", "a/a/b", "/nonexistent-mountsync-model/x"]
SEED_DIRS = ["a", "b", "a/a"]
SEED_FILES = ["c", "a/b", "b/a", "b/c", "a/a/b"]
MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o000, 0o777, 0o640]
OFFSETS = [0, 1, 2, 5, 13, 4095, 4096, 4097, 70_000, (1 << 20) + 1]
SIZES = [0, 1, 3, 8, 20, 4096, 4097, 70_000, (1 << 20) - 1]


# ----------------------------------------------------------------- the machine

paths = st.sampled_from(PATHS)
# mostly tiny; sometimes 2 MiB, whose upload takes long enough for the next ops to meet it in flight
payloads = st.one_of(st.binary(min_size=1, max_size=12), st.sampled_from([b"", b"x" * 5000, b"z" * (2 << 20)]))


class MountVsLocal(RuleBasedStateMachine):
    """Set ``differ`` on a subclass before running."""

    differ: Differ

    @initialize(files=st.lists(st.tuples(st.sampled_from(SEED_FILES), payloads), unique_by=lambda t: t[0]),
                wait=st.booleans())
    def start(self, files, wait):
        """Start from a populated tree (so most ops meet something): directories a, b, a/a and some
        files; with ``wait`` they are uploaded and the caches expired before the first op."""
        self.differ.reset()
        for d in SEED_DIRS:
            self.differ.step(("mkdir", d))
        for p, data in files:
            self.differ.step(("create", p, data, 0o644))
        if wait:
            self.differ.step(("wait",))
        self.differ.check_tree(" after the seed ops")

    def pick(self, data, kinds: tuple[str, ...] = ("file", "dir", "link")) -> str:
        """A path from the name space, or (more often) one that exists now in the model
        (preferring the kinds the op works on), so that ops do not mostly fail with ENOENT."""
        existing = [p for p, d in snapshot(self.differ.local, contents=False).items() if d[0] in kinds]
        if existing and data.draw(st.integers(0, 2), label="existing?"):
            return data.draw(st.sampled_from(existing), label="path")
        return data.draw(paths, label="path")

    @rule(p=paths, data=payloads, mode=st.sampled_from(MODES))
    def create(self, p, data, mode):
        self.differ.step(("create", p, data, mode))

    @rule(d=st.data(), offset=st.sampled_from(OFFSETS), data=payloads)
    def write(self, d, offset, data):
        self.differ.step(("write", self.pick(d, ("file", "link")), offset, data))

    @rule(d=st.data(), data=payloads, creat=st.booleans())
    def append(self, d, data, creat):
        self.differ.step(("append", self.pick(d, ("file", "link")), data, creat))

    @rule(d=st.data(), size=st.sampled_from(SIZES))
    def truncate(self, d, size):
        self.differ.step(("truncate", self.pick(d, ("file", "link")), size))

    @rule(d=st.data(), dst=paths)
    def rename(self, d, dst):
        self.differ.step(("rename", self.pick(d), dst))

    def existing_dirs(self) -> list[str]:
        return [p for p, d in snapshot(self.differ.local, contents=False).items() if d[0] == "dir"]

    @rule(d=st.data(), name=st.sampled_from(["a", "b", "f"]), data=st.one_of(payloads, st.just(b"u" * (2 << 20))),
          upload=st.booleans(), other=st.booleans(), dst=st.one_of(paths, st.just("m")))
    def mvdir_race(self, d, name, data, upload, other, dst):
        """A directory is renamed while (``upload``) a file just written below it is being
        uploaded, and/or right after (``other``) another writer added a key below it."""
        dirs = self.existing_dirs()
        if not dirs:
            return
        src = d.draw(st.sampled_from(dirs), label="dir")
        if other:
            self.n_other = getattr(self, "n_other", 0) + 1
            self.differ.step(("other_put", f"{src}/o{self.n_other}", data[:64] or b"o", False))
        if upload:
            self.differ.step(("create", f"{src}/{name}", data, 0o644))
            self.differ.step(("nap",))
        result = self.differ.step(("rename", src, dst))
        if other and (result[0] == "err" or dst == src):
            # not moved (an error, or a rename onto itself, which does nothing): the mount
            # shows the other writer's key only after the TTL
            self.differ.step(("wait",))

    @rule(d=st.data(), dst=st.one_of(paths, st.just("m")))
    def offline_rename(self, d, dst):
        """A rename (of a file, a symlink or a directory) while the endpoint is cut: the
        mount must do it from what it knows, as the local directory does. A cut may catch
        a PUT in flight and lose its answer (the mount then meets its own landed upload:
        tests/faults/core/test_core_faults.py covers both ways it can)."""
        self.differ.step(("cut",))
        try:
            self.differ.step(("rename", self.pick(d), dst))
        finally:
            self.differ.step(("restore",))

    @rule(p=paths)
    def mkdir(self, p):
        self.differ.step(("mkdir", p))

    @rule(d=st.data())
    def rmdir(self, d):
        self.differ.step(("rmdir", self.pick(d, ("dir",))))

    @rule(d=st.data())
    def unlink(self, d):
        self.differ.step(("unlink", self.pick(d, ("file", "link"))))

    @rule(d=st.data(), mode=st.sampled_from(MODES))
    def chmod(self, d, mode):
        self.differ.step(("chmod", self.pick(d), mode))

    @rule(d=st.data(), sec=st.integers(EXPLICIT_LO, EXPLICIT_HI),
          ns=st.sampled_from([0, 1, 499_999_999, 999_999_999]), follow=st.booleans())
    def utime(self, d, sec, ns, follow):
        self.differ.step(("utime", self.pick(d), sec * 10**9 + ns, follow))

    @rule(dest=st.sampled_from(TARGETS), p=paths)
    def symlink(self, dest, p):
        self.differ.step(("symlink", dest, p))

    @rule(d=st.data())
    def readlink(self, d):
        self.differ.step(("readlink", self.pick(d, ("link",))))

    @rule(d=st.data())
    def read(self, d):
        self.differ.step(("read", self.pick(d, ("file", "link"))))

    @rule(kind=st.sampled_from(["sync", "wait", "nap"]))
    def settle(self, kind):
        self.differ.step((kind,))

    @invariant()
    def same_tree(self):
        if self.differ.ops:
            self.differ.check_tree(f" after {fmt_op(self.differ.ops[-1])}")


@pytest.fixture
def model_proxy(moto_endpoint):
    """In front of the endpoint; ``offline_rename`` cuts it. Set up before the mount, so
    closed after the mount's teardown (which uploads what is pending)."""
    proxy = Proxy(moto_endpoint)
    yield proxy
    proxy.close()


@pytest.fixture
def model_mount(model_proxy, mount, tmp_path):
    m = mount(*MOUNT_OPTIONS, endpoint=model_proxy.endpoint)
    local = tmp_path / "local"
    local.mkdir()
    yield m, local, model_proxy
    if model_proxy.is_cut:
        model_proxy.restore()


def test_mount_matches_local_dir(model_mount, s3):
    m, local, proxy = model_mount

    class Machine(MountVsLocal):
        pass

    Machine.differ = Differ(m, local, s3, proxy)
    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=DERANDOMIZE,
                          database=None, print_blob=False,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large]),
    )
    # shown with -s: what the run exercised
    print("\nmount model outcomes:", ", ".join(f"{k}={v}" for k, v in sorted(Machine.differ.stats.items())))

