"""The table ``mountsync versions`` prints (pure formatting)."""

from __future__ import annotations

from mountsync.cli_versions import format_versions


def test_table_names_each_version():
    rows = [
        {"version_id": "v3", "last_modified": 1_700_000_300.0, "size": 0, "latest": True, "deleted": True,
         "storage_class": ""},
        {"version_id": "v2-long-id", "last_modified": 1_700_000_200.0, "size": 2048, "latest": False,
         "deleted": False, "storage_class": "GLACIER"},
        {"version_id": "v1", "last_modified": 1_700_000_100.0, "size": 5, "latest": False, "deleted": False,
         "storage_class": "STANDARD"},
    ]
    lines = format_versions("a/b.txt", rows).splitlines()
    assert lines[0].split() == ["VERSION", "ID", "LAST", "MODIFIED", "SIZE", "NOTE"]
    assert lines[1].startswith("v3 ") and "current" in lines[1] and "delete marker" in lines[1]
    assert lines[2].startswith("v2-long-id") and "2.0 KiB" in lines[2] and "GLACIER" in lines[2]
    assert lines[3].startswith("v1 ") and lines[3].rstrip().endswith("5 B")
    assert len({line.index(" 20") for line in lines[1:]}) == 1  # the dates line up


def test_no_versions():
    assert format_versions("x", []) == "the bucket holds no version of x"
