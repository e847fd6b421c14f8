"""mountsync.config: sizes, modes, ${VAR} expansion, YAML config files (SPEC §2)."""

from dataclasses import fields as _fields

import pytest

from mountsync.config import (
    OPTIONS,
    BadValue,
    MountConfig,
    expand_env,
    load_config_text,
    load_yaml_config,
    parse_mode,
    parse_size,
)
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
    p.write_text("region: ${NOPE}\n")
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


# ---------------------------------------------------------------- the option schema (flags and config file)

MiB = 1024**2

# every option: (text as written on the command line or as a plain YAML scalar, value)
GOOD: dict[str, list] = {
    "prefix": [("photos/2024", "photos/2024"), ("a", "a")],
    "region": [("us-east-1", "us-east-1"), ("auto", "auto"), ("eu-central-2", "eu-central-2")],
    "endpoint-url": [("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
                     ("https://acc.r2.cloudflarestorage.com", "https://acc.r2.cloudflarestorage.com")],
    "force-path-style": [("true", True), ("false", False)],
    "profile": [("work", "work"), ("my-profile_2", "my-profile_2")],
    "no-sign-request": [("true", True), ("FALSE", False)],
    "read-only": [("True", True), ("false", False)],
    "allow-delete": [("true", True), ("false", False)],
    "cache-dir": [("/var/cache/ms", "/var/cache/ms"), ("rel/dir", "rel/dir")],
    "max-cache-size": [("512M", 512 * MiB), ("10GiB", 10 * 1024**3), ("0", 0), ("1048576", 1048576)],
    "write-back-delay": [("5", 5.0), ("0", 0.0), ("2.5", 2.5), ("0.25", 0.25)],
    "metadata-ttl": [("5", 5.0), ("0", 0.0), ("60", 60.0)],
    "negative-metadata-ttl": [("5", 5.0), ("0", 0.0), ("0.5", 0.5)],
    "notify": [("sqs://sqs.us-east-1.amazonaws.com/123456789012/mount-a",
                "sqs://sqs.us-east-1.amazonaws.com/123456789012/mount-a"),
               ("https://sqs.eu-west-1.amazonaws.com/1/q", "https://sqs.eu-west-1.amazonaws.com/1/q"),
               ("", None)],
    "read-timeout": [("30", 30.0), ("0.5", 0.5)],
    "conflict-strategy": [(s, s) for s in ("keep-both", "local-wins", "remote-wins", "newest-wins", "manual")],
    "fsync-upload": [("true", True), ("false", False)],
    "uid": [("0", 0), ("1000", 1000), ("4294967294", 4294967294)],
    "gid": [("0", 0), ("100", 100)],
    "file-mode": [("0644", 0o644), ("644", 0o644), ("0", 0), ("1777", 0o1777), ("7777", 0o7777)],
    "dir-mode": [("0755", 0o755), ("700", 0o700)],
    "allow-other": [("true", True), ("false", False)],
    "allow-root": [("true", True), ("false", False)],
    "noexec": [("true", True), ("false", False)],
    "log-format": [("text", "text"), ("json", "json")],
    "nosuid": [("true", True), ("false", False)],
    "nodev": [("true", True), ("false", False)],
    "storage-class": [("STANDARD_IA", "STANDARD_IA"), ("GLACIER_IR", "GLACIER_IR")],
    "sse": [("AES256", "AES256"), ("aws:kms", "aws:kms")],
    "sse-kms-key-id": [("arn:aws:kms:us-east-1:1:key/abc", "arn:aws:kms:us-east-1:1:key/abc")],
    "foreground": [("true", True), ("false", False)],
    "log-file": [("/var/log/ms.log", "/var/log/ms.log")],
    "debug": [("true", True), ("false", False)],
    "upload-workers": [("1", 1), ("8", 8), ("64", 64)],
    "multipart-threshold": [("64M", 64 * MiB), ("5MiB", 5 * MiB)],
    "part-size": [("16M", 16 * MiB), ("5M", 5 * MiB), ("5G", 5 * 1024**3)],
    "conditional-writes": [("auto", "auto"), ("yes", "yes"), ("no", "no")],
    "writeback-cache": [("true", True), ("false", False)],
}

# every option: values it must refuse, and a word of the accepted form the error must show
BAD: dict[str, tuple[list[str], str]] = {
    "prefix": (["a\nb", "x\x00y"], "control characters"),
    "region": (["us east 1", "eu-west-1\nallow-delete: true", "a/b"], "region name"),
    "endpoint-url": (["localhost:9000", "ftp://h", "http://", "http://h\n"], "URL"),
    "force-path-style": (["yes", "1", "on", "ja", "tru"], "true or false"),
    "profile": (["has space", "a\nb"], "profile name"),
    "no-sign-request": (["no", "0"], "true or false"),
    "read-only": (["off", "y"], "true or false"),
    "allow-delete": (["no", "False!", "0", "n"], "true or false"),
    "cache-dir": (["a\nb"], "control characters"),
    "max-cache-size": (["lots", "-1", "10X", "1.2.3G", "M"], "size like 512M"),
    "write-back-delay": (["-1", "five", "nan", "inf", "1e999", "5s"], "number of seconds"),
    "metadata-ttl": (["-0.5", "ttl", "nan"], "number of seconds"),
    "negative-metadata-ttl": (["-1", "never", "inf"], "number of seconds"),
    "notify": (["sqs://host-only", "ftp://h/1/q", "sqs://h/1/q/extra", "sqs://h/1 q/x"], "sqs://HOST/ACCOUNT/QUEUE"),
    "read-timeout": (["0", "-3", "soon"], "number of seconds"),
    "conflict-strategy": (["mine", "KEEP-BOTH", "keep_both"], "keep-both"),
    "fsync-upload": (["yes", "2"], "true or false"),
    "uid": (["-1", "root", "4294967295", "1.5", "0x10"], "numeric id"),
    "gid": (["-2", "wheel", "99999999999"], "numeric id"),
    "file-mode": (["999", "rw-r--r--", "0o9", "8", "17777", "-1"], "octal mode"),
    "dir-mode": (["0855", "drwx", "77777"], "octal mode"),
    "allow-other": (["yes"], "true or false"),
    "allow-root": (["1"], "true or false"),
    "noexec": (["1"], "true or false"),
    "log-format": (["xml", "JSON"], "text"),
    "nosuid": (["on"], "true or false"),
    "nodev": (["maybe"], "true or false"),
    "storage-class": (["STANDARD IA", "a\nb"], "storage class"),
    "sse": (["aes256", "kms", "rot13"], "AES256"),
    "sse-kms-key-id": (["key\nid"], "control characters"),
    "foreground": (["yes"], "true or false"),
    "log-file": (["l\x07og"], "control characters"),
    "debug": (["verbose"], "true or false"),
    "upload-workers": (["0", "65", "many", "2.5"], "whole number from 1 to 64"),
    "multipart-threshold": (["big", "1M", "-5M"], "size"),
    "part-size": (["4M", "6G", "huge"], "size"),
    "conditional-writes": (["maybe", "true"], "auto"),
    "writeback-cache": (["on"], "true or false"),
}


def test_the_schema_covers_every_mount_option_and_these_tests_cover_the_schema():
    fields_ = {f.name for f in _fields(MountConfig)} - {"bucket", "mountpoint", "cloud", "account"}  # from SOURCE
    assert {o.field for o in OPTIONS.values()} == fields_
    assert set(GOOD) == set(OPTIONS) == set(BAD)


@pytest.mark.parametrize("key, text, want", [(k, t, w) for k, cases in GOOD.items() for t, w in cases])
def test_schema_accepts(key, text, want):
    got = OPTIONS[key].parse(text)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("key, text, form", [(k, t, f) for k, (ts, f) in BAD.items() for t in ts])
def test_schema_rejects_with_the_accepted_form(key, text, form):
    with pytest.raises(BadValue) as ei:
        OPTIONS[key].parse(text)
    msg = str(ei.value)
    assert form in msg
    assert "\n" not in msg  # one line, even when the bad value holds a newline


@pytest.mark.parametrize("key, text, form", [(k, ts[0], f) for k, (ts, f) in BAD.items()])
def test_a_bad_value_in_the_config_file_names_the_key_and_the_accepted_form(key, text, form):
    # control characters need a double-quoted YAML string ("\n" escapes); the rest is written plain
    written = '"' + text.encode("unicode_escape").decode() + '"' if not text.isprintable() else text
    with pytest.raises(UserError) as ei:
        load_config_text(f"{key}: {written}\n", env={}, source="c.yaml")
    msg = str(ei.value)
    assert ei.value.code == 2
    assert msg.startswith(f"config file c.yaml: {key}: "), msg
    assert form in msg and "\n" not in msg


def test_config_values_are_typed():
    out = load_config_text(
        "allow-delete: true\nwrite-back-delay: 2.5\nmax-cache-size: 1G\nfile-mode: 0640\n"
        "dir-mode: 750\nuid: 1000\nconflict-strategy: manual\nregion: eu-west-1\n", env={})
    assert out == {"allow_delete": True, "write_back_delay": 2.5, "max_cache_size": 1024**3,
                   "file_mode": 0o640, "dir_mode": 0o750, "uid": 1000, "conflict_strategy": "manual",
                   "region": "eu-west-1"}


@pytest.mark.parametrize("text", ['"false"', "'false'", '"true"', "'True'", "yes", "no", "on", "off", "1", "0",
                                  "|\n  false\n"])
def test_a_boolean_is_only_unquoted_true_or_false(text):
    # YAML 1.1 reads yes/no/on/off as booleans and a quoted "false" is a non-empty string (truthy):
    # both used to enable deletes; now each is an error naming the key
    with pytest.raises(UserError) as ei:
        load_config_text(f"allow-delete: {text}\n", env={}, source="c.yaml")
    assert ei.value.code == 2
    assert str(ei.value).startswith("config file c.yaml: allow-delete: ")
    assert "true or false" in str(ei.value)


def test_numbers_may_be_quoted_and_are_checked():
    assert load_config_text('write-back-delay: "5"\nmetadata-ttl: \'1.5\'\n', env={}) == {
        "write_back_delay": 5.0, "metadata_ttl": 1.5}
    with pytest.raises(UserError, match=r"write-back-delay: .*number of seconds"):
        load_config_text('write-back-delay: "soon"\n', env={})


def test_null_means_the_default():
    assert load_config_text("region:\nendpoint-url: ~\nwrite-back-delay: null\n", env={}) == {}


@pytest.mark.parametrize("text, what", [
    ("no-such-option: 1\n", "unknown option 'no-such-option'"),
    ("alow-delete: true\n", "did you mean 'allow-delete'"),
    ("bucket: b\n", "unknown option 'bucket'"),
    ("config: other.yaml\n", "unknown option 'config'"),
    ("region: a\nregion: b\n", "region: given twice"),
    ("region: [a, b]\n", "region: expected a single value"),
    ("region: {a: 1}\n", "region: expected a single value"),
    ("[a]: 1\n", "option names must be plain words"),
])
def test_config_file_structure_errors_name_the_key(text, what):
    with pytest.raises(UserError) as ei:
        load_config_text(text, env={}, source="c.yaml")
    assert what in str(ei.value) and ei.value.code == 2
    assert "\n" not in str(ei.value)


def test_dashes_or_underscores():
    assert load_config_text("allow_delete: true\nendpoint_url: http://h:1\n", env={}) == {
        "allow_delete": True, "endpoint_url": "http://h:1"}


def test_env_vars_are_substituted_into_parsed_values_only():
    env = {"DELAY": "7", "ALLOW": "false", "EP": "http://h:9000", "EVIL": "us-east-1\nallow-delete: true",
           "EVIL2": "x\nallow-delete: true"}
    assert load_config_text("write-back-delay: ${DELAY}\nallow-delete: ${ALLOW}\nendpoint-url: ${EP}/\n"
                            "region: ${R:eu-west-1}\n", env=env) == {
        "write_back_delay": 7.0, "allow_delete": False, "endpoint_url": "http://h:9000/", "region": "eu-west-1"}
    # a newline in a variable stays inside the one value (an error), it never adds an option
    for text in ("region: ${EVIL}\n", "region: \"${EVIL}\"\n", "prefix: ${EVIL2}\n", "cache-dir: ${EVIL2}\n"):
        with pytest.raises(UserError) as ei:
            load_config_text(text, env=env, source="c.yaml")
        assert str(ei.value).startswith("config file c.yaml: ") and "\n" not in str(ei.value)
        assert "allow-delete" not in str(ei.value).split(":", 2)[1]  # the key named is the one written
    # a quoted ${VAR} is a string: not a boolean even when the variable says false
    with pytest.raises(UserError, match=r"allow-delete: .*true or false"):
        load_config_text('allow-delete: "${ALLOW}"\n', env=env)
    # ${VAR} in a comment or a key is not substituted
    assert load_config_text("# ${UNSET_IN_COMMENT}\nregion: r\n", env={}) == {"region": "r"}


def test_an_unset_variable_names_the_key():
    with pytest.raises(UserError) as ei:
        load_config_text("region: ${NOPE}\n", env={}, source="c.yaml")
    assert str(ei.value).startswith("config file c.yaml: region: ") and "NOPE" in str(ei.value)
    assert ei.value.code == 2


def test_invalid_yaml_is_one_line():
    with pytest.raises(UserError) as ei:
        load_config_text("a: [1, 2\n", env={}, source="c.yaml")
    assert "not valid YAML" in str(ei.value) and "\n" not in str(ei.value) and ei.value.code == 2
