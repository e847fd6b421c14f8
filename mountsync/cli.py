"""Command line: mount, unmount, sync, status, demo (SPEC §2).

Every failure a user can hit prints one line ``mountsync: what, why, what to
do`` on stderr and exits non-zero; a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from . import cli_notify, cli_versions, control
from .config import OPTIONS, BadValue, MountConfig, Option, load_yaml_config
from .errors import UserError
from .source import parse_source

log = logging.getLogger("mountsync")

READY_TIMEOUT = 120.0


# ---------------------------------------------------------------- parsing


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mountsync: {' '.join(message.split())} (see '{self.prog} --help')\n")


def _flag_type(opt: Option) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        try:
            return opt.parse(text)
        except BadValue as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = opt.key
    return read


def _seconds_flag(text: str) -> float:
    try:
        return OPTIONS["write-back-delay"].parse(text)
    except BadValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_mount_options(p: argparse.ArgumentParser) -> None:
    """One flag per option of the schema (``config.OPTIONS``); values are typed by the schema."""
    for opt in OPTIONS.values():
        if not opt.flag:
            continue
        names = ["--" + opt.key] + (["-f"] if opt.key == "foreground" else [])
        if opt.boolean:
            p.add_argument(*names, action="store_true", default=None, help=opt.help)
        else:
            p.add_argument(*names, type=_flag_type(opt), metavar=opt.metavar, help=opt.help)
    p.add_argument("--config", metavar="FILE", help="YAML file of options; flags win over it (default: none)")
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)


def version_text() -> str:
    """``mountsync 0.1.0 (Python 3.11.2, pyfuse3 3.4.0, boto3 1.35.0)``: what a bug report needs."""
    from importlib import metadata

    from . import __version__

    parts = [f"Python {sys.version.split()[0]}"]
    for dist in ("pyfuse3", "boto3"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} not installed")
    return f"mountsync {__version__} ({', '.join(parts)})"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mountsync", description="Mount an S3 bucket as a local folder.")
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    parser.add_argument("--version", action="version", version=version_text(),
                        help="show the version (and those of Python, pyfuse3 and boto3) and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mount", help="mount a bucket (or a prefix of one) at MOUNTPOINT")
    p.add_argument("source", metavar="SOURCE",
                   help="BUCKET[/PREFIX/] or s3://BUCKET[/PREFIX/] (S3 and S3-compatible stores), "
                        "az://ACCOUNT/CONTAINER[/PREFIX/] (Azure Blob Storage), gs://BUCKET[/PREFIX/] "
                        "(Google Cloud Storage)")
    p.add_argument("mountpoint")
    _add_mount_options(p)
    p.add_argument("--debug", action="store_true", dest="debug_mount",
                   help="verbose logs (request level) and tracebacks (default: off)")

    p = sub.add_parser("unmount", help="upload what is pending, then unmount")
    p.add_argument("mountpoint")
    p.add_argument("--timeout", type=_seconds_flag, default=60.0, metavar="SECONDS",
                   help="give up uploading after this long; pending data stays in the cache (default 60)")

    p = sub.add_parser("sync", help="wait until everything written so far is in the bucket")
    p.add_argument("mountpoint")
    p.add_argument("--timeout", type=_seconds_flag, default=None, metavar="SECONDS",
                   help="give up waiting after this long, exit status 1 (default: wait until done)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress (default: a bar on a terminal, else a line every 5 s on stderr)")

    p = sub.add_parser("status", help="pending uploads, errors, cache use, endpoint")
    p.add_argument("mountpoint")
    p.add_argument("--json", action="store_true", help="one JSON object (default: text)")
    p.add_argument("--watch", action="store_true", help="show it again every second until interrupted")

    p = sub.add_parser("conflicts", help="conflicts kept, and where each version went")
    p.add_argument("mountpoint")
    p.add_argument("--json", action="store_true", help="one JSON object (default: text)")

    p = sub.add_parser("resolve", help="resolve a conflict left pending (--conflict-strategy manual)")
    p.add_argument("mountpoint")
    p.add_argument("path", help="path of the file inside the mount")
    p.add_argument("--keep", choices=["local", "remote", "both"], required=True,
                   help="which version stays under the name (both: the local one under a conflict name)")

    cli_versions.add_parsers(sub)
    cli_notify.add_parser(sub)

    p = sub.add_parser("demo", help="embedded S3 server with a bucket, mounted; Ctrl-C unmounts")
    p.add_argument("mountpoint", nargs="?", default="demo-mnt")
    return parser


NOTIFY_METADATA_TTL = 300.0


def config_from_args(args: argparse.Namespace) -> MountConfig:
    """Defaults < config file < flags; every value was typed and checked by the schema."""
    source = parse_source(args.source)
    values: dict = {}
    if args.config:
        values.update(load_yaml_config(args.config))
    for opt in OPTIONS.values():
        v = getattr(args, opt.field, None) if opt.flag else None
        if v is not None:
            values[opt.field] = v
    if getattr(args, "debug_mount", False) or args.debug:
        values["debug"] = True
    if values.get("notify") and "metadata_ttl" not in values:
        values["metadata_ttl"] = NOTIFY_METADATA_TTL  # changes are announced: trust what is known longer
    values["prefix"] = values.get("prefix") or source.prefix
    values.update(bucket=source.bucket, cloud=source.cloud, account=source.account, mountpoint=args.mountpoint)
    return MountConfig(**values).validate()


# ---------------------------------------------------------------- logging


def setup_logging(debug: bool, log_file: str | None = None, log_format: str = "text") -> None:
    handler: logging.Handler
    if log_file:
        from .trust import open_private

        fd = open_private(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # never through a link
        handler = logging.StreamHandler(os.fdopen(fd, "a", buffering=1))
    else:
        handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from .logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not debug else logging.INFO)


# ---------------------------------------------------------------- commands


def cmd_mount(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not config.foreground:
        return _spawn_daemon(args, config)
    from .daemon import Daemon

    log_file = config.log_file
    setup_logging(config.debug, log_file, config.log_format)
    ready_fd = args.ready_fd
    daemon = Daemon(config)
    try:
        daemon.prepare()
    except UserError as exc:
        if ready_fd is not None:
            _tell(ready_fd, "ERROR " + str(exc))
        raise
    except Exception as exc:
        log.exception("the mount could not be set up")
        if ready_fd is not None:
            where = f"; details in {log_file}" if log_file else ""
            _tell(ready_fd, f"ERROR cannot mount: {type(exc).__name__}: {exc}{where}")
        raise

    def ready() -> None:
        if ready_fd is not None:
            _tell(ready_fd, "READY")
        else:
            print(f"mountsync: {config.bucket} mounted at {config.mountpoint} (Ctrl-C to unmount)", file=sys.stderr)

    daemon.run(ready)
    return 0


def _tell(fd: int, message: str) -> None:
    try:
        os.write(fd, (message.replace("\n", " ") + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def _spawn_daemon(args: argparse.Namespace, config: MountConfig) -> int:
    """Start ``mount --foreground`` detached and wait until it is usable or failed."""
    from .daemon import check_mountpoint, clear_dead_mount
    from .spawn import mountsync_argv
    from .trust import open_private, prepare_cache_dir

    clear_dead_mount(config.mountpoint)
    check_mountpoint(config.mountpoint)
    cache_dir = prepare_cache_dir(config.resolved_cache_dir())  # refuses a dir others could change
    log_file = config.log_file or os.path.join(cache_dir, "daemon.log")
    # isolated (-I), this copy of mountsync: no code from the cwd or PYTHONPATH (docs/SECURITY.md)
    argv = mountsync_argv(*(["--debug"] if config.debug else []))
    argv += ["mount"] + _forwarded(args.raw_argv) + ["--foreground", "--log-file", log_file]
    r, w = os.pipe()
    argv += ["--ready-fd", str(w)]
    log_fd = open_private(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with open(os.devnull, "rb") as devnull_in, open(os.devnull, "wb") as devnull_out:
        # stderr goes to the log too, so a crash before logging is set up is not lost
        proc = subprocess.Popen(argv, stdin=devnull_in, stdout=devnull_out, stderr=log_fd,
                                pass_fds=(w,), start_new_session=True, close_fds=True)
    os.close(log_fd)
    os.close(w)
    deadline = time.monotonic() + READY_TIMEOUT
    buf = b""
    with os.fdopen(r, "rb") as pipe:
        while b"\n" not in buf and time.monotonic() < deadline:
            chunk = pipe.read1(4096) if hasattr(pipe, "read1") else pipe.read(4096)
            if not chunk:
                break
            buf += chunk
    line = buf.decode(errors="replace").strip()
    if line == "READY":
        print(f"mountsync: {config.bucket} mounted at {config.mountpoint}")
        return 0
    if line.startswith("ERROR "):
        proc.wait(timeout=30)
        raise UserError(line[len("ERROR "):])
    code = proc.poll()
    raise UserError(f"the mount daemon {'exited with status ' + str(code) if code is not None else 'did not start'}"
                    f" before the mount was ready; see {log_file}")


def _forwarded(argv: list[str]) -> list[str]:
    """The user's ``mount`` arguments, minus those the parent handles itself."""
    out = []
    i = argv.index("mount") + 1 if "mount" in argv else 0
    skip = False
    for a in argv[i:]:
        if skip:
            skip = False
            continue
        if a in ("--foreground", "-f", "--debug"):
            continue
        if a in ("--log-file", "--ready-fd"):
            skip = True
            continue
        if a.startswith(("--log-file=", "--ready-fd=")):
            continue
        out.append(a)
    return out


