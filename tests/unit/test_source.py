"""The SOURCE argument of ``mountsync mount`` (mountsync.source) and the config built from it."""

from __future__ import annotations

import pytest

from mountsync.config import MountConfig
from mountsync.errors import UserError
from mountsync.source import Source, parse_source


@pytest.mark.parametrize("text,want", [
    ("bucket", Source("s3", "bucket", "")),
    ("bucket/a/b", Source("s3", "bucket", "a/b/")),
    ("s3://bucket/a/", Source("s3", "bucket", "a/")),
    ("S3://bucket", Source("s3", "bucket", "")),
    ("gs://my-bucket/data", Source("gcs", "my-bucket", "data/")),
    ("az://account/container", Source("azure", "container", "", "account")),
    ("az://account/container/deep/er/", Source("azure", "container", "deep/er/", "account")),
])
def test_forms(text, want):
    assert parse_source(text) == want


@pytest.mark.parametrize("text,words", [
    ("https://s3.example.com/bucket", "--endpoint-url"),
    ("ftp://x/y", "unknown storage URL ftp://"),
    ("az://account", "names no container"),
    ("az:///container", "names no storage account"),
    ("s3://", "names no bucket"),
    ("gs:///x", "names no bucket"),
])
def test_malformed_sources_are_usage_errors(text, words):
    with pytest.raises(UserError) as ei:
        parse_source(text)
    assert words in str(ei.value) and ei.value.code == 2


def test_url_round_trips():
    for text in ("s3://b/p/", "gs://b/", "az://acct/cont/x/y/"):
        assert parse_source(text).url() == text


def test_cache_dirs_differ_by_cloud_and_s3_keeps_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    s3 = MountConfig(bucket="b", mountpoint="/m").resolved_cache_dir()
    assert s3 == MountConfig(bucket="b", mountpoint="/m", cloud="s3").resolved_cache_dir()
    azure = MountConfig(bucket="b", mountpoint="/m", cloud="azure", account="a").resolved_cache_dir()
    other = MountConfig(bucket="b", mountpoint="/m", cloud="azure", account="other").resolved_cache_dir()
    assert len({s3, azure, other}) == 3


def test_s3_only_options_are_refused_elsewhere():
    with pytest.raises(UserError) as ei:
        MountConfig(bucket="c", mountpoint="/m", cloud="azure", account="a", sse="AES256",
                    force_path_style=True).validate()
    assert "--sse, --force-path-style: S3 only, not for az://a/c/" in str(ei.value)
    MountConfig(bucket="c", mountpoint="/m", cloud="azure", account="a", storage_class="Cool").validate()
