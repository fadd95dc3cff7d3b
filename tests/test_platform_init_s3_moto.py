"""Platform set-up against moto's server mode (S3 stand-in for MinIO) and a real nats-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.settings import Settings
from lakewire import platform_init
from tests.helpers import NatsServer
from tests.test_storage_support import s3_settings

pytestmark = pytest.mark.s3


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
    tmp_path: Path, nats: NatsServer, moto_endpoint: str
) -> None:
    # moto refuses MinIO's NATS ARN, so point the rule at an SQS-style target it accepts.
    arn = "arn:aws:sqs:us-east-1:123456789012:lakewire"
    settings = s3_settings(tmp_path, nats, moto_endpoint, s3_notification_arn=arn)
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)
    # Idempotent: a second start changes nothing and does not fail.
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)

    assert _stream_exists(settings)
    store = open_object_store(settings)
    assert {b.name for b in store.list_buckets()} >= set(settings.default_buckets)
    queues = store.get_notification_queues("landing")
    assert [q["QueueArn"] for q in queues] == [arn]
    assert set(queues[0]["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_init_fails_loudly_when_the_store_rejects_the_rule_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_endpoint: str
) -> None:
    settings = s3_settings(tmp_path, nats, moto_endpoint)  # MinIO's ARN, which moto rejects
    with pytest.raises(platform_init.InitError, match="rejected notification rules"):
        platform_init.ensure_buckets_and_notifications(settings)
