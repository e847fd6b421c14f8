"""Mount configuration: one immutable dataclass and one schema for its options.

Precedence: command-line flags > ``--config`` YAML file > defaults.
Credentials are never part of the configuration (standard AWS chain only).

The schema (``OPTIONS``, one ``Option`` per ``MountConfig`` field) is the only
place where an option's type, range or choices are decided; the command line
(``cli.py`` builds its flags from it) and the config file both go through
``Option.parse``, so a value is accepted or refused the same way in both. Every
refusal is a ``UserError`` with exit status 2 and one line naming the option
and the accepted form.

Config file rules (``load_config_text``):

- The YAML is parsed first; ``${VAR}`` and ``${VAR:default}`` are then replaced
  inside each parsed scalar value (never in keys or comments), so whatever a
  variable holds, newlines included, stays inside that one value.
- A boolean is only an unquoted ``true`` or ``false`` (any case). A quoted
  ``"false"``, ``yes``, ``on`` or ``1`` is an error, never a truthy string.
- Other values are read from their text exactly like the same text on the
  command line (a quoted ``"5"`` is 5 seconds). ``null``, ``~`` or nothing
  means "use the default".
- Unknown keys, keys given twice and lists or mappings as values are errors.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import UserError
from .keys import normalize_prefix

CONFLICT_STRATEGIES = ("keep-both", "local-wins", "remote-wins", "newest-wins", "manual")


@dataclass(frozen=True)
class MountConfig:
    bucket: str  # for Azure: the container
    mountpoint: str
    prefix: str = ""
    cloud: str = "s3"  # "s3", "gcs" or "azure" (mountsync.source)
    account: str = ""  # Azure: the storage account
    region: str | None = None
    endpoint_url: str | None = None
    force_path_style: bool = False
    profile: str | None = None
    no_sign_request: bool = False
    read_only: bool = False
    allow_delete: bool = False
    cache_dir: str | None = None
    max_cache_size: int = 10 * 1024**3
    write_back_delay: float = 5.0
    metadata_ttl: float = 5.0
    negative_metadata_ttl: float | None = None  # how long "no such name" is trusted; None: metadata_ttl
    conflict_strategy: str = "keep-both"
    fsync_upload: bool = False
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    file_mode: int = 0o644
    dir_mode: int = 0o755
    allow_other: bool = False
    allow_root: bool = False
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    foreground: bool = False
    log_file: str | None = None
    log_format: str = "text"  # or "json": one object per line, for log shippers
    debug: bool = False
    upload_workers: int = 8
    multipart_threshold: int = 64 * 1024**2
    part_size: int = 16 * 1024**2
    read_timeout: float = 30.0
    conditional_writes: str = "auto"  # auto: probe once per cache dir; yes/no: trust this
    writeback_cache: bool = False  # kernel writeback cache: faster writes, but the kernel then ignores
    # size changes made by other writers (see docs/ARCHITECTURE.md)
    noexec: bool = False  # the kernel's mount flags (mount(8) -o noexec,nosuid,nodev)
    nosuid: bool = False
    nodev: bool = False
    notify: str | None = None  # an SQS queue of the bucket's event notifications (docs/MULTI-MOUNT.md)

    def resolved_cache_dir(self) -> str:
        """The cache dir: ``--cache-dir`` or one per (endpoint, bucket, prefix) under XDG_CACHE_HOME."""
        if self.cache_dir:
            return os.path.abspath(self.cache_dir)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        ident = f"{self.endpoint_url or 'aws'}|{self.bucket}|{self.prefix}"
        if self.cloud != "s3":
            ident = f"{self.cloud}|{self.account}|{self.endpoint_url or 'default'}|{self.bucket}|{self.prefix}"
        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return os.path.join(base, "mountsync", f"{self.bucket}-{digest}")

    def source_url(self) -> str:
        """Where the objects are, as a URL (``s3://bucket/prefix/``, ``az://account/container/``)."""
        from .source import Source

        return Source(self.cloud, self.bucket, normalize_prefix(self.prefix), self.account).url()

    def validate(self) -> MountConfig:
        """Checks that involve several options (each option's own form is checked by ``OPTIONS``)
        and a last guard for configs built in code; returns the normalized config."""
        if self.conflict_strategy not in CONFLICT_STRATEGIES:
            raise UserError(f"unknown --conflict-strategy {self.conflict_strategy!r}: use one of "
                            f"{', '.join(CONFLICT_STRATEGIES)}", code=2)
        if min(self.write_back_delay, self.metadata_ttl, self.negative_metadata_ttl or 0.0) < 0:
            raise UserError("--write-back-delay, --metadata-ttl and --negative-metadata-ttl must not be negative",
                            code=2)
        if self.sse not in (None, "AES256", "aws:kms"):
            raise UserError(f"unknown --sse {self.sse!r}: use AES256 or aws:kms", code=2)
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise UserError("--sse-kms-key-id needs --sse aws:kms", code=2)
        if self.cloud != "s3":
            s3_only = [flag for flag, value in (("--sse", self.sse), ("--sse-kms-key-id", self.sse_kms_key_id),
                                                ("--profile", self.profile), ("--region", self.region),
                                                ("--force-path-style", self.force_path_style)) if value]
            if s3_only:
                raise UserError(f"{', '.join(s3_only)}: S3 only, not for {self.source_url()}", code=2)
        if self.allow_other and self.allow_root:
            raise UserError("--allow-other and --allow-root exclude each other: use one "
                            "(--allow-other already lets root in)", code=2)
        negative = self.metadata_ttl if self.negative_metadata_ttl is None else self.negative_metadata_ttl
        return replace(self, prefix=normalize_prefix(self.prefix), mountpoint=os.path.abspath(self.mountpoint),
                       negative_metadata_ttl=negative)


# ---------------------------------------------------------------- reading values from text

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SECONDS_RE = re.compile(r"^\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_WHOLE_RE = re.compile(r"^\s*\d+\s*$")
_MODE_RE = re.compile(r"^\s*0*[0-7]{1,4}\s*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel


def _size_value(text: str) -> int:
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(text)
    number, unit = float(m.group(1)), m.group(2).lower()
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[unit]
    return int(number * mult)


def parse_size(text: str | int) -> int:
    """``"512M"``, ``"10GiB"``, ``"1048576"`` → bytes (binary multiples)."""
    if isinstance(text, int):
        return text
    try:
        return _size_value(text)
    except ValueError:
        raise UserError(f"cannot read size {text!r}: write it like 512M, 10G or 1048576", code=2) from None


def parse_mode(text: str | int) -> int:
    if isinstance(text, int):
        return text
    if not _MODE_RE.match(str(text)):
        raise UserError(f"cannot read mode {text!r}: write it in octal, like 0644", code=2)
    return int(str(text), 8)


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:default}``; an unset VAR without default is an error."""

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise UserError(f"${{{name}}} is not set: export it or write ${{{name}:default}}", code=2)

    return _VAR_RE.sub(sub, text)


# ---------------------------------------------------------------- the schema


class BadValue(ValueError):
    """A value an option refuses; ``str()`` is one line ending with the accepted form."""


def _show(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:76] + "...'"


@dataclass(frozen=True)
class Option:
    """One mount option: its name in the config file (``--`` + key on the command line),
    how its text is read, and the accepted form that every refusal shows."""

    key: str
    read: Callable[[str], Any]  # text → value; raises ValueError when the text is not accepted
    accepted: str
    help: str = ""
    flag: bool = True  # also a command-line flag (else: config file only)
    boolean: bool = False  # a switch: a bare flag, or true/false in the config file
    metavar: str | None = None

    @property
    def field(self) -> str:
        return self.key.replace("-", "_")

    def parse(self, text: str) -> Any:
        """The value for ``text`` (``None``: not set, use the default); raises ``BadValue``."""
        text = str(text)
        if _CONTROL_RE.search(text):
            raise BadValue(f"cannot use {_show(text)} (it holds control characters): expected {self.accepted}")
        try:
            return self.read(text)
        except ValueError:
            raise BadValue(f"cannot use {_show(text)}: expected {self.accepted}") from None


def _bool(text: str) -> bool:
    # YAML 1.2 core schema spellings only: yes/no/on/off/1/0 are refused, not guessed
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    raise ValueError(text)


def _text(text: str) -> str | None:
    return text or None


def _pattern(regex: str) -> Callable[[str], str | None]:
    compiled = re.compile(regex)

    def read(text: str) -> str | None:
        if not text:
            return None
        if not compiled.fullmatch(text):
            raise ValueError(text)
        return text

    return read


def _url(text: str) -> str | None:
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text):
        raise ValueError(text)
    parts.port  # noqa: B018 - raises ValueError for a bad port
    return text


def _queue(text: str) -> str | None:
    if not text:
        return None
    parts = urllib.parse.urlsplit("https://" + text[len("sqs://"):] if text.startswith("sqs://") else text)
    if (parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text)
            or len([p for p in parts.path.split("/") if p]) != 2):
        raise ValueError(text)
    return text


def _seconds(minimum: float, inclusive: bool = True) -> Callable[[str], float]:
    def read(text: str) -> float:
        if not _SECONDS_RE.match(text):
            raise ValueError(text)
        value = float(text)
        if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
            raise ValueError(text)
        return value

    return read


def _whole(low: int, high: int) -> Callable[[str], int]:
    def read(text: str) -> int:
        if not _WHOLE_RE.match(text) or not low <= int(text) <= high:
            raise ValueError(text)
        return int(text)

    return read


def _size(low: int = 0, high: int | None = None) -> Callable[[str], int]:
    def read(text: str) -> int:
        value = _size_value(text)
        if value < low or (high is not None and value > high):
            raise ValueError(text)
        return value

    return read


def _mode(text: str) -> int:
    if not _MODE_RE.match(text):
        raise ValueError(text)
    return int(text, 8)


def _choice(*choices: str) -> Callable[[str], str]:
    def read(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return read


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(choices)


_MiB = 1024**2
_SIZE = "a size like 512M, 10G or 1048576"
_SECS = "a number of seconds >= 0, like 5 or 0.5"
_BOOL = "true or false"
_ID = f"a numeric id from 0 to {MAX_ID}"
_MODE = "an octal mode from 0 to 7777, like 0644"
_FREE = "text without control characters"
_TRI = ("auto", "yes", "no")
_SSE = ("AES256", "aws:kms")

OPTIONS: dict[str, Option] = {o.key: o for o in (
    Option("prefix", _text, _FREE,
           "mount only the keys under this prefix, same as BUCKET/PREFIX/ (default: the whole bucket)"),
    Option("region", _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]*"), "a region name like us-east-1",
           "the bucket's region (default: from the AWS configuration)"),
    Option("endpoint-url", _url, "a URL like https://host:port",
           "an S3-compatible endpoint (default: AWS S3)", metavar="URL"),
    Option("force-path-style", _bool, _BOOL,
           "path-style addressing, for most S3-compatible servers (default: off)", boolean=True),
    Option("profile", _pattern(r"\S+"), "a profile name without spaces",
           "AWS profile for credentials (default: the AWS default chain)"),
    Option("no-sign-request", _bool, _BOOL, "anonymous access, for public buckets (default: off)", boolean=True),
    Option("read-only", _bool, _BOOL, "no writes at all (default: off)", boolean=True),
    Option("allow-delete", _bool, _BOOL,
           "let unlink, rmdir and renames of objects this mount did not create reach the bucket (default: off)",
           boolean=True),
    Option("cache-dir", _text, _FREE,
           "where the write-back cache and its journal live "
           "(default: ~/.cache/mountsync/BUCKET-HASH, under $XDG_CACHE_HOME if set)", metavar="DIR"),
    Option("max-cache-size", _size(), _SIZE, "limit for clean cached data (default 10G)", metavar="SIZE"),
    Option("write-back-delay", _seconds(0), _SECS, "upload this long after the last close (default 5)",
           metavar="SECONDS"),
    Option("notify", _queue, "sqs://HOST/ACCOUNT/QUEUE or the queue's https:// URL",
           "take the bucket's change notifications from this SQS queue (one per mount; see 'mountsync "
           "notify-setup'): other writers' changes show within seconds, and --metadata-ttl defaults to 300 "
           "(default: off)", metavar="QUEUE"),
    Option("metadata-ttl", _seconds(0), _SECS, "how long attributes and listings are trusted (default 5; "
           "300 with --notify)",
           metavar="SECONDS"),
    Option("negative-metadata-ttl", _seconds(0), _SECS,
           "how long 'this name does not exist' is trusted (default: the --metadata-ttl)", metavar="SECONDS"),
    Option("read-timeout", _seconds(0, inclusive=False), "a number of seconds > 0, like 30",
           "an uncached read fails with EIO after this long without the endpoint (default 30)", metavar="SECONDS"),
    Option("conflict-strategy", _choice(*CONFLICT_STRATEGIES), _one_of(CONFLICT_STRATEGIES),
           "what to do when the bucket changed under a local edit (default keep-both)", metavar="STRATEGY"),
    Option("fsync-upload", _bool, _BOOL, "fsync also waits for the upload (default: off)", boolean=True),
    Option("uid", _whole(0, MAX_ID), _ID, "owner of objects without metadata (default: the mounting user)"),
    Option("gid", _whole(0, MAX_ID), _ID, "group of objects without metadata (default: the mounting user's group)"),
    Option("file-mode", _mode, _MODE, "mode of files without metadata (default 0644)", metavar="MODE"),
    Option("dir-mode", _mode, _MODE, "mode of directories without metadata (default 0755)", metavar="MODE"),
    Option("allow-other", _bool, _BOOL, "let other users access the mount (default: off)", boolean=True),
    Option("allow-root", _bool, _BOOL, "let root access the mount (default: off)", boolean=True),
    Option("noexec", _bool, _BOOL, "programs on the mount cannot be run: the mount flag (default: off)", boolean=True),
    Option("nosuid", _bool, _BOOL,
           "set-user-ID and set-group-ID bits have no effect: the mount flag (default: on, as FUSE sets it)",
           boolean=True),
    Option("nodev", _bool, _BOOL,
           "device files on the mount cannot be opened: the mount flag (default: on, as FUSE sets it)", boolean=True),
    Option("storage-class", _pattern(r"[A-Za-z0-9_-]+"), "a storage class name like STANDARD_IA",
           "storage class of new objects (default: the bucket's, STANDARD on AWS)", metavar="CLASS"),
    Option("sse", _choice(*_SSE), _one_of(_SSE), "server-side encryption of new objects (default: the bucket's)"),
    Option("sse-kms-key-id", _text, _FREE, "KMS key for --sse aws:kms (default: the AWS managed key)", metavar="KEY"),
    Option("foreground", _bool, _BOOL,
           "stay in the foreground (default: off: the daemon detaches once mounted)", boolean=True),
    Option("log-file", _text, _FREE, "log here (default: daemon.log in the cache dir)", metavar="FILE"),
    Option("log-format", _choice("text", "json"), _one_of(("text", "json")),
           "text lines, or one JSON object per line for log shippers (default text)", metavar="text|json"),
    Option("debug", _bool, _BOOL, flag=False, boolean=True),  # a flag of its own (see cli.py)
    Option("upload-workers", _whole(1, 64), "a whole number from 1 to 64",
           "uploads, copies and deletes in flight at once (default 8)", metavar="N"),
    Option("multipart-threshold", _size(5 * _MiB), "a size of at least 5M, like 64M",
           "files this large or larger are uploaded in parts (default 64M)", metavar="SIZE"),
    Option("part-size", _size(5 * _MiB, 5 * 1024 * _MiB), "a size from 5M to 5G, like 16M",
           "size of each part of a multipart upload; more for files over 10,000 parts (default 16M)",
           metavar="SIZE"),
    Option("conditional-writes", _choice(*_TRI), _one_of(_TRI),
           "does the server honour If-Match/If-None-Match? auto: probe once per cache dir (default auto)",
           metavar="auto|yes|no"),
    Option("writeback-cache", _bool, _BOOL,
           "the kernel's writeback cache: faster writes, but size changes by other writers may be missed "
           "(default: off)", boolean=True),
)}


# ---------------------------------------------------------------- config files

_NULLS = ("", "~", "null", "Null", "NULL")


def load_config_text(text: str, env: Mapping[str, str], source: str = "(text)") -> dict[str, Any]:
    """Parse config-file text into ``{field: typed value}`` (see the module docstring)."""
    import yaml

    where = f"config file {source}"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{where} is not valid YAML ({at}{' '.join(str(problem).split())})", code=2) from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise UserError(f"{where} must be a mapping of option: value", code=2)
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key_node, value_node in root.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.style is not None:
            raise UserError(f"{where}: option names must be plain words, like allow-delete", code=2)
        key = key_node.value
        opt = OPTIONS.get(key.replace("_", "-"))
        if opt is None:
            close = difflib.get_close_matches(key.replace("_", "-"), list(OPTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else "; see 'mountsync mount --help'"
            raise UserError(f"{where}: unknown option {_show(key)}{hint}", code=2)
        if opt.field in seen:
            raise UserError(f"{where}: {key}: given twice", code=2)
        seen.add(opt.field)
        if not isinstance(value_node, yaml.ScalarNode):
            raise UserError(f"{where}: {key}: expected a single value, not a list or mapping "
                            f"(write {opt.accepted})", code=2)
        plain = value_node.style is None
        raw = value_node.value
        if plain and raw in _NULLS:
            continue
        try:
            value_text = expand_env(raw, env)
        except UserError as exc:
            raise UserError(f"{where}: {key}: {exc}", code=2) from None
        try:
            if opt.boolean and not plain:
                raise BadValue(f"the quoted string {_show(value_text)} is not a boolean: "
                               "write true or false without quotes")
            value = opt.parse(value_text)
        except BadValue as exc:
            raise UserError(f"{where}: {key}: {exc}", code=2) from None
        if value is not None:
            out[opt.field] = value
    return out


def load_yaml_config(path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a YAML config file into ``{field: typed value}``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UserError(f"cannot read config file {path}: {why}", code=2) from None
    return load_config_text(text, dict(os.environ) if env is None else env, source=path)
