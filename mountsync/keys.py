"""Pure mapping between object keys and mount paths.

Vocabulary used across the project:

- A *path* (or *rel*) is a name relative to the mount root, segments joined by
  ``/``, with no leading or trailing slash; the root is ``""``.
- A *store key* is what the bucket holds: ``prefix + rel`` for files and
  ``prefix + rel + "/"`` for directory markers.
- The mount ``prefix`` is either ``""`` or ends with ``/``.

Nothing here touches the disk or the network. Object keys are never used as
cache paths (see ``cache.datafiles``), so these functions only decide what is
*shown*, never where bytes go.
"""

from __future__ import annotations

MAX_NAME_BYTES = 255


def normalize_prefix(prefix: str | None) -> str:
    """``"a/b"`` → ``"a/b/"``; ``""``/``None``/``"/"`` → ``""``. Leading slashes dropped."""
    if not prefix:
        return ""
    prefix = prefix.lstrip("/")
    if not prefix:
        return ""
    return prefix if prefix.endswith("/") else prefix + "/"


def split_bucket_arg(arg: str) -> tuple[str, str]:
    """``"bucket/some/prefix/"`` → ``("bucket", "some/prefix/")``."""
    bucket, _, prefix = arg.partition("/")
    return bucket, normalize_prefix(prefix)


def is_valid_name(name: str) -> bool:
    """Can ``name`` be one POSIX directory entry?"""
    if name in ("", ".", ".."):
        return False
    if "\x00" in name or "/" in name:
        return False
    try:
        return len(name.encode("utf-8", "surrogateescape")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False


def join(parent: str, name: str) -> str:
    """Path of ``name`` inside directory path ``parent``."""
    return f"{parent}/{name}" if parent else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def is_below(path: str, ancestor: str) -> bool:
    """True when ``path`` lies strictly inside directory ``ancestor``."""
    if ancestor == "":
        return path != ""
    return path.startswith(ancestor + "/")


def rebase(path: str, old: str, new: str) -> str:
    """Move ``path`` (``old`` or inside it) to the same place under ``new``."""
    if path == old:
        return new
    assert is_below(path, old), (path, old)
    return new + path[len(old):] if new else path[len(old) + 1:]


def file_key(prefix: str, path: str) -> str:
    return prefix + path


def dir_key(prefix: str, path: str) -> str:
    """Listing prefix of a directory, which is also its marker key."""
    return prefix + path + "/" if path else prefix


def listing_name(dir_prefix: str, key: str) -> str | None:
    """Name of the entry that ``key`` (a content key or a common prefix) gives in the
    directory listed with ``dir_prefix``; ``None`` when the key is not a valid
    entry (the marker itself, or a name that cannot be a POSIX name)."""
    if not key.startswith(dir_prefix):
        return None
    rest = key[len(dir_prefix):]
    if rest.endswith("/"):
        rest = rest[:-1]
    if not is_valid_name(rest):
        return None
    return rest


def path_is_representable(path: str) -> bool:
    return all(is_valid_name(seg) for seg in path.split("/")) if path else True


def path_of_key(prefix: str, key: str) -> str | None:
    """The mount path an object key stands for (a directory marker's ``a/b/`` → ``a/b``);
    None when the key is outside the prefix, is the prefix itself, or names nothing a POSIX
    path can show."""
    if not key.startswith(prefix):
        return None
    path = key[len(prefix):].rstrip("/") if key.endswith("/") else key[len(prefix):]
    if not path or not path_is_representable(path):
        return None
    return path
