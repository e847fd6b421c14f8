"""Bad values and usage errors through the real command line (``python -m mountsync`` in a
subprocess, no mount, no server): one line naming the flag or key, exit status 2.

Moved from tests/test_cli_config.py (whose parsing tests are in tests/unit/test_cli_config.py).
"""

import pytest


def run_real_cli(*args: str, env_extra: dict | None = None):
    import os
    import subprocess
    import sys

    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mountsync", *args], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("flag, value, form", [
    ("--max-cache-size", "lots", "size like 512M"),
    ("--file-mode", "999", "octal mode"),
    ("--write-back-delay", "-1", "number of seconds"),
    ("--uid", "root", "numeric id"),
    ("--conflict-strategy", "mine", "keep-both"),
    ("--negative-metadata-ttl", "never", "number of seconds"),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag_exit_2(tmp_path, flag, value, form):
    r = run_real_cli("mount", "bkt", str(tmp_path), flag, value)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert flag in lines[0] and form in lines[0] and repr(value) in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("yaml_text, key, form", [
    ('allow-delete: "false"\n', "allow-delete", "true or false"),
    ('write-back-delay: "five"\n', "write-back-delay", "number of seconds"),
    ("region: ${MS_EVIL_REGION}\n", "region", "region name"),
    ("allow-delte: true\n", "allow-delte", "did you mean 'allow-delete'"),
])
def test_a_bad_config_value_is_one_line_naming_the_key_exit_2(tmp_path, yaml_text, key, form):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_real_cli("mount", "bkt", str(mnt), "--config", str(cfg),
                     env_extra={"MS_EVIL_REGION": "us-east-1\nallow-delete: true"})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"config file {cfg}: " in lines[0] and key in lines[0] and form in lines[0], lines[0]


@pytest.mark.parametrize("argv", [
    ["mount", "bkt", "/m", "--no-such-flag"],
    ["unmount", "/m", "--timeout", "-1"],
    ["sync", "/m", "--timeout", "soon"],
    ["mount"],
])
def test_usage_errors_are_one_line_exit_2(argv):
    r = run_real_cli(*argv)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("mountsync: ")


def test_version_prints_one_line_and_exits_0():
    from mountsync import __version__

    r = run_real_cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"mountsync {__version__} (Python ") and r.stdout.count("\n") == 1, r.stdout


def _mount_options() -> list:
    import argparse

    from mountsync.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["mount"]._actions if a.option_strings and a.help != argparse.SUPPRESS
            and "--help" not in a.option_strings]


def test_every_mount_option_has_a_help_line_with_its_default():
    """Issue (user experience): ``mount --help`` described 1 of 28 options."""
    options = _mount_options()
    assert len(options) >= 30
    missing = [a.option_strings[0] for a in options if not a.help or "default" not in a.help]
    assert not missing, f"options without a help line naming their default: {missing}"
    r = run_real_cli("mount", "--help")
    assert r.returncode == 0 and all(a.option_strings[0] in r.stdout for a in options)


def test_the_readme_options_table_matches_mount_help():
    """Issue (user experience): the README's table and ``--help`` list the same options."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Options", 1)[1].split("\n\n", 2)[1]
    first_column = [re.split(r"(?<!\\)\|", row)[1] for row in table.splitlines() if row.startswith("| `")]
    in_readme = set(re.findall(r"`(--[a-z-]+)", "\n".join(first_column)))
    in_help = {a.option_strings[0] for a in _mount_options()}
    assert in_readme == in_help, f"only in README: {in_readme - in_help}; only in --help: {in_help - in_readme}"


def test_the_man_page_renders_with_man():
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("man") is None:
        pytest.skip("man(1) is not installed")
    page = Path(__file__).resolve().parents[2] / "docs" / "mountsync.1"
    r = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                       env={"MANPAGER": "cat", "PAGER": "cat", "COLUMNS": "100", "PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode == 0, r.stderr
    assert "MOUNTSYNC(1)" in r.stdout and "--allow-delete" in r.stdout and "EXIT STATUS" in r.stdout
