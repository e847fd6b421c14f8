"""git on the mount: init, add and commit 200 files, clone on the mount, fsck both, then sync."""

from __future__ import annotations

import pytest

from tests.support.mount_helpers import file_keys, get_bytes
from tests.support.treeutil import describe_diff, snapshot

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

GIT = ["git", "-c", "user.name=Posix Test", "-c", "user.email=posix@example.invalid",
       "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
SUBDIRS = ["", "src", "src/pkg", "docs", "data/raw", "data/processed"]


def _files() -> dict[str, bytes]:
    files = {}
    for i in range(200):
        d = SUBDIRS[i % len(SUBDIRS)]
        name = f"file{i:03d}.txt" if i % 5 else f"notes-{i:03d}.md"
        rel = f"{d}/{name}" if d else name
        files[rel] = "".join(f"line {j} of file {i}: {'x' * (i % 17)}\n" for j in range(i % 23 + 1)).encode()
    return files


def _fsck(run, repo) -> None:
    r = run(GIT + ["fsck", "--full", "--strict", "--no-progress"], cwd=repo)
    out = (r.stdout + r.stderr).lower()
    for word in ("error", "missing", "broken", "corrupt", "bad ", "dangling"):
        assert word not in out, f"git fsck in {repo} reports {word!r}:\n{r.stdout}\n{r.stderr}"


def test_git_init_commit_clone_fsck_then_sync(mount, s3, bucket, run):
    m = mount()
    work = m.path("work")
    work.mkdir()
    repo = work / "repo"
    run(GIT + ["init", "-q", str(repo)])
    files = _files()
    for rel, data in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    run(GIT + ["add", "-A"], cwd=repo)
    run(GIT + ["commit", "-q", "-m", "200 files"], cwd=repo)

    tracked = run(GIT + ["ls-files", "-z"], cwd=repo).stdout.split("\0")
    assert sorted(t for t in tracked if t) == sorted(files)
    head = run(GIT + ["rev-parse", "HEAD"], cwd=repo).stdout.strip()

    # a local clone would hard-link objects; the mount refuses link(2), and git falls back to copying
    run(GIT + ["clone", "-q", "repo", "clone"], cwd=work)
    clone = work / "clone"
    _fsck(run, repo)
    _fsck(run, clone)
    assert run(GIT + ["rev-parse", "HEAD"], cwd=clone).stdout.strip() == head
    for r in (repo, clone):
        assert run(GIT + ["status", "--porcelain"], cwd=r).stdout == "", f"{r} is not clean"

    want = dict(files)
    for r in (repo, clone):
        got = {rel: v[2] for rel, v in snapshot(r, skip=(".git",)).items() if v[0] == "file"}
        assert got == want, f"working tree of {r.name} differs from the files committed:\n" \
                            f"{describe_diff(want, got)}"

    m.sync()
    keys = file_keys(s3, bucket)
    for r in ("repo", "clone"):
        assert f"work/{r}/.git/HEAD" in keys
        missing = sorted(rel for rel in files if f"work/{r}/{rel}" not in keys)
        assert not missing, f"not in the bucket after sync: {missing[:10]}"
    for rel in list(files)[::40]:
        assert get_bytes(s3, bucket, f"work/clone/{rel}") == files[rel]

    # work goes on after the upload: a second commit replaces uploaded files
    # (index, refs, ORIG_HEAD...) by rename-over, which needs no --allow-delete
    (repo / "src/pkg/new.txt").write_text("new\n")
    (repo / "src/file001.txt").write_text("changed\n")
    run(GIT + ["add", "-A"], cwd=repo)
    run(GIT + ["commit", "-q", "-m", "second"], cwd=repo)
    _fsck(run, repo)
    assert run(GIT + ["status", "--porcelain"], cwd=repo).stdout == ""
    assert run(GIT + ["rev-list", "--count", "HEAD"], cwd=repo).stdout.strip() == "2"
    m.sync()
    assert get_bytes(s3, bucket, "work/repo/src/file001.txt") == b"changed\n"


def test_git_checkout_over_uploaded_worktree_needs_allow_delete(mount, s3, bucket, run):
    """git replaces a changed tracked file by unlink + create. Once the old file is in the bucket,
    that unlink is EPERM without --allow-delete (SEMANTICS, Deletes), so `git pull`/`checkout`
    into an uploaded work tree fails; with --allow-delete it works."""
    m = mount()
    work = m.path("w")
    work.mkdir()
    repo = work / "repo"
    run(GIT + ["init", "-q", str(repo)])
    for i in range(10):
        (repo / f"f{i}.txt").write_text(f"v1 {i}\n")
    run(GIT + ["add", "-A"], cwd=repo)
    run(GIT + ["commit", "-q", "-m", "v1"], cwd=repo)
    run(GIT + ["clone", "-q", "repo", "clone"], cwd=work)
    clone = work / "clone"
    m.sync()
    (repo / "f3.txt").write_text("v2\n")
    run(GIT + ["commit", "-q", "-am", "v2"], cwd=repo)

    r = run(GIT + ["pull", "-q", "--ff-only"], cwd=clone, check=False)
    assert r.returncode != 0, "git pull replaced an uploaded file without --allow-delete"
    assert "unable to unlink old 'f3.txt': Operation not permitted" in r.stderr, r.stderr
    assert get_bytes(s3, bucket, "w/clone/f3.txt") == b"v1 3\n"

    r = m.unmount()
    assert r.returncode == 0, r.stderr
    m2 = mount("--allow-delete", mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    run(GIT + ["reset", "-q", "--hard"], cwd=clone)
    run(GIT + ["pull", "-q", "--ff-only"], cwd=clone)
    _fsck(run, clone)
    assert (clone / "f3.txt").read_text() == "v2\n"
    assert run(GIT + ["status", "--porcelain"], cwd=clone).stdout == ""
    m2.sync()
    assert get_bytes(s3, bucket, "w/clone/f3.txt") == b"v2\n"
