"""The persistent metadata cache writes what HEAD said in batches: a listing of many
never-seen objects puts one row per HEAD, and a transaction per row was a third of the
trio thread's time during the bench's big `ls -l` (py-spy: ``MetaCache.put`` →
``_Db.execute``). Rows not yet written are seen by reads, and written at close."""

from __future__ import annotations

from mountsync.cache.journal import Journal
from mountsync.cache.metacache import FLUSH_ROWS, CachedMeta


def _transactions(journal: Journal) -> list[str]:
    """Each COMMIT, and each write outside an explicit transaction (one of its own)."""
    conn = journal._db.conn
    seen: list[str] = []

    def trace(sql: str) -> None:
        verb = sql.strip().split()[0].upper()
        if verb == "COMMIT" or (verb in ("INSERT", "UPDATE", "DELETE", "REPLACE") and not conn.in_transaction):
            seen.append(sql)

    conn.set_trace_callback(trace)
    return seen


def test_many_puts_are_written_in_a_few_transactions(tmp_path):
    journal = Journal(str(tmp_path / "journal.db"))
    commits = _transactions(journal)
    n = 5 * FLUSH_ROWS
    for i in range(n):
        journal.object_meta.put(f"d/o{i:05d}", f"etag{i}", 1700000000.5, {"mode": "33188", "other": "x"})
    assert len(commits) <= n // FLUSH_ROWS, len(commits)
    journal.close()


def test_rows_not_yet_written_are_read_back_and_written_at_close(tmp_path):
    path = str(tmp_path / "journal.db")
    journal = Journal(path)
    journal.object_meta.put("a", "e1", 1700000000.9, {"mode": "33188", "uid": "7", "ignored": "y"}, None)
    journal.object_meta.put("l", "e2", 1700000001.0, {}, "target/of/link")
    assert journal.object_meta.get("a", "e1", 1700000000.2) == CachedMeta({"mode": "33188", "uid": "7"}, None)
    assert journal.object_meta.get("a", "other-etag", 1700000000.2) is None
    assert journal.object_meta.matches("l", "e2", 1700000001.0)
    latest = journal.object_meta.latest("l")
    assert latest is not None and latest[2].target == "target/of/link"
    journal.object_meta.put("a", "e3", 1700000005.0, {"mode": "33261"})  # a newer version replaces it
    assert journal.object_meta.get("a", "e1", 1700000000.9) is None
    journal.close()
    again = Journal(path)
    assert again.object_meta.get("a", "e3", 1700000005.0) == CachedMeta({"mode": "33261"}, None)
    assert again.object_meta.get("l", "e2", 1700000001.0) == CachedMeta({}, "target/of/link")
    again.close()
