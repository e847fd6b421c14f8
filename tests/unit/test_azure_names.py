"""Pure parts of the Azure backend: metadata names and where credentials come from."""

from __future__ import annotations

import pytest

pytest.importorskip("azure.storage.blob")

from mountsync.backend.azure import azure_name, credential_from_env, from_azure_name
from mountsync.backend.base import AccessDeniedError


@pytest.mark.parametrize("name,stored", [("mode", "mode"), ("mtime-ns", "mtime_ns"), ("a-b-c", "a_b_c")])
def test_names_map_both_ways(name, stored):
    assert azure_name(name) == stored
    assert from_azure_name(stored) == name
    assert from_azure_name(stored.upper()) == name  # Azure may hand names back in another case


def test_a_name_read_from_azure_is_written_back_unchanged():
    for native in ("mtime_ns", "my_tag", "Plain"):
        assert azure_name(from_azure_name(native)) == native.lower()


def test_credentials_in_order():
    env = {"AZURE_STORAGE_CONNECTION_STRING": "cs", "AZURE_STORAGE_KEY": "k", "AZURE_STORAGE_SAS_TOKEN": "?sv=1"}
    assert credential_from_env(env, "acct", False) == ("connection-string", "cs")
    del env["AZURE_STORAGE_CONNECTION_STRING"]
    assert credential_from_env(env, "acct", False) == ("credential", {"account_name": "acct", "account_key": "k"})
    del env["AZURE_STORAGE_KEY"]
    assert credential_from_env(env, "acct", False) == ("credential", "sv=1")
    assert credential_from_env({}, "acct", True) == ("credential", None)


def test_no_credentials_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_identity(name, *args, **kwargs):
        if name.startswith("azure.identity"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_identity)
    with pytest.raises(AccessDeniedError) as ei:
        credential_from_env({}, "acct", False)
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(ei.value)
