"""Mount configuration: one immutable dataclass, parsing of sizes and YAML config files.

Precedence: command-line flags > ``--config`` YAML file > defaults. ``${VAR}``
and ``${VAR:default}`` in the YAML are replaced from the environment.
Credentials are never part of the configuration (standard AWS chain only).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, fields, replace

from .errors import UserError
from .keys import normalize_prefix

CONFLICT_STRATEGIES = ("keep-both", "local-wins", "remote-wins", "newest-wins", "manual")


@dataclass(frozen=True)
class MountConfig:
    bucket: str
    mountpoint: str
    prefix: str = ""
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
    debug: bool = False
    upload_workers: int = 8
    multipart_threshold: int = 64 * 1024**2
    part_size: int = 16 * 1024**2
    read_timeout: float = 30.0
    conditional_writes: str = "auto"  # auto: probe once per cache dir; yes/no: trust this
    writeback_cache: bool = False  # kernel writeback cache: faster writes, but the kernel then ignores
    # size changes made by other writers (see docs/ARCHITECTURE.md)

    def resolved_cache_dir(self) -> str:
        """The cache dir: ``--cache-dir`` or one per (endpoint, bucket, prefix) under XDG_CACHE_HOME."""
        if self.cache_dir:
            return os.path.abspath(self.cache_dir)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        ident = f"{self.endpoint_url or 'aws'}|{self.bucket}|{self.prefix}"
        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return os.path.join(base, "mountsync", f"{self.bucket}-{digest}")

    def validate(self) -> "MountConfig":
        if self.conflict_strategy not in CONFLICT_STRATEGIES:
            raise UserError(
                f"unknown --conflict-strategy {self.conflict_strategy!r}: use one of {', '.join(CONFLICT_STRATEGIES)}"
            )
        if self.write_back_delay < 0 or self.metadata_ttl < 0:
            raise UserError("--write-back-delay and --metadata-ttl must not be negative")
        if self.negative_metadata_ttl is not None and self.negative_metadata_ttl < 0:
            raise UserError("--negative-metadata-ttl must not be negative")
        if self.sse not in (None, "AES256", "aws:kms"):
            raise UserError(f"unknown --sse {self.sse!r}: use AES256 or aws:kms")
        return replace(self, prefix=normalize_prefix(self.prefix), mountpoint=os.path.abspath(self.mountpoint))


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """``"512M"``, ``"10GiB"``, ``"1048576"`` → bytes (binary multiples)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise UserError(f"cannot read size {text!r}: write it like 512M, 10G or 1048576")
    number, unit = float(m.group(1)), m.group(2).lower()
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[unit]
    return int(number * mult)


def parse_mode(text: str | int) -> int:
    if isinstance(text, int):
        return text
    try:
        return int(str(text), 8)
    except ValueError as exc:
        raise UserError(f"cannot read mode {text!r}: write it in octal, like 0644") from exc


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def expand_env(text: str, env: dict[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:default}``; an unset VAR without default is an error."""

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise UserError(f"config file uses ${{{name}}} but it is not set: export it or write ${{{name}:default}}")

    return _VAR_RE.sub(sub, text)


def load_yaml_config(path: str, env: dict[str, str] | None = None) -> dict:
    """Read a YAML config file into option names (dashes → underscores)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from exc
    text = expand_env(text, dict(os.environ) if env is None else env)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must be a mapping of option: value")
    known = {f.name for f in fields(MountConfig)}
    out = {}
    for k, v in data.items():
        name = str(k).replace("-", "_")
        if name not in known:
            raise UserError(f"config file {path}: unknown option {k!r}")
        out[name] = v
    return out
