"""The mount daemon's lifecycle.

Order: check the mountpoint and FUSE → connect the backend and check the
bucket → open the stack (lock the cache dir, journal, local recovery) →
``pyfuse3.init`` (the mount exists from here) → report ready → run the trio
loop with one nursery holding the reconciler, the control socket and the
signal watcher → the FUSE session ends (``unmount`` command, signal or
external umount) → drain pending uploads within the timeout → close.

Every failure before the mount is ready is a ``UserError`` (one line).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import asdict

import trio

from . import control, control_server, keys, sdnotify, versions
from .backend.base import (
    AccessDeniedError,
    BucketNotFoundError,
    StoreError,
    TransientError,
    UnreachableError,
)
from .change_watch import ChangeWatcher
from .config import MountConfig
from .errors import UserError
from .events import EventBus, InvalidateEntry, InvalidateInode
from .fuse import adapter as fuse
from .malloc_arenas import limit_malloc_arenas
from .stack import Stack

log = logging.getLogger("mountsync")

DEFAULT_DRAIN_TIMEOUT = 60.0
NOTIFY_INTERVAL = 2.0  # seconds between checks of what systemd's STATUS= line says
SWITCH_INTERVAL = 0.0005  # seconds; see Daemon.run


def _unescape_mount_field(text: str) -> str:
    """/proc/self/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def is_mounted(mountpoint: str) -> str | None:
    """The filesystem type if ``mountpoint`` is a mount point (from /proc/self/mounts)."""
    head, tail = os.path.split(os.path.abspath(mountpoint).rstrip("/") or "/")
    real = os.path.join(os.path.realpath(head), tail)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and _unescape_mount_field(parts[1]) == real:
                    return parts[2]
    except OSError:
        return None
    return None


def check_mountpoint(mountpoint: str) -> None:
    try:
        st = os.stat(mountpoint)
    except FileNotFoundError:
        raise UserError(f"mountpoint {mountpoint} does not exist: create it with mkdir -p {mountpoint}") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise UserError(f"{mountpoint} is a dead mount (its daemon died): run 'fusermount3 -u {mountpoint}' "
                            "or mount again (mountsync cleans it up)") from None
        raise UserError(f"cannot use mountpoint {mountpoint}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"mountpoint {mountpoint} is not a directory")
    if is_mounted(mountpoint):
        raise UserError(f"{mountpoint} is already mounted: unmount it first")
    if os.listdir(mountpoint):
        raise UserError(f"mountpoint {mountpoint} is not empty: use an empty directory")
    if not os.path.exists("/dev/fuse"):
        raise UserError("FUSE is not available (/dev/fuse is missing): load the fuse module or install fuse3")


def clear_dead_mount(mountpoint: str) -> None:
    """If ``mountpoint`` is a mountsync mount whose daemon died, detach it."""
    try:
        os.statvfs(mountpoint)  # statfs always reaches the daemon; stat may be served from the attr cache
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTCONN, errno.ECONNABORTED):
            return
    fstype = is_mounted(mountpoint) or ""
    if fstype.startswith("fuse"):
        log.info("detaching dead mount at %s", mountpoint)
        detach_lazily(mountpoint)


def detach_lazily(mountpoint: str) -> bool:
    """``fusermount3 -u -z``, else ``umount -l``; argv lists, never a shell (the name is untrusted).

    The path is made absolute, so it can never be read as an option."""
    path = os.path.abspath(mountpoint)
    for argv in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return True
    return False


def _where(config: MountConfig) -> str:
    if config.endpoint_url:
        return config.endpoint_url
    return {"s3": "AWS S3", "gcs": "Google Cloud Storage"}.get(config.cloud, f"Azure account {config.account!r}")


def _credentials_hint(config: MountConfig) -> str:
    if config.cloud == "gcs":
        return ("check the Google credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default "
                "login) and the bucket's IAM roles")
    if config.cloud == "azure":
        return ("check the Azure credentials (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, "
                "AZURE_STORAGE_SAS_TOKEN) and the container's access")
    return "check the AWS credentials (environment, --profile) and the bucket policy"


