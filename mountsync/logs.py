"""Log lines for what the reconciler carries out, and the log formats.

Every upload, copy (a rename), directory marker, attribute update and delete that
reaches the bucket is one INFO line (``transfer_message``), with the same facts as
fields of the record (``transfer_fields``: event, key, source, bytes, seconds,
attempt) for ``--log-format json``, where each line is one JSON object
(``JsonFormatter``). Conflicts are WARNING lines of their own (reconciler.conflict),
an item given up on is a WARNING ("stopped ..."); ``--debug`` adds one DEBUG line
per request (backend.s3). Pure functions apart from the formatter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

EVENT_FIELDS = ("event", "key", "source", "bytes", "seconds", "attempt")


@dataclass(frozen=True)
class Transfer:
    """One thing the reconciler did in the bucket."""

    event: str  # upload, copy, marker, special, metadata, delete
    key: str
    size: int = 0
    source: str | None = None  # the old key of a rename's copy


def fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def transfer_message(t: Transfer, seconds: float, attempt: int) -> str:
    """The INFO line for ``t``, done in ``seconds`` at the ``attempt``-th try."""
    tail = f"in {seconds:.2f} s" + (f", attempt {attempt}" if attempt > 1 else "")
    if t.event == "upload":
        rate = f", {t.size / seconds / (1 << 20):.1f} MiB/s" if seconds > 0 and t.size >= 1 << 20 else ""
        return f"uploaded {t.key!r}: {fmt_bytes(t.size)} {tail}{rate}"
    if t.event == "copy":
        return f"renamed {t.source!r} to {t.key!r} in the bucket (copy of {fmt_bytes(t.size)}) {tail}"
    if t.event == "delete":
        return f"deleted {t.key!r} {tail}"
    if t.event == "metadata":
        return f"updated the attributes of {t.key!r} {tail}"
    if t.event == "marker":
        return f"put directory marker {t.key!r} {tail}"
    return f"put {t.key!r} ({t.event}) {tail}"


def transfer_fields(t: Transfer, seconds: float, attempt: int) -> dict[str, object]:
    """The same facts as record fields (``extra=``) for the JSON log."""
    fields: dict[str, object] = {"event": t.event, "key": t.key, "bytes": t.size, "seconds": round(seconds, 3),
                                 "attempt": attempt}
    if t.source is not None:
        fields["source"] = t.source
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    transfer fields when the record has them; a traceback as ``traceback``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EVENT_FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)
