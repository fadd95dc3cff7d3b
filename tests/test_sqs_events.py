"""AWS S3 -> SQS notifications drained into JetStream (issue 10), on moto's SQS (SeaweedFS has
no SQS): every event once, redeliveries deduplicated, NATS down for part of it, test events and
SNS envelopes understood, and a message that is no notification left to the queue."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from lakehouse.settings import Settings
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent
from storage_service.outbox import Outbox
from storage_service.sqs import drain_once, sqs_client
from storage_service.stream import read_after_sync
from tests.helpers import NatsServer, Service, local_settings, wait_for
from tests.s3servers import MotoServer

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _event(i: int) -> BucketEvent:
    return BucketEvent(
        OBJECT_CREATED_PUT,
        "landing",
        f"sqs/o{i:03d}.csv",
        10 + i,
        f"{i:032x}",
        f"{0x1800000000 + i:X}",
        T0 + timedelta(seconds=i),
    )


def _aws_body(events: list[BucketEvent]) -> str:
    records = [e.to_record() for e in events]
    for rec in records:  # AWS names events without MinIO's "s3:" prefix
        rec["eventName"] = str(rec["eventName"]).removeprefix("s3:")
    return json.dumps({"Records": records})


def _settings(tmp_path: Path, nats: NatsServer, moto: MotoServer) -> tuple[Settings, str]:
    base = local_settings(tmp_path, nats).model_copy(
        update={
            "sqs_endpoint": moto.endpoint,
            "s3_access_key": SecretStr(moto.access_key),
            "s3_secret_key": SecretStr(moto.secret_key),
        }
    )
    url = sqs_client(base).create_queue(QueueName="lakewire-events")["QueueUrl"]
    return base.model_copy(update={"sqs_queue_url": url}), url


def test_100_sqs_events_with_nats_down_for_part_arrive_exactly_once(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    settings, url = _settings(tmp_path, nats, moto_s3)
    client = sqs_client(settings)
    events = [_event(i) for i in range(100)]
    for i in range(0, 100, 5):
        client.send_message(QueueUrl=url, MessageBody=_aws_body(events[i : i + 5]))
    client.send_message(QueueUrl=url, MessageBody=_aws_body(events[:5]))  # a redelivery
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    sns = {"Type": "Notification", "Message": _aws_body([events[7]])}
    client.send_message(QueueUrl=url, MessageBody=json.dumps(sns))
    nats.stop()  # the first part arrives while NATS is down: kept in the outbox
    with Service(settings) as svc:
        wait_for(lambda: svc.runtime.outbox.count() >= 50 or None, 60, "events in the outbox")
        nats.start()
        wait_for(
            lambda: len(read_after_sync(settings, 0, 1000, 2).events) >= 100 or None,
            60,
            "100 events in JetStream",
        )
        wait_for(lambda: svc.runtime.outbox.count() == 0 or None, 30, "outbox drained")
    got = Counter((e.key, e.event_name) for e in read_after_sync(settings, 0, 1000, 2).events)
    assert got == Counter((e.key, OBJECT_CREATED_PUT) for e in events)
    assert "Messages" not in client.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_a_message_that_is_no_notification_stays_on_the_queue(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    settings, url = _settings(tmp_path, nats, moto_s3)
    client = sqs_client(settings)
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [{"nope": 1}]}))
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        assert drain_once(settings, outbox, client, wait_seconds=0) == 0
        assert outbox.count() == 0
    finally:
        outbox.close()
    attrs = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # not deleted
