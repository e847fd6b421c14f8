"""Many mounts of one bucket (issue 14, docs/MULTI-MOUNT.md): with ``--notify``, each mount
hears of the others' changes from the bucket's event notifications (S3 → SNS → one SQS
queue per mount, made by ``mountsync notify-setup``) on the moto server, while its metadata
TTL is 5 minutes. How long a change took to show is printed (``-s``), never asserted:
the tests wait for the state with a deadline well below the TTL."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.mount_helpers import run_cli

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

DEADLINE = 60.0  # seconds to wait for a change to show: far below the 300 s TTL


def _setup(mount, bucket: str, queue: str, endpoint: str) -> str:
    r = run_cli(mount.env, "notify-setup", bucket, "--queue", queue, "--endpoint-url", endpoint,
                "--region", "us-east-1", timeout=60)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("mount with: --notify ")]
    assert line, r.stdout
    return line[0].split()[-1]


def _shows(check, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < DEADLINE, f"{what}: not seen within {DEADLINE:.0f} s"
        time.sleep(0.1)
    took = time.monotonic() - started
    print(f"{what}: {took:.2f} s")
    return took


def _read(path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_two_mounts_see_each_others_changes(mount, s3, bucket, moto_endpoint):
    url_a = _setup(mount, bucket, f"{bucket}-a", moto_endpoint)
    url_b = _setup(mount, bucket, f"{bucket}-b", moto_endpoint)
    assert _setup(mount, bucket, f"{bucket}-a", moto_endpoint) == url_a  # idempotent
    topics = s3.get_bucket_notification_configuration(Bucket=bucket)["TopicConfigurations"]
    assert len(topics) == 1, topics

    s3.put_object(Bucket=bucket, Key="shared/plan.txt", Body=b"version 1")
    a = mount("--notify", url_a, "--write-back-delay", "0", "--allow-delete")
    b = mount("--notify", url_b)
    assert b.status()["notify"]["queue"].endswith(f"{bucket}-b")
    assert _read(b.path("shared/plan.txt")) == b"version 1"  # cached by B, trusted for 300 s
    assert sorted(os.listdir(b.path("shared"))) == ["plan.txt"]

    a.path("shared/plan.txt").write_bytes(b"version 2, longer")
    a.sync()
    _shows(lambda: _read(b.path("shared/plan.txt")) == b"version 2, longer", "A's edit on B")
    assert os.stat(b.path("shared/plan.txt")).st_size == len(b"version 2, longer")

    a.path("shared/new.txt").write_bytes(b"new")
    a.sync()
    _shows(lambda: "new.txt" in os.listdir(b.path("shared")), "A's new file in B's listing")

    a.path("shared/plan.txt").unlink()
    a.sync()
    _shows(lambda: "plan.txt" not in os.listdir(b.path("shared")) and _read(b.path("shared/plan.txt")) is None,
           "A's delete on B")

    s3.put_object(Bucket=bucket, Key="shared/outside.txt", Body=b"from boto3")
    for m, name in ((a, "A"), (b, "B")):
        _shows(lambda m=m: _read(m.path("shared/outside.txt")) == b"from boto3", f"a boto3 write on {name}")
    assert b.status()["notify"]["events_applied"] >= 4
    assert b.status()["conflicts"] == 0 and a.status()["conflicts"] == 0


IDLE = 25.0  # seconds


def test_an_idle_mount_only_polls_its_queue(mount, bucket, moto_endpoint, s3):
    url = _setup(mount, bucket, f"{bucket}-idle", moto_endpoint)
    s3.put_object(Bucket=bucket, Key="d/f.txt", Body=b"x")
    m = mount("--notify", url)
    os.listdir(m.path("d"))
    assert _read(m.path("d/f.txt")) == b"x"

    def counts() -> tuple[dict, int]:
        st = m.status()  # the status request itself makes one check_bucket: not counted
        requests = {k: v for k, v in st["backend"]["requests"].items() if k != "check_bucket"}
        return requests, st["notify"]["polls"]

    before, polls_before = counts()
    time.sleep(IDLE)  # idle on purpose: what a mount does when nobody uses it
    after, polls_after = counts()
    print(f"idle {IDLE:.0f} s: {polls_after - polls_before} queue poll(s), S3 requests {before} -> {after}")
    assert after == before, "an idle mount with --notify asked the bucket something"
    assert polls_after > polls_before, "the queue was not polled"


def test_a_mount_that_was_down_while_its_events_expired_is_consistent(mount, s3, bucket, moto_endpoint):
    """The events of B's down time are gone (the queue purged, as when they outlive its
    retention); mounted again with the same cache dir, B shows the bucket as it is."""
    url_b = _setup(mount, bucket, f"{bucket}-down", moto_endpoint)
    s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"old a")
    s3.put_object(Bucket=bucket, Key="data/b.txt", Body=b"old b")
    b = mount("--notify", url_b)
    assert _read(b.path("data/a.txt")) == b"old a" and _read(b.path("data/b.txt")) == b"old b"
    assert b.unmount().returncode == 0

    s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"new a, written while B was down")
    s3.delete_object(Bucket=bucket, Key="data/b.txt")
    s3.put_object(Bucket=bucket, Key="data/c.txt", Body=b"c")
    import boto3

    from tests.support.moto_server import TEST_ENV

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id=TEST_ENV["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=TEST_ENV["AWS_SECRET_ACCESS_KEY"])
    sqs.purge_queue(QueueUrl=url_b)

    again = mount("--notify", url_b, mountpoint=b.mountpoint, cache_dir=b.cache_dir)
    assert sorted(os.listdir(again.path("data"))) == ["a.txt", "c.txt"]
    assert _read(again.path("data/a.txt")) == b"new a, written while B was down"
    assert _read(again.path("data/b.txt")) is None
