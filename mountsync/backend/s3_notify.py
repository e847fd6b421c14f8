"""S3 event notifications through SNS and SQS (``--notify``, ``mountsync notify-setup``):
the SQS side of ``change_feed.ChangeFeed`` and the one-time setup. One of the backend/s3*
modules, the only ones that import boto3.

``SqsFeed`` long-polls one queue (each mount needs its own: a message goes to one
receiver) and deletes what was handled. ``setup_notifications`` makes, idempotently, the
AWS pattern for many mounts: the bucket notifies one SNS topic, each mount's queue is
subscribed to it with raw delivery. Needs sns:CreateTopic, sns:SetTopicAttributes,
sns:ListSubscriptionsByTopic, sns:Subscribe, sqs:CreateQueue, sqs:GetQueueAttributes, sqs:SetQueueAttributes,
s3:GetBucketNotification and s3:PutBucketNotification.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from ..change_feed import FeedMessage
from .base import StoreStats
from .s3_errors import map_error

EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def _session(region: str | None, profile: str | None) -> Any:
    return boto3.session.Session(profile_name=profile, region_name=region or "us-east-1")


class SqsFeed:
    """One SQS queue of S3 event notifications. Blocking; one caller at a time."""

    def __init__(self, queue_url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 profile: str | None = None) -> None:
        self.queue_url = queue_url
        self.stats = StoreStats()
        config = Config(connect_timeout=5, read_timeout=40, retries={"total_max_attempts": 2, "mode": "standard"})
        try:
            self._sqs = _session(region, profile).client("sqs", endpoint_url=endpoint_url, config=config)
        except Exception as exc:
            raise map_error(exc, "configuring the SQS client") from exc

    def describe(self) -> str:
        return f"SQS queue {self.queue_url}"

    def check(self) -> None:
        """The queue exists and may be read (one GetQueueAttributes); a StoreError if not."""
        self.stats.count("check")
        try:
            self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except Exception as exc:
            raise map_error(exc, f"GetQueueAttributes {self.queue_url}") from exc

    def receive(self, wait_seconds: int) -> list[FeedMessage]:
        self.stats.count("receive")
        try:
            resp = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=wait_seconds)
        except Exception as exc:
            raise map_error(exc, f"ReceiveMessage {self.queue_url}") from exc
        return [FeedMessage(m["ReceiptHandle"], m.get("Body", "")) for m in resp.get("Messages", [])]

    def acknowledge(self, handles: list[str]) -> None:
        for i in range(0, len(handles), 10):
            self.stats.count("acknowledge")
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[i:i + 10])]
            try:
                self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                raise map_error(exc, f"DeleteMessageBatch {self.queue_url}") from exc


def setup_notifications(bucket: str, queue_name: str, *, endpoint_url: str | None = None,
                        region: str | None = None, profile: str | None = None) -> str:
    """Topic, queue, subscription and bucket notification for one more mount of ``bucket``;
    returns the queue's URL. Running it again changes nothing."""
    session = _session(region, profile)
    try:
        s3 = session.client("s3", endpoint_url=endpoint_url)
        sns = session.client("sns", endpoint_url=endpoint_url)
        sqs = session.client("sqs", endpoint_url=endpoint_url)
        topic = sns.create_topic(Name=f"mountsync-{bucket}")["TopicArn"]
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish",
                "Resource": topic, "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]}))
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]})})
        subscribed = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
        if not any(s.get("Endpoint") == arn for s in subscribed):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        topics = current.setdefault("TopicConfigurations", [])
        if not any(t.get("TopicArn") == topic for t in topics):
            topics.append({"TopicArn": topic, "Events": EVENTS})
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=current)
        return str(url)
    except Exception as exc:
        raise map_error(exc, f"setting up notifications for bucket {bucket!r}") from exc
