"""Bucket events from the service, read back from a real nats-server's JetStream stream."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from lakehouse.settings import Settings
from storage_service.events import (
    OBJECT_CREATED_COPY,
    OBJECT_CREATED_PUT,
    OBJECT_REMOVED_DELETE,
    BucketEvent,
)
from storage_service.stream import read_after_sync
from tests.helpers import NatsServer, Service, local_settings, wait_for

ALL_EVENTS = {"rules": [{"events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]}


def _events(settings: Settings) -> list[BucketEvent]:
    return read_after_sync(settings, 0, 100_000, 10).events


def _await_events(settings: Settings, n: int, timeout: float = 20) -> list[BucketEvent]:
    def enough() -> list[BucketEvent] | None:
        events = _events(settings)
        return events if len(events) >= n else None

    return wait_for(enough, timeout=timeout, what=f"{n} events in the stream")


def test_api_write_and_delete_each_emit_exactly_one_event(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        body = b"id,amount\n1,2.5\n"
        resp = svc.client.put("/api/buckets/landing/objects/orders/day 1.csv", content=body)
        etag = resp.json()["etag"]
        assert etag == hashlib.md5(body).hexdigest()
        [created] = _await_events(settings, 1)
        assert created.event_name == OBJECT_CREATED_PUT
        assert (created.bucket, created.key) == ("landing", "orders/day 1.csv")
        assert (created.size, created.etag) == (len(body), etag)
        # The API reports the same etag the event carried.
        listed = svc.client.get("/api/buckets/landing/objects?prefix=orders/").json()
        assert listed["objects"][0]["etag"] == etag

        assert svc.client.delete("/api/buckets/landing/objects/orders/day 1.csv").status_code == 204
        events = _await_events(settings, 2)
        assert [e.event_name for e in events] == [OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE]


def test_large_api_upload_is_one_event_with_the_whole_md5(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats, upload_part_bytes=1024**2)
    body = bytes(range(256)) * (5 * 4096 + 7)  # ~5 MiB, several parts
    with Service(settings) as svc:
        resp = svc.client.put("/api/buckets/landing/objects/big/blob.bin", content=body)
        assert resp.status_code == 201
        # A later marker proves the watcher is past the big file: nothing more will come for it.
        svc.client.put("/api/buckets/landing/objects/big/zz-marker.txt", content=b"m")
        events = _await_events(settings, 2)
        assert [(e.key, e.etag) for e in events if e.key == "big/blob.bin"] == [
            ("big/blob.bin", hashlib.md5(body).hexdigest())
        ]
        assert len(events) == 2


def test_nats_down_during_100_writes_every_event_arrives_once(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        nats.stop()
        for i in range(100):
            resp = svc.client.put(f"/api/buckets/landing/objects/outage/f{i:03d}.csv", content=b"x")
            assert resp.status_code == 201
        # Every event is on disk in the outbox while NATS is away.
        wait_for(lambda: svc.runtime.outbox.count() == 100, 20, "100 events in the outbox")
        nats.start()
        events = _await_events(settings, 100, timeout=30)
        wait_for(lambda: svc.runtime.outbox.count() == 0, 20, "the outbox to drain")
        events = _events(settings)
        counts = Counter(e.key for e in events)
        assert len(events) == 100
        assert sorted(counts) == [f"outage/f{i:03d}.csv" for i in range(100)]
        assert set(counts.values()) == {1}


def test_outbox_republish_is_deduplicated_by_msg_id(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        svc.client.put("/api/buckets/landing/objects/dedupe.csv", content=b"1")
        [event] = _await_events(settings, 1)
        # A crash between publish and outbox delete republishes the same message.
        svc.runtime.outbox.add(settings, [event])
        wait_for(lambda: svc.runtime.outbox.count() == 0, 20, "the republish")
        svc.client.put("/api/buckets/landing/objects/zz-after.csv", content=b"2")
        events = _await_events(settings, 2)
        assert [e.key for e in events] == ["dedupe.csv", "zz-after.csv"]


def test_changes_made_while_the_service_was_down_are_emitted_at_start(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        svc.client.put("/api/buckets/landing/objects/kept.csv", content=b"a")
        svc.client.put("/api/buckets/landing/objects/removed.csv", content=b"b")
        _await_events(settings, 2)
    folder = settings.storage_root / "landing"
    (folder / "removed.csv").unlink()
    (folder / "offline").mkdir()
    (folder / "offline" / "new.csv").write_bytes(b"written by cp while down")
    with Service(settings):
        events = _await_events(settings, 4)
        later = {(e.event_name, e.key) for e in events[2:]}
        assert later == {
            (OBJECT_REMOVED_DELETE, "removed.csv"),
            (OBJECT_CREATED_PUT, "offline/new.csv"),
        }


def test_rename_announces_copies_and_removals(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        c = svc.client
        c.post("/api/buckets", json={"name": "ev-src"})
        assert c.put("/api/buckets/ev-src/notifications", json=ALL_EVENTS).status_code == 200
        for i in range(3):
            c.put(f"/api/buckets/ev-src/objects/k{i}.csv", content=b"v" * (i + 1))
        _await_events(settings, 3)
        resp = c.post("/api/buckets/ev-src/rename?wait=true", json={"new_name": "ev-dst"})
        assert resp.status_code == 200, resp.text
        events = _await_events(settings, 9)
        after = Counter((e.event_name, e.bucket) for e in events[3:])
        assert after == {(OBJECT_CREATED_COPY, "ev-dst"): 3, (OBJECT_REMOVED_DELETE, "ev-src"): 3}
        assert c.get("/api/buckets/ev-dst/notifications").json()["rules"] == [
            {"events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "prefix": "", "suffix": ""}
        ]


def test_notification_rules_filter_events(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats)
    rules = {
        "rules": [
            {"events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": ".csv"},
            {"events": ["s3:ObjectRemoved:Delete"], "prefix": "out/"},
        ]
    }
    with Service(settings) as svc:
        c = svc.client
        assert c.put("/api/buckets/results/notifications", json=rules).status_code == 200
        for key in ("in/a.csv", "in/b.txt", "out/c.csv", "other/d.csv"):
            c.put(f"/api/buckets/results/objects/{key}", content=b"1")
        # A file deleted before it settled was never announced, so let them settle first.
        wait_for(lambda: svc.runtime.index.stats("results").objects == 4, 10, "4 settled")
        c.delete("/api/buckets/results/objects/in/a.csv")  # removals only under out/
        c.delete("/api/buckets/results/objects/out/c.csv")
        c.put("/api/buckets/results/objects/in/zz-marker.csv", content=b"m")
        events = _await_events(settings, 3)
        wait_for(lambda: svc.runtime.outbox.count() == 0, 10, "outbox drained")
        events = _events(settings)
        assert [(e.event_name, e.key) for e in events] == [
            (OBJECT_CREATED_PUT, "in/a.csv"),
            (OBJECT_REMOVED_DELETE, "out/c.csv"),
            (OBJECT_CREATED_PUT, "in/zz-marker.csv"),
        ]
        # Buckets without rules (datasets) emit nothing at all.
        c.put("/api/buckets/datasets/objects/x.csv", content=b"1")
        c.put("/api/buckets/results/objects/in/zz-marker2.csv", content=b"m")
        _await_events(settings, 4)
        assert [e.bucket for e in _events(settings)] == ["results"] * 4


def test_deleting_a_bucket_announces_each_removal_then_forgets_its_rules(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        c = svc.client
        c.post("/api/buckets", json={"name": "gone-soon"})
        c.put("/api/buckets/gone-soon/notifications", json=ALL_EVENTS)
        for i in range(4):
            c.put(f"/api/buckets/gone-soon/objects/d/{i}.csv", content=b"1")
        _await_events(settings, 4)
        assert c.delete("/api/buckets/gone-soon?confirm=gone-soon").status_code == 204
        events = _await_events(settings, 8)
        assert Counter(e.event_name for e in events[4:]) == {OBJECT_REMOVED_DELETE: 4}
        wait_for(lambda: "gone-soon" not in svc.runtime.notifications.configured(), 10, "drop")
        # A new bucket of the same name starts with no rules, as on MinIO.
        c.post("/api/buckets", json={"name": "gone-soon"})
        assert c.get("/api/buckets/gone-soon/notifications").json()["rules"] == []