def cmd_sync(args: argparse.Namespace) -> int:
    """The sync request, with its progress shown meanwhile (mountsync.progress)."""
    from . import progress

    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["reply"] = control.request(args.mountpoint, {"op": "sync", "timeout": args.timeout},
                                               timeout=None if args.timeout is None else args.timeout + 30)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread below
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name="sync", daemon=True)
    worker.start()
    progress.watch(lambda: control.request(args.mountpoint, {"op": "progress"}, timeout=10), done,
                   quiet=args.quiet)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    reply = outcome["reply"]
    if reply.get("ok"):
        return 0
    _report_unfinished("sync", reply)
    return 1


def _report_unfinished(what: str, reply: dict) -> None:
    if "error" in reply:
        print(f"mountsync: {what} failed: {reply['error']}", file=sys.stderr)
        return
    items = reply.get("failed", []) + reply.get("remaining", [])
    print(f"mountsync: {what}: {len(items)} item(s) not in the bucket yet (kept in the cache; "
          f"see 'mountsync status'): {'; '.join(items[:5])}", file=sys.stderr)


EXIT_PENDING = 3  # unmount: unmounted, but uploads are still pending (kept in the cache)
UNMOUNT_STOP_SLACK = 2.0  # unmount returns within --timeout + this
UNMOUNT_STOP_RESERVE = 1.0  # of --timeout, kept for the daemon to stop (at most half of it)


