"""Platform set-up against moto's server mode and a real nats-server.

On moto rather than SeaweedFS: set-up applies the landing bucket's notification rule, and
SeaweedFS implements no PutBucketNotificationConfiguration (it answers as if the bucket were
being created). moto stores the rule, and refuses MinIO's NATS ARN as a MinIO without a NATS
target does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from lakehouse.settings import Settings
from lakewire import platform_init
from tests.helpers import NatsServer, s3_settings
from tests.s3servers import MotoServer


def _stream_exists(settings: Settings) -> bool:
    async def check() -> bool:
        nc = await nats.connect(settings.effective_nats_url)
        try:
            info = await nc.jetstream().stream_info(settings.stream_name)
            return info.config.subjects == [f"{settings.subject_prefix}.>"]
        finally:
            await nc.close()

    return asyncio.run(check())


def test_init_creates_stream_buckets_and_landing_rule_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    # moto refuses MinIO's NATS ARN, so point the rule at an SQS-style target it accepts.
    arn = "arn:aws:sqs:us-east-1:123456789012:lakewire"
    settings = s3_settings(tmp_path, nats, moto_s3, s3_notification_arn=arn)
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)
    # Idempotent: a second start changes nothing and does not fail.
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)

    assert _stream_exists(settings)
    s3 = moto_s3.client()
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= set(settings.default_buckets)
    queues = s3.get_bucket_notification_configuration(Bucket="landing")["QueueConfigurations"]
    assert [q["QueueArn"] for q in queues] == [arn]
    assert set(queues[0]["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_init_fails_loudly_when_the_store_rejects_the_rule_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    settings = s3_settings(tmp_path, nats, moto_s3)  # MinIO's ARN, which moto rejects
    with pytest.raises(platform_init.InitError, match="rejected notification rules"):
        platform_init.ensure_buckets_and_notifications(settings)
