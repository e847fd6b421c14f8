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


def _two_branches(run, repo) -> None:
    """A repository whose branches ``main`` and ``other`` differ in 50 files: 13 changed,
    13 added, 12 deleted and 12 renamed on ``other``."""
    run(GIT + ["init", "-q", str(repo)])
    files = _files()
    for rel, data in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    run(GIT + ["add", "-A"], cwd=repo)
    run(GIT + ["commit", "-q", "-m", "main"], cwd=repo)
    run(GIT + ["checkout", "-q", "-b", "other"], cwd=repo)
    names = sorted(files)
    for rel in names[0:13]:
        (repo / rel).write_bytes(files[rel] + b"changed on other\n")
    for i in range(13):
        (repo / "src" / f"added{i:02d}.txt").write_text(f"added {i}\n")
    for rel in names[13:25]:
        run(GIT + ["rm", "-q", rel], cwd=repo)
    for i, rel in enumerate(names[25:37]):
        run(GIT + ["mv", rel, f"docs/renamed{i:02d}-{rel.replace('/', '-')}"], cwd=repo)
    run(GIT + ["add", "-A"], cwd=repo)
    run(GIT + ["commit", "-q", "-m", "other"], cwd=repo)
    diff = run(GIT + ["diff", "--name-status", "-M", "main", "other"], cwd=repo).stdout.splitlines()
    assert len(diff) == 50, diff
    run(GIT + ["checkout", "-q", "main"], cwd=repo)


def test_git_checkout_of_another_branch_over_an_uploaded_worktree(mount, s3, bucket, run, tmp_path):
    """SPEC §6, own creations: git replaces, deletes and renames files it wrote. Once the
    clone is in the bucket, `git checkout` of the other branch removes and renames uploaded
    files; on a default mount (no --allow-delete) this works because the mount created them,
    with uploads running every second so nothing depends on the write-back delay."""
    origin = tmp_path / "origin"
    _two_branches(run, origin)
    m = mount("--write-back-delay", "1")
    clone = m.path("clone")
    run(GIT + ["clone", "-q", str(origin), str(clone)])
    m.sync()  # the whole main work tree and .git are uploaded
    assert {"clone/notes-000.md", "clone/src/file001.txt"} <= file_keys(s3, bucket)

    run(GIT + ["checkout", "-q", "other"], cwd=clone)
    assert run(GIT + ["status", "--porcelain"], cwd=clone).stdout == ""
    _fsck(run, clone)
    want_tree = tmp_path / "want"
    run(GIT + ["clone", "-q", "-b", "other", str(origin), str(want_tree)])
    want, got = snapshot(want_tree, skip=(".git",)), snapshot(clone, skip=(".git",))
    assert got == want, describe_diff(want, got)

    m.sync()
    keys = {k.removeprefix("clone/") for k in file_keys(s3, bucket) if not k.startswith("clone/.git/")}
    assert keys == {rel for rel, v in want.items() if v[0] == "file"}, "bucket and branch differ"
    for rel in sorted(want)[::20]:
        if want[rel][0] == "file":
            assert get_bytes(s3, bucket, f"clone/{rel}") == want[rel][2], rel
