"""What `mountsync sync` shows while it waits (mountsync/progress.py)."""

from __future__ import annotations

import threading

from mountsync import progress as progress_mod
from mountsync.progress import Progress, items_left, plain_line, progress


def _st(files: int, nbytes: int, sent: int = 0, deletes: int = 0) -> dict:
    return {"pending_files": files, "pending_bytes": nbytes, "pending": [{"sent": sent}] if sent else [],
            "pending_deletes": [{}] * deletes}


def test_counts():
    assert items_left(_st(3, 3000, sent=1000, deletes=2)) == (5, 2000)
    assert progress(_st(4, 4000), _st(1, 1000)) == Progress(3, 4, 3000, 4000)
    # work queued after the start raises the totals instead of going negative
    assert progress(_st(1, 100), _st(3, 500)) == Progress(0, 3, 0, 500)


def test_plain_line():
    assert plain_line(Progress(0, 4, 0, 4096), 0) == "sync: 0 of 4 file(s), 0 B of 4.0 KiB"
    assert plain_line(Progress(2, 4, 2 << 20, 4 << 20), 2.0) == \
        "sync: 2 of 4 file(s), 2.0 MiB of 4.0 MiB, 1.0 MiB/s, about 2 s left"


def _run_watch(monkeypatch, capsys, **kw) -> str:
    monkeypatch.setattr(progress_mod, "POLL", 0.01)
    monkeypatch.setattr(progress_mod, "PLAIN_EVERY", 0.0)
    replies = iter([_st(4, 4000)] * 2 + [_st(2, 2000)] * 3 + [_st(0, 0)] * 1000)
    done = threading.Event()
    calls = 0

    def ask() -> dict:
        nonlocal calls
        calls += 1
        if calls >= 8:
            done.set()
        return next(replies)

    progress_mod.watch(ask, done, **kw)
    return capsys.readouterr().err


def test_plain_lines_when_not_a_terminal(monkeypatch, capsys):
    err = _run_watch(monkeypatch, capsys, quiet=False, tty=False)
    assert "sync: 2 of 4 file(s), 2.0 KiB of 3.9 KiB" in err and "sync: 4 of 4 file(s)" in err


def test_a_bar_on_a_terminal(monkeypatch, capsys):
    err = _run_watch(monkeypatch, capsys, quiet=False, tty=True)
    assert "sync" in err and "4/4 files" in err


def test_quiet_shows_nothing(monkeypatch, capsys):
    done = threading.Event()
    done.set()
    progress_mod.watch(lambda: _st(1, 1), done, quiet=True)
    assert capsys.readouterr().err == ""


def test_status_text_uses_human_units_and_shares():
    from mountsync.cli import format_status

    st = {"mountpoint": "/m", "bucket": "b", "prefix": "", "endpoint": "aws", "endpoint_reachable": True,
          "endpoint_error": None, "pending_files": 2, "pending_bytes": 50 << 20, "pending_renames": 1,
          "pending_deletes": [], "cache_bytes": 3 << 30, "max_cache_size": 10 << 30, "cache_dir": "/c",
          "log_file": "/c/daemon.log", "conflicts": 0, "conflicts_open": 0, "errors": [],
          "pending": [{"path": "big.bin", "state": "uploading", "sent": 16 << 20, "total": 48 << 20},
                      {"path": "new", "state": "queued", "renamed_from": "old", "sent": 0, "total": 2 << 20}]}
    text = format_status(st)
    assert "pending:   2 file(s), 50.0 MiB; 1 rename(s); 0 delete(s)" in text
    assert "cache:     3.0 GiB used of 10.0 GiB in /c" in text
    assert "uploading big.bin (16.0 MiB of 48.0 MiB, 33 %)" in text
    assert "queued    new (renamed from old)" in text
