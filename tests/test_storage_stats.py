"""Bucket statistics on S3 follow MinIO's notifications in the stream, not a listing per request."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage_service.events import OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, BucketEvent
from storage_service.stream import publish_events
from tests.helpers import NatsServer, Service, s3_settings, wait_for
from tests.s3servers import SeaweedFS


def _row(svc: Service, bucket: str) -> dict[str, Any]:
    return next(b for b in svc.client.get("/api/buckets").json() if b["name"] == bucket)


def _event(name: str, key: str, body: bytes = b"") -> BucketEvent:
    return BucketEvent(
        event_name=name,
        bucket="landing",
        key=key,
        size=len(body),
        etag=hashlib.md5(body).hexdigest() if body else "",
        sequencer=f"{datetime.now(tz=UTC).timestamp():.9f}",
        event_time=datetime.now(tz=UTC),
    )


def test_stats_follow_minio_events_from_other_writers_on_s3_seaweedfs(
    tmp_path: Path,
    nats: NatsServer,
    seaweed_s3: SeaweedFS,
) -> None:
    # Re-counting by listing happens once at start; after that only events move the numbers.
    settings = s3_settings(tmp_path, nats, seaweed_s3, s3_stats_refresh_seconds=3600)
    with Service(settings) as svc:
        wait_for(lambda: _row(svc, "landing")["stats_complete"], 15, "the first count")
        assert _row(svc, "landing")["objects"] == 0

        # Another client writes straight to the store; MinIO would publish this event.
        body = b"id\n1\n2\n"
        seaweed_s3.client().put_object(Bucket="landing", Key="ext/a.csv", Body=body)
        asyncio.run(publish_events(settings, [_event(OBJECT_CREATED_PUT, "ext/a.csv", body)]))
        row = wait_for(
            lambda: (r := _row(svc, "landing"))["objects"] == 1 and r, 15, "stats from the event"
        )
        assert row["size"] == len(body)

        seaweed_s3.client().delete_object(Bucket="landing", Key="ext/a.csv")
        asyncio.run(publish_events(settings, [_event(OBJECT_REMOVED_DELETE, "ext/a.csv")]))
        wait_for(lambda: _row(svc, "landing")["objects"] == 0, 15, "stats after the delete")
