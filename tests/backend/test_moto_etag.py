"""The moto server the mount tests use reports the right ETag for a big object written
while the bucket is being listed (see tests/support/moto_etag.py for moto's race).

Without the fix, about one round in five of this test saw the ETag of the object's
first 16 MiB (HEAD said 009f16…, the PUT said 603339…): the mount then took its own
upload for another writer's and kept "both" versions.
"""

from __future__ import annotations

import hashlib
import threading

import boto3

from tests.support.moto_server import start_moto_subprocess, stop_moto_subprocess

BODY = b"y" * 30_000_000  # over moto's 16 MiB read block
ROUNDS = 15


def test_big_put_while_listing_keeps_its_etag():
    endpoint, proc = start_moto_subprocess()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="etag-race")
        want = hashlib.md5(BODY).hexdigest()
        for i in range(ROUNDS):
            stop = threading.Event()

            def lister(stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    s3.list_objects_v2(Bucket="etag-race")

            t = threading.Thread(target=lister)
            t.start()
            try:
                put = s3.put_object(Bucket="etag-race", Key="k", Body=BODY)
            finally:
                stop.set()
                t.join()
            head = s3.head_object(Bucket="etag-race", Key="k")
            assert (put["ETag"].strip('"'), head["ETag"].strip('"')) == (want, want), f"round {i}"
            assert head["ContentLength"] == len(BODY)
    finally:
        stop_moto_subprocess(proc)