def cmd_unmount(args: argparse.Namespace) -> int:
    """Ask the daemon to upload for at most ``--timeout`` s, then unmount whatever is left.

    Exit 0: everything was uploaded and the mount is gone. 3: the mount is gone
    but N uploads are still pending; they stay in the cache dir and go up at the
    next mount with it. 1: the mount could not be ended (not a mountsync mount,
    daemon not answering, still mounted)."""
    from .daemon import is_mounted

    mp = os.path.abspath(args.mountpoint)
    deadline = time.monotonic() + args.timeout + UNMOUNT_STOP_SLACK
    uploading = max(0.0, args.timeout - min(UNMOUNT_STOP_RESERVE, args.timeout / 2))
    reply = control.request(mp, {"op": "unmount", "timeout": uploading},
                            timeout=max(0.1, deadline - time.monotonic()))
    while is_mounted(mp) and time.monotonic() < deadline:
        time.sleep(0.02)
    if is_mounted(mp):
        print(f"mountsync: {mp} is still mounted {args.timeout + UNMOUNT_STOP_SLACK:g}s after the unmount "
              "request; see 'mountsync status' and the daemon log, or run 'fusermount3 -u -z' on it",
              file=sys.stderr)
        return 1
    if "error" in reply:
        print(f"mountsync: unmounted {mp}, but the daemon reported: {reply['error']}", file=sys.stderr)
        return 1
    pending = [" ".join(str(p).split()) for p in reply.get("failed", []) + reply.get("remaining", [])]
    if not reply.get("ok") and pending:
        print(f"mountsync: unmounted {mp} with {len(pending)} upload(s) still pending; they are kept in the "
              f"cache and go up at the next mount with this cache dir: {'; '.join(pending[:3])}"
              f"{' ...' if len(pending) > 3 else ''}", file=sys.stderr)
        return EXIT_PENDING
    return 0


