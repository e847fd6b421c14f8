"""mount(8) helper: option translation and the exec'd command line."""

import sys

import pytest

from mountsync import mount_helper
from mountsync.mount_helper import main, parse_helper_args, translate
from mountsync.spawn import mountsync_argv


def test_no_options():
    assert translate("my-bucket", "/mnt/b", "") == ["mount", "my-bucket", "/mnt/b"]
    assert translate("my-bucket", "/mnt/b", None) == ["mount", "my-bucket", "/mnt/b"]


def test_source_with_prefix_passed_unchanged():
    assert translate("my-bucket/photos/2024/", "/mnt/p", "")[:3] == [
        "mount",
        "my-bucket/photos/2024/",
        "/mnt/p",
    ]


def test_flags_and_values_underscores_to_dashes():
    argv = translate(
        "b",
        "/m",
        "allow_delete,endpoint_url=http://x,cache_dir=/x,force_path_style,region=eu-west-1",
    )
    assert argv == [
        "mount", "b", "/m",
        "--allow-delete",
        "--endpoint-url", "http://x",
        "--cache-dir", "/x",
        "--force-path-style",
        "--region", "eu-west-1",
    ]


def test_ro_maps_to_read_only_and_rw_is_dropped():
    assert translate("b", "/m", "ro") == ["mount", "b", "/m", "--read-only"]
    assert translate("b", "/m", "rw") == ["mount", "b", "/m"]


def test_allow_other_and_allow_root():
    assert translate("b", "/m", "allow_other") == ["mount", "b", "/m", "--allow-other"]
    assert translate("b", "/m", "allow_root") == ["mount", "b", "/m", "--allow-root"]


@pytest.mark.parametrize(
    "opt",
    [
        "rw", "defaults", "auto", "noauto", "user", "nouser", "exec",
        "suid", "dev", "_netdev", "nofail", "noatime", "relatime",
        "x-systemd.automount", "x-systemd.requires=network-online.target",
        "x-systemd.mount-timeout=30", "comment=systemd.automount", "comment=a=b",
    ],
)
def test_generic_mount_options_are_dropped(opt):
    assert translate("b", "/m", opt) == ["mount", "b", "/m"]


@pytest.mark.parametrize("opt", ["noexec", "nosuid", "nodev"])
def test_security_mount_flags_are_kept(opt):
    """Issue: the helper silently dropped noexec (a program on the mount ran anyway)."""
    assert translate("b", "/m", f"defaults,{opt}") == ["mount", "b", "/m", f"--{opt}"]


@pytest.mark.parametrize("opt", ["sync", "dirsync", "atime", "strictatime", "mand"])
def test_options_that_cannot_be_honoured_are_dropped_with_a_warning(opt, capsys):
    assert translate("b", "/m", f"{opt},ro") == ["mount", "b", "/m", "--read-only"]
    err = capsys.readouterr().err
    assert err.startswith(f"mount.fuse.mountsync: ignoring option {opt!r}: ") and err.count("\n") == 1


def test_mixed_fstab_line():
    opts = "defaults,_netdev,nofail,noauto,x-systemd.automount,uid=1000,gid=1000,file_mode=0640,allow_other,ro"
    assert translate("b/p/", "/mnt/p", opts) == [
        "mount", "b/p/", "/mnt/p",
        "--uid", "1000",
        "--gid", "1000",
        "--file-mode", "0640",
        "--allow-other",
        "--read-only",
    ]


def test_value_containing_equals_split_at_first_only():
    argv = translate("b", "/m", "endpoint_url=http://h:9000/?a=b&c=d")
    assert argv[3:] == ["--endpoint-url", "http://h:9000/?a=b&c=d"]


def test_empty_value_kept_and_empty_items_ignored():
    assert translate("b", "/m", ",,profile=,  ,debug,") == [
        "mount", "b", "/m", "--profile", "", "--debug",
    ]


def test_dashed_option_names_also_accepted():
    assert translate("b", "/m", "write-back-delay=10") == [
        "mount", "b", "/m", "--write-back-delay", "10",
    ]


def test_order_preserved_and_unknown_options_passed_through():
    # mountsync itself rejects unknown flags with one clear line.
    assert translate("b", "/m", "zeta,alpha=1") == ["mount", "b", "/m", "--zeta", "--alpha", "1"]


def test_parse_helper_args_mount8_forms():
    assert parse_helper_args(["b", "/m", "-o", "rw,ro"]) == (["b", "/m"], "rw,ro", False)
    assert parse_helper_args(["b", "/m", "-n", "-ouid=1", "-o", "debug", "-t", "fuse.mountsync"]) == (
        ["b", "/m"],
        "uid=1,debug",
        False,
    )
    assert parse_helper_args(["-sfnv", "b", "/m"]) == (["b", "/m"], "", True)
    with pytest.raises(ValueError):
        parse_helper_args(["b", "/m", "-o"])
    with pytest.raises(ValueError):
        parse_helper_args(["b", "/m", "--bogus"])


def test_main_execs_mountsync_with_same_interpreter(monkeypatch):
    calls = []

    def fake_execvp(file, args):
        calls.append((file, args))
        raise SystemExit(0)

    monkeypatch.setattr(mount_helper.os, "execvp", fake_execvp)
    with pytest.raises(SystemExit):
        main(["bkt/pre/", "/mnt/x", "-o", "rw,_netdev,region=us-east-1,allow_delete"])
    assert len(calls) == 1
    file, args = calls[0]
    assert file == sys.executable and args[0] == sys.executable
    assert args[1] == "-I", "the daemon must not take code from the cwd or PYTHON* variables"
    assert args == mountsync_argv("mount", "bkt/pre/", "/mnt/x", "--region", "us-east-1", "--allow-delete")


def test_main_fake_mount_and_usage_errors(monkeypatch, capsys):
    def no_exec(*a):
        raise AssertionError("must not exec")

    monkeypatch.setattr(mount_helper.os, "execvp", no_exec)
    assert main(["-f", "b", "/m", "-o", "ro"]) == 0
    assert main(["only-source"]) == 1
    assert "SOURCE and MOUNTPOINT" in capsys.readouterr().err
    assert main(["b", "/m", "-o"]) == 1


def test_main_reports_exec_failure(monkeypatch, capsys):
    def failing_exec(file, args):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(mount_helper.os, "execvp", failing_exec)
    assert main(["b", "/m"]) == 1
    err = capsys.readouterr().err
    assert "cannot run" in err and "Traceback" not in err