def check_bucket(store, config: MountConfig) -> None:
    where = _where(config)
    try:
        store.check_bucket()
    except BucketNotFoundError:
        raise UserError(f"bucket {config.bucket!r} does not exist at {where}: check the name or create it") from None
    except AccessDeniedError as exc:
        raise UserError(f"access to bucket {config.bucket!r} denied ({exc}): {_credentials_hint(config)}") from None
    except UnreachableError as exc:
        raise UserError(f"endpoint {where} is unreachable ({exc}): check --endpoint-url and the network") from None
    except TransientError as exc:
        raise UserError(f"endpoint {where} did not answer the bucket check ({exc}): check --endpoint-url, "
                        "the network and the server, then mount again") from None
    except StoreError as exc:
        raise UserError(f"cannot use bucket {config.bucket!r} at {where}: {exc}") from None


WRITE_CHECK = ".mountsync-write-check-"


def check_writable(store, config: MountConfig) -> None:
    """One write the way uploads write (storage class, SSE, KMS key), then its delete: a bad
    value or a missing permission fails the mount now, in one line, instead of every upload
    later. Skipped with --read-only. A delete that is refused is logged (deletes and renames
    will fail the same way) and, with --allow-delete, refuses the mount."""
    if config.read_only:
        return
    where = _where(config)
    key = keys.normalize_prefix(config.prefix) + WRITE_CHECK + uuid.uuid4().hex
    settings = ", ".join(f"{flag} {value}" for flag, value in (
        ("--storage-class", config.storage_class), ("--sse", config.sse), ("--sse-kms-key-id", config.sse_kms_key_id))
        if value) or "no storage class or encryption options"
    try:
        store.put(key, b"", {})
    except AccessDeniedError as exc:
        raise UserError(f"the credentials may not write to bucket {config.bucket!r} ({exc}; {settings}): mount "
                        "with --read-only, or use credentials allowed s3:PutObject (and the KMS key, if any)") from None
    except TransientError as exc:
        raise UserError(f"endpoint {where} did not answer a test write ({exc}): check the network and the "
                        "server, then mount again") from None
    except StoreError as exc:
        raise UserError(f"bucket {config.bucket!r} refused a test write ({exc}; {settings}): check those "
                        "options, or mount with --read-only") from None
    try:
        store.delete(key)
    except StoreError as exc:
        if config.allow_delete:
            raise UserError(f"the credentials may write to bucket {config.bucket!r} but not delete ({exc}), and "
                            f"--allow-delete was given: allow s3:DeleteObject, or mount without it (the test "
                            f"object {key!r} is left in the bucket)") from None
        log.warning("the test object %r could not be deleted (%s): deletes and renames in this mount will "
                    "fail the same way; remove it when you can", key, exc)


def make_store(config: MountConfig):
    if config.cloud == "azure":
        try:
            from .backend.azure import AzureStore
        except ImportError:
            raise UserError("az:// needs the Azure SDK, which is not installed: pip install 'mountsync[azure]'") \
                from None
        return AzureStore(config.account, config.bucket, endpoint_url=config.endpoint_url,
                          no_sign_request=config.no_sign_request, tier=config.storage_class)
    if config.cloud == "gcs":
        try:
            from .backend.gcs import GcsStore
        except ImportError:
            raise UserError("gs:// needs the Google Cloud Storage SDK, which is not installed: "
                            "pip install 'mountsync[gcs]'") from None
        return GcsStore(config.bucket, endpoint_url=config.endpoint_url, no_sign_request=config.no_sign_request,
                        storage_class=config.storage_class)
    from .backend.s3 import S3Store

    return S3Store(
        bucket=config.bucket, endpoint_url=config.endpoint_url, region=config.region,
        profile=config.profile, force_path_style=config.force_path_style,
        no_sign_request=config.no_sign_request, storage_class=config.storage_class,
        sse=config.sse, sse_kms_key_id=config.sse_kms_key_id,
    )


def make_watcher(config: MountConfig, store) -> ChangeWatcher:
    """The --notify queue's watcher (its events and gap hook are the stack's, set at run);
    the queue is checked now, so a wrong URL or a missing permission fails the mount."""
    from .backend.s3_notify import SqsFeed
    from .change_feed import queue_url

    if config.cloud != "s3":
        raise UserError(f"--notify takes an SQS queue of S3 event notifications; {config.source_url()} is not S3")
    url = queue_url(config.notify or "", config.endpoint_url)
    try:
        feed = SqsFeed(url, endpoint_url=config.endpoint_url, region=config.region, profile=config.profile)
        feed.check()
    except StoreError as exc:
        raise UserError(f"cannot read the --notify queue {url} ({exc}): check the URL and that the credentials "
                        "may sqs:ReceiveMessage and sqs:DeleteMessage ('mountsync notify-setup' makes one)") from None
    return ChangeWatcher(feed, keys.normalize_prefix(config.prefix), EventBus(), lambda: None)