def _pending_what(p: dict) -> str:
    from .logs import fmt_bytes

    if p.get("renamed_from"):
        return f"{p['path']} (renamed from {p['renamed_from']})"
    share = f", {100 * p['sent'] // p['total']} %" if p["total"] else ""
    return f"{p['path']} ({fmt_bytes(p['sent'])} of {fmt_bytes(p['total'])}{share})"


def format_status(st: dict) -> str:
    from .logs import fmt_bytes

    lines = [
        f"mount:     {st['mountpoint']}  ←  {st.get('source') or 's3://' + st['bucket'] + '/' + st.get('prefix', '')}"
        f"  ({st['endpoint']})",
        f"endpoint:  {'reachable' if st['endpoint_reachable'] else 'UNREACHABLE: ' + str(st['endpoint_error'])}",
        f"pending:   {st['pending_files']} file(s), {fmt_bytes(st['pending_bytes'])}; "
        f"{st.get('pending_renames', 0)} rename(s); {len(st['pending_deletes'])} delete(s)",
        f"cache:     {fmt_bytes(st['cache_bytes'])} used of {fmt_bytes(st['max_cache_size'])} in {st['cache_dir']}",
        f"log:       {st.get('log_file', '?')}",
        f"conflicts: {st.get('conflicts', 0)} ({st.get('conflicts_open', 0)} waiting for you; "
        "see 'mountsync conflicts')",
    ]
    for p in st["pending"][:20]:
        extra = f" — {p['error']} (attempt {p['attempts']})" if p.get("error") else ""
        lines.append(f"  {p['state']:9} {_pending_what(p)}{extra}")
    for d in st["pending_deletes"][:20]:
        extra = f" — {d['error']}" if d.get("error") else ""
        lines.append(f"  {d['state']:9} delete {d['path']}{extra}")
    for e in st["errors"]:
        lines.append(f"error:     {e['item']}: {e['error']}")
    for a in st.get("archived", [])[:20]:
        lines.append(f"archived:  {a['path']} ({a['storage_class']}): restore it before reading it")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    while True:
        st = control.request(os.path.abspath(args.mountpoint), {"op": "status"})
        if args.json:
            print(json.dumps(st, indent=None if args.watch else 2), flush=True)
        else:
            if args.watch:
                print("\x1b[2J\x1b[H", end="")
            print(format_status(st), flush=True)
        if not args.watch:
            return 0
        time.sleep(1)


def cmd_conflicts(args: argparse.Namespace) -> int:
    reply = control.request(os.path.abspath(args.mountpoint), {"op": "conflicts"})
    items = reply.get("conflicts", [])
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no conflicts")
    for c in items:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c["time"]))
        state = "" if c["resolved"] else "  [OPEN: mountsync resolve ... --keep local|remote|both]"
        print(f"{when}  {c['path']}  ({c['kind']}, {c['strategy']})  local → {c['local_to']}; "
              f"bucket → {c['remote_to']}{state}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    mp = os.path.abspath(args.mountpoint)
    path = os.path.relpath(os.path.abspath(args.path), mp) if os.path.isabs(args.path) else args.path
    reply = control.request(mp, {"op": "resolve", "path": path, "keep": args.keep}, timeout=300)
    if reply.get("ok"):
        return 0
    _report_unfinished("resolve", reply)
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.mountpoint, debug=args.debug)


COMMANDS = {"mount": cmd_mount, "unmount": cmd_unmount, "sync": cmd_sync, "status": cmd_status,
            "conflicts": cmd_conflicts, "resolve": cmd_resolve, "demo": cmd_demo,
            "versions": cli_versions.cmd_versions, "restore": cli_versions.cmd_restore,
            "notify-setup": cli_notify.cmd_notify_setup}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.raw_argv = list(sys.argv[1:] if argv is None else argv)
    debug = args.debug or getattr(args, "debug_mount", False)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        if debug:
            raise
        print(f"mountsync: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an unexpected failure: one line unless --debug
        if debug:
            raise
        print(f"mountsync: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 1
