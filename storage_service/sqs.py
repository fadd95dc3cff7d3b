"""AWS S3 → SQS bucket notifications, drained into the same outbox as every other event.

AWS S3 cannot publish to NATS or call a webhook; it sends to an SQS queue. The service long-polls
that queue, parses each message with the parser the consumer uses (the S3 ``Records`` format,
bare or wrapped by SNS), stores the events in the durable outbox, and only then deletes the
message. A crash between the two redelivers the message, and the outbox publishes it with the
same ``Nats-Msg-Id``, so JetStream keeps one copy: at least once from SQS, exactly once in the
stream. A message that is not an S3 notification is logged and left to the queue's redrive
policy (a dead-letter queue), never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from lakehouse.settings import Settings
from storage_service.events import parse_message, with_identity
from storage_service.outbox import Outbox

log = logging.getLogger(__name__)


def sqs_client(settings: Settings) -> Any:
    import boto3

    s = settings
    return boto3.client(
        "sqs",
        endpoint_url=s.sqs_endpoint,
        region_name=s.s3_region,
        aws_access_key_id=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
        aws_secret_access_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
    )


def _records_body(body: str) -> str | None:
    """The S3 notification inside a message (SNS wraps it in ``Message``); None for AWS's
    ``s3:TestEvent`` and anything else without records."""
    doc = json.loads(body)
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
        return _records_body(doc["Message"])
    if isinstance(doc, dict) and "Records" in doc:
        return body
    return None


def drain_once(settings: Settings, outbox: Outbox, client: Any, wait_seconds: int = 10) -> int:
    """One long poll: events into the outbox, then their messages deleted. Returns events."""
    url = settings.sqs_queue_url
    assert url is not None
    resp = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
    )
    added = 0
    for message in resp.get("Messages", []):
        try:
            body = _records_body(message["Body"])
            events = [with_identity(e) for e in parse_message(body.encode())] if body else []
        except ValueError as exc:
            log.warning("SQS message %s is not an S3 notification: %s", message["MessageId"], exc)
            continue  # left for the queue's redrive policy
        if events:
            outbox.add(settings, events)  # on disk before the message goes
            added += len(events)
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return added


async def run_sqs_drain(settings: Settings, outbox: Outbox, stop: asyncio.Event) -> None:
    """Drain the queue until the service stops; an unreachable queue is retried with backoff."""
    client = sqs_client(settings)
    delay = 1.0
    while not stop.is_set():
        try:
            await asyncio.to_thread(drain_once, settings, outbox, client, 5)
            delay = 1.0
        except Exception as exc:
            log.warning("SQS queue %s: %s (retrying in %.0f s)", settings.sqs_queue_url, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 60.0)
