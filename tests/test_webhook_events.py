"""S3-format webhook events (MinIO, RustFS, Ceph RGW) into the outbox and JetStream (issue 10).

A real nats-server, stopped for part of the deliveries: every event POSTed arrives in the
stream exactly once, including the ones the store delivered twice.
"""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.settings import Settings
from storage_service.api_events import load_or_create_webhook_token, token_file
from storage_service.events import OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, BucketEvent
from storage_service.stream import read_after_sync
from tests.helpers import NatsServer, Service, local_settings, wait_for

T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def _event(i: int, name: str = OBJECT_CREATED_PUT) -> BucketEvent:
    return BucketEvent(
        event_name=name,
        bucket="landing",
        key=f"hook/day {i:03d}.csv",  # a space: MinIO escapes it as '+'
        size=100 + i,
        etag=f"{i:032x}",
        sequencer=f"{1_700_000_000_000_000_000 + i:016X}",
        event_time=T0 + timedelta(seconds=i),
    )


def _minio_body(event: BucketEvent) -> bytes:
    return event.to_message()  # {"EventName", "Key", "Records": [one]}: what MinIO POSTs


def _plain_body(events: list[BucketEvent]) -> bytes:
    return json.dumps({"Records": [e.to_record() for e in events]}).encode()


def _stream(settings: Settings) -> list[BucketEvent]:
    return read_after_sync(settings, 0, 100_000, 10).events


@pytest.fixture
def settings(tmp_path: Path, nats: NatsServer) -> Settings:
    return local_settings(tmp_path, nats)


def test_100_webhook_events_with_nats_down_for_part_arrive_exactly_once(
    settings: Settings, nats: NatsServer
) -> None:
    token = load_or_create_webhook_token(settings)
    auth = {"Authorization": f"Bearer {token}"}
    events = [_event(i) for i in range(100)]
    with Service(settings) as svc:
        post = svc.client.post

        def deliver(body: bytes) -> int:
            resp = post("/api/events/s3", content=body, headers=auth)
            assert resp.status_code == 200, resp.text
            accepted: int = resp.json()["accepted"]
            return accepted

        # 0-29 one per POST (MinIO), with NATS up.
        assert sum(deliver(_minio_body(e)) for e in events[:30]) == 30
        wait_for(lambda: svc.runtime.outbox.count() == 0, 20, "the first 30 to publish")
        nats.stop()
        # 30-69 while NATS is away: 30-49 as MinIO bodies, 50-69 as plain Records in fours;
        # the store retries 40-44 (it saw no answer in time), and RGW sends 60-63 again.
        assert sum(deliver(_minio_body(e)) for e in events[30:50]) == 20
        assert sum(deliver(_plain_body(events[i : i + 4])) for i in range(50, 70, 4)) == 20
        assert sum(deliver(_minio_body(e)) for e in events[40:45]) == 5
        assert deliver(_plain_body(events[60:64])) == 4
        assert svc.runtime.outbox.count() == 40  # on disk, each once, until NATS is back
        nats.start()
        # 70-99 as NATS comes back; then a late duplicate of an early one.
        assert sum(deliver(_minio_body(e)) for e in events[70:]) == 30
        assert deliver(_minio_body(events[5])) == 1
        wait_for(lambda: len(_stream(settings)) >= 100, 30, "100 events in the stream")
        wait_for(lambda: svc.runtime.outbox.count() == 0, 20, "the outbox to drain")
        got = _stream(settings)

    counts = Counter((e.key, e.sequencer) for e in got)
    assert len(got) == 100, f"{len(got)} stream messages for 100 events"
    assert set(counts.values()) == {1}
    assert sorted(k for k, _ in counts) == sorted(e.key for e in events)
    by_key = {e.key: e for e in got}
    for e in events:  # what arrived is what was sent: unescaped key, size, etag, event
        g = by_key[e.key]
        assert (g.bucket, g.size, g.etag, g.event_name) == ("landing", e.size, e.etag, e.event_name)


def test_webhook_token_is_required_and_bodies_are_checked(settings: Settings) -> None:
    token = load_or_create_webhook_token(settings)
    assert stat.S_IMODE(os.stat(token_file(settings)).st_mode) == 0o600
    assert load_or_create_webhook_token(settings) == token  # kept across starts
    body = _minio_body(_event(1))
    with Service(settings) as svc:
        c = svc.client
        # The admin API key the Service client sends is not the webhook token.
        assert c.post("/api/events/s3", content=body).status_code == 401
        assert c.post(
            "/api/events/s3", content=body, headers={"Authorization": ""}
        ).status_code in (401,)
        wrong = {"Authorization": "Bearer " + "x" * 43}
        assert c.post("/api/events/s3", content=body, headers=wrong).status_code == 401
        # MinIO sends "Bearer <token>"; a store that sends the bare token is accepted too.
        bare = {"Authorization": token}
        assert c.post("/api/events/s3", content=body, headers=bare).json() == {"accepted": 1}
        bearer = {"Authorization": f"Bearer {token}"}
        assert c.post("/api/events/s3", content=b"{nope", headers=bearer).status_code == 422
        bad = json.dumps({"Records": [{"eventName": "s3:ObjectCreated:Put"}]}).encode()
        assert c.post("/api/events/s3", content=bad, headers=bearer).status_code == 422
        test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}).encode()
        assert c.post("/api/events/s3", content=test_event, headers=bearer).json() == {
            "accepted": 0
        }
        assert c.head("/api/events/s3").status_code == 200


def test_records_without_a_sequencer_get_a_stable_identity(
    settings: Settings, nats: NatsServer
) -> None:
    token = load_or_create_webhook_token(settings)
    bearer = {"Authorization": f"Bearer {token}"}
    put = _event(7).to_record()
    put["s3"]["object"].pop("sequencer")
    again = json.loads(json.dumps(put))  # the same write, delivered twice
    newer = json.loads(json.dumps(put))
    newer["eventTime"] = "2026-11-30T06:00:00.000Z"  # a second write of the same key
    newer["s3"]["object"]["eTag"] = "f" * 32
    removed = _event(7, OBJECT_REMOVED_DELETE).to_record()
    body = json.dumps({"Records": [put, again, newer, removed]}).encode()
    with Service(settings) as svc:
        assert svc.client.post("/api/events/s3", content=body, headers=bearer).json() == {
            "accepted": 4
        }
        wait_for(lambda: len(_stream(settings)) >= 3, 20, "3 events")
        wait_for(lambda: svc.runtime.outbox.count() == 0, 20, "the outbox to drain")
        got = _stream(settings)
    assert [(e.event_name, e.etag) for e in got] == [
        (OBJECT_CREATED_PUT, put["s3"]["object"]["eTag"]),
        (OBJECT_CREATED_PUT, "f" * 32),
        (OBJECT_REMOVED_DELETE, ""),
    ]


def test_configured_token_wins_and_must_be_long(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEWIRE_WEBHOOK_TOKEN", "t" * 32)
    configured = Settings(data_dir=settings.data_dir)  # read from the environment, as started
    assert load_or_create_webhook_token(configured) == "t" * 32
    assert not token_file(configured).exists()
    monkeypatch.setenv("LAKEWIRE_WEBHOOK_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 24"):
        load_or_create_webhook_token(Settings(data_dir=settings.data_dir))
