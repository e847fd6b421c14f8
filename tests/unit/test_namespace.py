"""mountsync.core.namespace: parse_listing / merge_children (SPEC §3)."""

import stat

from mountsync.backend.base import ObjectInfo
from mountsync.core.namespace import LocalChild, RemoteChild, merge_children, parse_listing


def obj(key, size=1, etag="e"):
    return ObjectInfo(key=key, size=size, etag=etag, last_modified=1.0)


def run(dir_prefix, keys, prefixes=()):
    invalid = []
    children, marker = parse_listing(dir_prefix, [obj(k) for k in keys], list(prefixes),
                                     lambda key, why: invalid.append((key, why)))
    return children, marker, invalid


def test_files_and_dirs():
    children, marker, invalid = run("d/", ["d/a", "d/b.txt"], ["d/sub/"])
    assert {n: c.kind for n, c in children.items()} == {
        "a": stat.S_IFREG, "b.txt": stat.S_IFREG, "sub": stat.S_IFDIR}
    assert children["a"].info.key == "d/a"
    assert children["sub"].info is None
    assert marker is False
    assert invalid == []


def test_marker_detected_and_not_shown():
    children, marker, invalid = run("d/", ["d/", "d/x"])
    assert marker is True
    assert set(children) == {"x"}
    assert invalid == []


def test_root_listing_no_prefix():
    children, marker, _ = run("", ["top"], ["dir/"])
    assert set(children) == {"top", "dir"}
    assert marker is False


def test_invalid_names_hidden_and_reported():
    long = "x" * 256
    ok255 = "y" * 255
    children, _m, invalid = run(
        "d/",
        ["d/.", "d/..", f"d/{long}", f"d/{ok255}", "d/ok", "d/a\x00b"],
        ["d//", "d/./", "d/../", f"d/{long}/"],
    )
    assert set(children) == {ok255, "ok"}
    reported = {k for k, _why in invalid}
    assert reported == {"d/.", "d/..", f"d/{long}", "d/a\x00b", "d//", "d/./", "d/../", f"d/{long}/"}


def test_empty_segment_object_key_hidden():
    # a key "d//" arriving as an object (no delimiter listing) is never shown
    children, marker, invalid = run("d/", ["d//"])
    assert children == {}
    assert marker is False
    assert [k for k, _ in invalid] == ["d//"]


def test_file_vs_dir_clash_dir_wins():
    children, _m, invalid = run("", ["a", "b"], ["a/"])
    assert children["a"].kind == stat.S_IFDIR
    assert children["a"].info is None
    assert children["b"].kind == stat.S_IFREG
    assert len(invalid) == 1 and invalid[0][0] == "a"
    assert "directory" in invalid[0][1]


def test_merge_children_local_overlay_and_hidden():
    remote = {
        "r": RemoteChild("r", stat.S_IFREG, obj("r")),
        "gone": RemoteChild("gone", stat.S_IFREG, obj("gone")),
        "d": RemoteChild("d", stat.S_IFDIR, None),
        "both": RemoteChild("both", stat.S_IFREG, obj("both")),
    }
    local = [LocalChild("new", stat.S_IFREG), LocalChild("both", stat.S_IFREG),
             LocalChild("ln", stat.S_IFLNK)]
    merged = merge_children(remote, local, hidden=["gone", "not-there"])
    assert merged == {"r": stat.S_IFREG, "d": stat.S_IFDIR, "both": stat.S_IFREG,
                      "new": stat.S_IFREG, "ln": stat.S_IFLNK}


def test_merge_local_wins_over_hidden_and_kind():
    # a tombstoned remote file replaced locally by a directory: the local kind is shown
    remote = {"x": RemoteChild("x", stat.S_IFREG, obj("x"))}
    merged = merge_children(remote, [LocalChild("x", stat.S_IFDIR)], hidden=["x"])
    assert merged == {"x": stat.S_IFDIR}


def test_merge_empty():
    assert merge_children({}, [], []) == {}
