"""mountsync.keys: key ↔ path mapping (SPEC §3)."""

import pytest

from mountsync import keys


@pytest.mark.parametrize("raw, want", [
    (None, ""), ("", ""), ("/", ""), ("//", ""),
    ("a", "a/"), ("a/", "a/"), ("/a/b", "a/b/"), ("a/b/", "a/b/"), ("///x", "x/"),
])
def test_normalize_prefix(raw, want):
    assert keys.normalize_prefix(raw) == want


@pytest.mark.parametrize("arg, want", [
    ("bucket", ("bucket", "")),
    ("bucket/", ("bucket", "")),
    ("bucket/some/prefix/", ("bucket", "some/prefix/")),
    ("bucket/some/prefix", ("bucket", "some/prefix/")),
    ("bucket/x", ("bucket", "x/")),
])
def test_split_bucket_arg(arg, want):
    assert keys.split_bucket_arg(arg) == want


def test_is_valid_name_basic():
    assert keys.is_valid_name("a")
    assert keys.is_valid_name("file.txt")
    assert keys.is_valid_name("...")
    assert keys.is_valid_name(".hidden")
    assert keys.is_valid_name("with space")
    for bad in ("", ".", "..", "a/b", "/", "a\x00b", "\x00"):
        assert not keys.is_valid_name(bad), bad


def test_is_valid_name_length_in_utf8_bytes():
    assert keys.is_valid_name("a" * 255)
    assert not keys.is_valid_name("a" * 256)
    # "é" is 2 bytes in UTF-8: 127 of them = 254 bytes, 128 = 256 bytes
    assert keys.is_valid_name("é" * 127 + "a")  # 255 bytes
    assert not keys.is_valid_name("é" * 128)  # 256 bytes, though only 128 characters
    # a 4-byte character: 63 * 4 = 252 (+3 ascii = 255)
    assert keys.is_valid_name("\U0001F600" * 63 + "abc")
    assert not keys.is_valid_name("\U0001F600" * 63 + "abcd")


def test_is_valid_name_surrogateescape_bytes_count_as_one_byte():
    # undecodable bytes from os.fsdecode arrive as lone surrogates
    name = b"\xff".decode("utf-8", "surrogateescape") * 255
    assert keys.is_valid_name(name)
    assert not keys.is_valid_name(name + "x")


def test_join_parent_name():
    assert keys.join("", "a") == "a"
    assert keys.join("a/b", "c") == "a/b/c"
    assert keys.parent_of("a/b/c") == "a/b"
    assert keys.parent_of("a") == ""
    assert keys.name_of("a/b/c") == "c"
    assert keys.name_of("a") == "a"


def test_file_and_dir_keys():
    assert keys.file_key("", "a/b") == "a/b"
    assert keys.file_key("p/", "a/b") == "p/a/b"
    assert keys.dir_key("p/", "a") == "p/a/"
    assert keys.dir_key("p/", "") == "p/"
    assert keys.dir_key("", "") == ""


@pytest.mark.parametrize("dir_prefix, key, want", [
    ("", "a", "a"),
    ("", "a/", "a"),  # common prefix / marker of a child dir
    ("d/", "d/x", "x"),
    ("d/", "d/sub/", "sub"),
    ("d/", "d/", None),  # the marker itself
    ("d/", "e/x", None),  # not below
    ("d/", "d//", None),  # empty segment
    ("d/", "d/./", None),
    ("d/", "d/../", None),
    ("d/", "d/.", None),
    ("d/", "d/..", None),
    ("d/", "d/" + "n" * 255, "n" * 255),
    ("d/", "d/" + "n" * 256, None),
    ("d/", "d/a\x00b", None),
])
def test_listing_name(dir_prefix, key, want):
    assert keys.listing_name(dir_prefix, key) == want


def test_is_below():
    assert keys.is_below("a/b", "a")
    assert keys.is_below("a/b/c", "a")
    assert not keys.is_below("a", "a")
    assert not keys.is_below("ab", "a")
    assert not keys.is_below("ab/c", "a")
    assert keys.is_below("x", "")
    assert not keys.is_below("", "")


def test_rebase():
    assert keys.rebase("a", "a", "b") == "b"
    assert keys.rebase("a/x/y", "a", "b/c") == "b/c/x/y"
    assert keys.rebase("a/x", "a", "") == "x"
    with pytest.raises(AssertionError):
        keys.rebase("ab/x", "a", "b")


def test_path_is_representable():
    assert keys.path_is_representable("")
    assert keys.path_is_representable("a/b/c")
    assert not keys.path_is_representable("a//b")
    assert not keys.path_is_representable("a/../b")
    assert not keys.path_is_representable("a/" + "x" * 256)
