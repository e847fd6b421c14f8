"""mountsync.config: sizes, modes, ${VAR} expansion, YAML config files (SPEC §2)."""

import pytest

from mountsync.config import MountConfig, expand_env, load_yaml_config, parse_mode, parse_size
from mountsync.errors import UserError


@pytest.mark.parametrize("text, want", [
    ("1048576", 1048576), ("0", 0), ("512", 512),
    ("1k", 1024), ("1K", 1024), ("4KiB", 4096), ("4kb", 4096),
    ("512M", 512 * 1024**2), ("512MiB", 512 * 1024**2),
    ("10G", 10 * 1024**3), ("10GiB", 10 * 1024**3), ("2T", 2 * 1024**4),
    ("1.5G", int(1.5 * 1024**3)), (" 3 M ", 3 * 1024**2), (2048, 2048),
])
def test_parse_size(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("bad", ["", "M", "-1", "10X", "ten", "1.2.3G", "5 G B"])
def test_parse_size_rejects(bad):
    with pytest.raises(UserError, match="cannot read size"):
        parse_size(bad)


@pytest.mark.parametrize("text, want", [("0644", 0o644), ("644", 0o644), ("755", 0o755),
                                        ("0", 0), (0o600, 0o600), ("1777", 0o1777)])
def test_parse_mode(text, want):
    assert parse_mode(text) == want


@pytest.mark.parametrize("bad", ["rw-r--r--", "0o9", "8", ""])
def test_parse_mode_rejects(bad):
    with pytest.raises(UserError, match="octal"):
        parse_mode(bad)


def test_expand_env():
    env = {"A": "alpha", "EMPTY": ""}
    assert expand_env("x ${A} y", env) == "x alpha y"
    assert expand_env("${A}${A}", env) == "alphaalpha"
    assert expand_env("${B:beta}", env) == "beta"
    assert expand_env("${A:unused}", env) == "alpha"
    assert expand_env("${B:}", env) == ""
    assert expand_env("${EMPTY:default}", env) == ""  # set but empty: the value wins
    assert expand_env("${B:http://h:9000/x}", env) == "http://h:9000/x"
    assert expand_env("plain $A text", env) == "plain $A text"
    assert expand_env("", env) == ""


def test_expand_env_unset_var_is_an_error():
    with pytest.raises(UserError) as ei:
        expand_env("bucket: ${MISSING_BUCKET}", {})
    assert "MISSING_BUCKET" in str(ei.value)
    assert "not set" in str(ei.value)


def test_load_yaml_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "allow-delete: true\n"
        "write-back-delay: 2.5\n"
        "endpoint_url: ${EP:http://localhost:9000}\n"
        "cache-dir: ${HOME_X}/cache\n"
        "conflict-strategy: local-wins\n"
    )
    out = load_yaml_config(str(p), env={"HOME_X": "/h"})
    assert out == {"allow_delete": True, "write_back_delay": 2.5,
                   "endpoint_url": "http://localhost:9000", "cache_dir": "/h/cache",
                   "conflict_strategy": "local-wins"}


def test_load_yaml_config_unknown_option(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("allow-delete: true\nno-such-option: 1\n")
    with pytest.raises(UserError, match="unknown option 'no-such-option'"):
        load_yaml_config(str(p), env={})


def test_load_yaml_config_unset_var(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("bucket: ${NOPE}\n")
    with pytest.raises(UserError, match="NOPE"):
        load_yaml_config(str(p), env={})


def test_load_yaml_config_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read config file"):
        load_yaml_config(str(tmp_path / "missing.yaml"), env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml_config(str(bad), env={})
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="mapping"):
        load_yaml_config(str(lst), env={})
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml_config(str(empty), env={}) == {}


def test_validate(tmp_path):
    c = MountConfig(bucket="b", mountpoint="rel/mnt", prefix="/p/q").validate()
    assert c.prefix == "p/q/"
    assert c.mountpoint.endswith("/rel/mnt") and c.mountpoint.startswith("/")
    with pytest.raises(UserError, match="conflict-strategy"):
        MountConfig(bucket="b", mountpoint="m", conflict_strategy="mine").validate()
    with pytest.raises(UserError, match="negative"):
        MountConfig(bucket="b", mountpoint="m", write_back_delay=-1).validate()
    with pytest.raises(UserError, match="sse"):
        MountConfig(bucket="b", mountpoint="m", sse="rot13").validate()


def test_resolved_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = MountConfig(bucket="b", mountpoint="m").resolved_cache_dir()
    b = MountConfig(bucket="b", mountpoint="m", prefix="x/").resolved_cache_dir()
    assert a.startswith(str(tmp_path / "mountsync" / "b-"))
    assert a != b
    assert MountConfig(bucket="b", mountpoint="m", cache_dir="/c").resolved_cache_dir() == "/c"
