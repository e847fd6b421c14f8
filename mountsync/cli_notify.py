"""``mountsync notify-setup BUCKET``: the AWS resources that let mounts of one bucket hear
of each other's changes (docs/MULTI-MOUNT.md): an SNS topic the bucket notifies, and one
SQS queue per mount subscribed to it. Idempotent: run it once per mount (each with its own
``--queue``); running it again changes nothing."""

from __future__ import annotations

import argparse
import re
import socket

from .errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notify-setup", help="make the SNS topic and an SQS queue for --notify (idempotent)")
    p.add_argument("bucket", metavar="BUCKET")
    p.add_argument("--queue", metavar="NAME",
                   help="the queue of the mount this is for (default: mountsync-BUCKET-HOSTNAME)")
    p.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint with SNS and SQS "
                   "(default: AWS)")
    p.add_argument("--region", metavar="REGION", help="the bucket's region (default: from the AWS configuration)")
    p.add_argument("--profile", metavar="NAME", help="AWS profile for credentials (default: the default chain)")


def default_queue(bucket: str) -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0] or "host")
    return f"mountsync-{bucket}-{host}"[:80]


def cmd_notify_setup(args: argparse.Namespace) -> int:
    from .backend.base import StoreError
    from .backend.s3_notify import setup_notifications

    queue = args.queue or default_queue(args.bucket)
    try:
        url = setup_notifications(args.bucket, queue, endpoint_url=args.endpoint_url, region=args.region,
                                  profile=args.profile)
    except StoreError as exc:
        raise UserError(f"notify-setup failed: {exc} (it needs the SNS, SQS and s3:PutBucketNotification "
                        "permissions listed in docs/MULTI-MOUNT.md)") from None
    print(f"bucket {args.bucket} notifies topic mountsync-{args.bucket}; queue {queue} receives its events")
    print(f"mount with: --notify {url}")
    return 0
