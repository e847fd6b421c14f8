"""The reconciler's log lines and the JSON log format (mountsync/logs.py)."""

from __future__ import annotations

import json
import logging

from mountsync.logs import JsonFormatter, Transfer, fmt_bytes, transfer_fields, transfer_message


def test_upload_line_says_key_size_time_rate_and_attempt():
    msg = transfer_message(Transfer("upload", "a/b.bin", 64 << 20), 2.0, 3)
    assert msg == "uploaded 'a/b.bin': 64.0 MiB in 2.00 s, attempt 3, 32.0 MiB/s"
    assert transfer_message(Transfer("upload", "small", 10), 0.01, 1) == "uploaded 'small': 10 B in 0.01 s"


def test_other_events():
    assert transfer_message(Transfer("copy", "new", 2048, "old"), 0.5, 1) == \
        "renamed 'old' to 'new' in the bucket (copy of 2.0 KiB) in 0.50 s"
    assert transfer_message(Transfer("delete", "gone"), 0.1, 2) == "deleted 'gone' in 0.10 s, attempt 2"
    assert transfer_message(Transfer("metadata", "f"), 0.1, 1) == "updated the attributes of 'f' in 0.10 s"
    assert transfer_message(Transfer("marker", "d/"), 0.1, 1) == "put directory marker 'd/' in 0.10 s"
    assert transfer_message(Transfer("symlink", "l", 3), 0.1, 1) == "put 'l' (symlink) in 0.10 s"


def test_fmt_bytes():
    assert [fmt_bytes(n) for n in (0, 1023, 1024, 5 << 20, 3 << 30)] == ["0 B", "1023 B", "1.0 KiB", "5.0 MiB",
                                                                        "3.0 GiB"]


def test_json_formatter_carries_the_transfer_fields():
    t = Transfer("copy", "new", 5, "old")
    record = logging.LogRecord("mountsync.reconciler", logging.INFO, __file__, 1, transfer_message(t, 0.25, 1),
                               None, None)
    record.__dict__.update(transfer_fields(t, 0.25, 1))
    out = json.loads(JsonFormatter().format(record))
    assert out["level"] == "INFO" and out["logger"] == "mountsync.reconciler"
    assert out["message"].startswith("renamed 'old' to 'new'")
    assert {k: out[k] for k in ("event", "key", "source", "bytes", "seconds", "attempt")} == \
        {"event": "copy", "key": "new", "source": "old", "bytes": 5, "seconds": 0.25, "attempt": 1}
    assert out["time"].endswith("+00:00")


def test_json_formatter_plain_record_and_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("mountsync", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed x" and "ValueError: boom" in out["traceback"] and "event" not in out