class Daemon:
    """One mount. ``prepare()`` does everything that can fail with a user error;
    ``run()`` serves until unmounted."""

    def __init__(self, config: MountConfig, store=None) -> None:
        self.config = config
        self.store = store
        self.stack: Stack | None = None
        self.mounted = False
        self.started = time.time()
        self._drained = False  # an unmount request already spent its time on uploads: stop without waiting
        self.watcher: ChangeWatcher | None = None  # --notify: applies the bucket's change notifications

    def prepare(self) -> None:
        limit_malloc_arenas()  # before any thread: see mountsync.malloc_arenas
        clear_dead_mount(self.config.mountpoint)
        check_mountpoint(self.config.mountpoint)
        if self.store is None:
            try:
                self.store = make_store(self.config)
            except StoreError as exc:
                raise UserError(f"cannot use {self.config.source_url()}: {exc}") from None
        check_bucket(self.store, self.config)
        check_writable(self.store, self.config)
        self.watcher = make_watcher(self.config, self.store) if self.config.notify else None
        self.stack = Stack.open(self.config, self.store)
        versions.clear_leftovers(self.stack.cache_dir)
        adapter = fuse.FuseAdapter(self.stack.fs, writeback_cache=self.config.writeback_cache)
        source = f"{self.config.bucket}/{self.config.prefix}" if self.config.prefix else self.config.bucket
        flags = tuple(f for f in ("noexec", "nosuid", "nodev") if getattr(self.config, f))
        opts = fuse.mount_options(source, allow_other=self.config.allow_other,
                                  allow_root=self.config.allow_root, read_only=self.config.read_only, flags=flags)
        try:
            fuse.init(adapter, self.config.mountpoint, opts)
        except RuntimeError as exc:
            self.stack.close()
            raise UserError(f"cannot mount at {self.config.mountpoint}: {exc} (is FUSE available?)") from None
        self.mounted = True

    @property
    def live(self) -> Stack:
        """The stack that ``prepare()`` opened; serving before it is a programming error."""
        if self.stack is None:
            raise RuntimeError("Daemon.prepare() has not run")
        return self.stack

    @property
    def socket(self) -> str:
        return control.socket_path(self.config.mountpoint)

    def run(self, on_ready=None) -> None:
        # FUSE handlers on the trio thread take the interpreter lock back from transfer
        # threads after at most this long (default 5 ms: a wait per FUSE request)
        sys.setswitchinterval(SWITCH_INTERVAL)
        trio.run(self._main, on_ready)

    async def _main(self, on_ready) -> None:
        stack = self.live
        sock = self.socket
        send, receive = trio.open_memory_channel(10_000)

        def to_kernel(ev: object) -> None:
            try:
                if isinstance(ev, InvalidateInode):
                    send.send_nowait(("inode", (ev.ino,)))
                elif isinstance(ev, InvalidateEntry):
                    send.send_nowait(("entry", (ev.parent_ino, ev.name)))
            except trio.WouldBlock:
                log.debug("kernel invalidation queue full; the TTL bounds staleness")

        stack.events.subscribe(to_kernel)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fuse.invalidate_kernel_caches, receive)
            nursery.start_soon(stack.run_background)
            await nursery.start(control_server.serve, sock, self._handle)
            nursery.start_soon(self._watch_signals)
            if self.watcher is not None:
                self.watcher.events = stack.events
                self.watcher.on_gap = stack.fs.tree.forget_remote_state
                nursery.start_soon(self.watcher.run)
            if on_ready is not None:
                on_ready()
            if os.environ.get("NOTIFY_SOCKET"):  # systemd Type=notify: ready now, then what is pending
                sdnotify.notify("READY=1\n" + sdnotify.status_line(stack.reconciler.status()))
                nursery.start_soon(self._report_to_service_manager)
            log.info("mounted %s at %s (cache %s)", stack.store.sync.describe(), self.config.mountpoint,
                     stack.cache_dir)
            try:
                await fuse.serve()
            finally:
                # the kernel session is over: upload what is pending (unless an unmount request
                # already gave uploads its --timeout), then stop; what is left stays in the cache
                with trio.CancelScope(shield=True):
                    result = await stack.drain(DEFAULT_DRAIN_TIMEOUT if not self._drained else 0.1)
                    if not result.ok:
                        log.warning("unmounted with %d item(s) not uploaded; they stay in the cache "
                                    "and are uploaded at the next mount: %s",
                                    len(result.failed) + len(result.remaining),
                                    ", ".join((result.failed + result.remaining)[:5]))
                nursery.cancel_scope.cancel()
        fuse.close(unmount=True)
        self.mounted = False
        stack.close()

    async def _shutdown(self, timeout: float) -> dict:
        """Upload what is pending for at most ``timeout`` s, then end the FUSE session.

        The mount goes away right after, uploaded or not: what is still pending
        stays in the cache (journal + data files) and goes up at the next mount.
        Store calls still running are abandoned (``Bucket``), so stopping
        does not wait for the network."""
        sdnotify.notify("STOPPING=1\nSTATUS=uploading what is pending, then unmounting")
        result = await self.live.drain(max(0.0, timeout))
        self._drained = True
        fuse.terminate()
        return result.to_json()

    async def _report_to_service_manager(self) -> None:
        """``STATUS=`` for ``systemctl status``, when what is pending changes (checked every
        NOTIFY_INTERVAL s; no request: the counts are the journal's)."""
        last = ""
        while True:
            await trio.sleep(NOTIFY_INTERVAL)
            line = sdnotify.status_line(self.live.reconciler.status())
            if line != last:
                sdnotify.notify(line)
                last = line

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                log.info("signal %d: uploading what is pending, then unmounting", signum)
                await self._shutdown(DEFAULT_DRAIN_TIMEOUT)
                return

    async def _handle(self, req: dict) -> dict:
        stack = self.live
        op = req.get("op")
        timeout = req.get("timeout")
        if op == "sync":
            return (await stack.reconciler.sync(timeout)).to_json()
        if op == "status":
            return await self._status()
        if op == "progress":  # what is pending, without asking the endpoint (mountsync sync polls it)
            return {"ok": True, **stack.reconciler.status()}
        if op == "unmount":
            return await self._shutdown(DEFAULT_DRAIN_TIMEOUT if timeout is None else timeout)
        if op == "conflicts":
            return {"ok": True, "conflicts": [asdict(c) for c in stack.journal.conflicts()]}
        if op == "resolve":
            keep = req.get("keep")
            if keep not in ("local", "remote", "both"):
                return {"ok": False, "error": "keep must be local, remote or both"}
            return (await stack.reconciler.resolve(str(req.get("path", "")).strip("/"), keep)).to_json()
        if op in ("versions", "fetch_version"):
            path = versions.inside_path(req.get("path"))
            if path is None:
                return {"ok": False, "error": f"not a file inside the mount: {req.get('path')!r}"}
            if op == "versions":
                return await versions.list_versions(stack.store, path)
            return await versions.fetch_version(stack.store, path, str(req.get("version_id", "")), stack.cache_dir)
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        return {"ok": False, "error": f"unknown request {op!r}"}

    async def _status(self) -> dict:
        stack = self.live
        reachable = True
        reason = None
        try:
            with trio.fail_after(5):
                await stack.store.check_bucket()
        except trio.TooSlowError:
            reachable, reason = False, "no answer within 5s"
        except StoreError as exc:
            reachable, reason = False, str(exc)
        st = stack.reconciler.status()
        st.update({
            "ok": True,
            "mountpoint": self.config.mountpoint,
            "bucket": self.config.bucket,
            "source": self.config.source_url(),
            "prefix": self.config.prefix,
            "endpoint": self.config.endpoint_url or ("aws" if self.config.cloud == "s3" else "default"),
            "endpoint_reachable": reachable,
            "endpoint_error": reason,
            "cache_dir": stack.cache_dir,
            "log_file": self.config.log_file or "stderr",
            "archived": [{"path": p, "storage_class": c} for p, c in sorted(stack.fs.ctx.archived.items())],
            "notify": None if self.watcher is None else {
                "queue": self.watcher.feed.describe(), "events_applied": self.watcher.applied,
                "polls": self.watcher.polls,
                "failing_since": self.watcher.failing_since},
            "cache_bytes": await trio.to_thread.run_sync(stack.data.disk_usage),
            "max_cache_size": self.config.max_cache_size,
            "backend": stack.store.sync.stats.snapshot(),
            "pid": os.getpid(),
            "uptime": time.time() - self.started,
        })
        return st
