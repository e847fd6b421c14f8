"""Criterion 1: ``cp -r`` of a 200-file tree lands in the bucket byte for byte."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.mount_helpers import MiB, file_keys, get_bytes, make_tree

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def test_cp_r_tree_reaches_bucket_byte_identical(mount, s3, bucket, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src, count=200)
    sizes = [p.stat().st_size for p in files.values()]
    assert len(files) == 200 and min(sizes) == 0 and max(sizes) == 2 * MiB

    m = mount()
    r = subprocess.run(["cp", "-r", f"{src}/.", f"{m.mountpoint}/"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m.sync()

    keys = file_keys(s3, bucket)
    assert keys == set(files), (
        f"missing: {sorted(set(files) - keys)[:10]}; unexpected: {sorted(keys - set(files))[:10]}")
    different = [rel for rel, path in files.items() if get_bytes(s3, bucket, rel) != path.read_bytes()]
    assert not different, f"{len(different)} object(s) differ from their source file: {different[:10]}"
    # and the mount shows the same bytes
    assert all((m.mountpoint / rel).read_bytes() == path.read_bytes() for rel, path in files.items())
