"""Command-line parsing, config-file merging and the forwarded daemon arguments."""

import pytest

from mountsync.cache.eviction import Candidate, choose_evictions
from mountsync.cli import _forwarded, build_parser, config_from_args, main
from mountsync.errors import UserError


def parse(argv):
    args = build_parser().parse_args(argv)
    args.raw_argv = argv
    return config_from_args(args)


def test_bucket_prefix_and_flags(tmp_path):
    c = parse(["mount", "bkt/some/prefix", str(tmp_path), "--allow-delete", "--write-back-delay", "2.5",
               "--file-mode", "0600", "--max-cache-size", "512M"])
    assert (c.bucket, c.prefix) == ("bkt", "some/prefix/")
    assert c.allow_delete is True
    assert c.write_back_delay == 2.5
    assert c.file_mode == 0o600
    assert c.max_cache_size == 512 * 1024**2
    assert c.read_only is False  # flags not given keep their defaults


def test_yaml_config_with_env_and_flag_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("MS_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("MS_UNSET", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("endpoint-url: ${MS_ENDPOINT}\nregion: ${MS_UNSET:eu-west-1}\n"
                   "write-back-delay: 9\nmax-cache-size: 1G\n")
    c = parse(["mount", "bkt", str(tmp_path), "--config", str(cfg), "--write-back-delay", "1"])
    assert c.endpoint_url == "http://127.0.0.1:9"
    assert c.region == "eu-west-1"
    assert c.write_back_delay == 1.0  # the flag wins over the file
    assert c.max_cache_size == 1024**3


def test_yaml_config_unknown_option_is_one_clear_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("no-such-option: 1\n")
    with pytest.raises(UserError, match="unknown option 'no-such-option'"):
        parse(["mount", "bkt", str(tmp_path), "--config", str(cfg)])


def test_forwarded_arguments_drop_what_the_parent_sets():
    argv = ["--debug", "mount", "bkt", "/mnt", "--foreground", "--log-file", "x", "--allow-delete", "-f"]
    assert _forwarded(argv) == ["bkt", "/mnt", "--allow-delete"]


def test_cache_dir_default_is_keyed_by_endpoint_bucket_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a = parse(["mount", "bkt/p1", str(tmp_path)]).resolved_cache_dir()
    b = parse(["mount", "bkt/p2", str(tmp_path)]).resolved_cache_dir()
    c = parse(["mount", "bkt/p1", str(tmp_path), "--endpoint-url", "http://x"]).resolved_cache_dir()
    assert a.startswith(str(tmp_path / "xdg" / "mountsync"))
    assert len({a, b, c}) == 3


def test_user_error_is_one_line_without_traceback(capsys, tmp_path):
    code = main(["sync", str(tmp_path / "not-a-mount")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("mountsync: ")
    assert "Traceback" not in err


def test_choose_evictions_lru_until_under_limit():
    cands = [Candidate(1, 100, last_used=30.0), Candidate(2, 100, last_used=10.0),
             Candidate(3, 100, last_used=20.0), Candidate(4, 0, last_used=0.0)]
    assert choose_evictions(cands, usage=400, limit=250) == [2, 3]
    assert choose_evictions(cands, usage=200, limit=250) == []


def test_quoted_false_does_not_enable_deletes(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('allow-delete: "false"\n')
    with pytest.raises(UserError, match="allow-delete"):
        parse(["mount", "bkt", str(tmp_path), "--config", str(cfg)])
    cfg.write_text("allow-delete: false\n")
    assert parse(["mount", "bkt", str(tmp_path), "--config", str(cfg)]).allow_delete is False


def test_config_file_values_reach_the_config_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("MS_DELAY", "3")
    cfg = tmp_path / "c.yaml"
    cfg.write_text('write-back-delay: "${MS_DELAY}"\nfile-mode: 640\nnegative-metadata-ttl: 0.5\n')
    c = parse(["mount", "bkt", str(tmp_path), "--config", str(cfg)])
    assert c.write_back_delay == 3.0 and isinstance(c.write_back_delay, float)
    assert c.file_mode == 0o640
    assert c.negative_metadata_ttl == 0.5
    assert parse(["mount", "bkt", str(tmp_path)]).negative_metadata_ttl == c.metadata_ttl  # same default
