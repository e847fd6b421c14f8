"""Which store a mount's source makes, and the one line when its cloud's SDK is missing."""

from __future__ import annotations

import sys

import pytest

from mountsync.config import MountConfig
from mountsync.daemon import make_store
from mountsync.errors import UserError


@pytest.mark.parametrize("cloud,module,extra", [
    ("azure", "mountsync.backend.azure", "mountsync[azure]"),
    ("gcs", "mountsync.backend.gcs", "mountsync[gcs]"),
])
def test_a_missing_sdk_is_one_line_naming_the_extra(monkeypatch, cloud, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if the SDK were not installed: ImportError
    config = MountConfig(bucket="b", mountpoint="/m", cloud=cloud, account="acct" if cloud == "azure" else "")
    with pytest.raises(UserError) as ei:
        make_store(config)
    assert extra in str(ei.value) and "\n" not in str(ei.value)


def test_each_cloud_gets_its_store(monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_KEY", "a2V5")
    azure = make_store(MountConfig(bucket="c", mountpoint="/m", cloud="azure", account="acct"))
    assert type(azure).__name__ == "AzureStore" and azure.describe().startswith("az://acct/c")
    gcs = make_store(MountConfig(bucket="g", mountpoint="/m", cloud="gcs", no_sign_request=True))
    assert type(gcs).__name__ == "GcsStore" and gcs.describe() == "gs://g"
    s3 = make_store(MountConfig(bucket="s", mountpoint="/m", endpoint_url="http://127.0.0.1:9"))
    assert type(s3).__name__ == "S3Store"
