"""What the bucket list shows: statistics, encryption, versioning and notification status.

Statistics come from the object index, never from listing a bucket per request: on the local
backend the directory watcher keeps the index in step with every write (it is the event path);
on S3 the service's own writes update it and a periodic listing re-counts what other writers
did. Bucket properties cost a round trip each on S3, so they are cached briefly and dropped
whenever the service changes them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.objectstore import BucketExists, Encryption, ObjectStore
from lakehouse.settings import Settings
from storage_service.events import BucketEvent
from storage_service.index import IndexedObject, ObjectIndex
from storage_service.notifications import (
    BucketNotifications,
    NotificationRule,
    NotificationStore,
)

log = logging.getLogger(__name__)

PROPERTY_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class BucketProperties:
    encryption: Encryption
    versioning: str
    notifications: dict[str, Any]


def rules_to_queues(config: BucketNotifications, arn: str) -> list[dict[str, Any]]:
    """Our rules as S3 ``QueueConfigurations`` for one target ARN (what ``mc event add`` does)."""
    queues = []
    for i, rule in enumerate(config.rules):
        queue: dict[str, Any] = {"Id": f"lakewire-{i}", "QueueArn": arn, "Events": rule.events}
        filters = [
            {"Name": name, "Value": value}
            for name, value in (("prefix", rule.prefix), ("suffix", rule.suffix))
            if value
        ]
        if filters:
            queue["Filter"] = {"Key": {"FilterRules": filters}}
        queues.append(queue)
    return queues


def queues_to_rules(queues: list[dict[str, Any]], arn: str) -> BucketNotifications:
    rules = []
    for queue in queues:
        if queue.get("QueueArn") != arn:
            continue
        filters = {
            f["Name"].lower(): f["Value"]
            for f in queue.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        }
        rules.append(
            NotificationRule(
                events=list(queue["Events"]),
                prefix=filters.get("prefix", ""),
                suffix=filters.get("suffix", ""),
            )
        )
    return BucketNotifications(rules=rules)


class BucketCatalog:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        index: ObjectIndex,
        notifications: NotificationStore,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.notifications = notifications
        self._props: dict[str, tuple[float, BucketProperties]] = {}
        self._counted: set[str] = set()
        self._lock = threading.Lock()

    # -- properties ------------------------------------------------------------------------------
    def properties(self, bucket: str) -> BucketProperties:
        with self._lock:
            cached = self._props.get(bucket)
        if cached and time.monotonic() - cached[0] < PROPERTY_TTL_SECONDS:
            return cached[1]
        props = BucketProperties(
            self.store.encryption(bucket),
            self.store.versioning(bucket),
            self._notifications_summary(bucket),
        )
        with self._lock:
            self._props[bucket] = (time.monotonic(), props)
        return props

    def forget(self, bucket: str) -> None:
        """Drop cached properties after we changed them."""
        with self._lock:
            self._props.pop(bucket, None)

    def created(self, bucket: str) -> None:
        """A bucket we just created is empty: its stats are complete without a listing."""
        with self._lock:
            self._props.pop(bucket, None)
            self._counted.add(bucket)

    def dropped(self, bucket: str) -> None:
        with self._lock:
            self._props.pop(bucket, None)
            self._counted.discard(bucket)

    def bucket_deleted(self, bucket: str) -> None:
        """Forget a deleted bucket. Without native events the watcher still has to announce
        its removals under its rules, and drops rules and index rows itself once it has."""
        self.dropped(bucket)
        if self.store.native_events:
            self.notifications.drop(bucket)
            self.index.drop_bucket(bucket)

    # -- notifications ---------------------------------------------------------------------------
    def notification_config(self, bucket: str) -> BucketNotifications:
        if self.store.native_events:
            arn = self.settings.s3_notification_arn
            return queues_to_rules(self.store.get_notification_queues(bucket), arn)
        return self.notifications.get(bucket)

    def set_notification_config(self, bucket: str, config: BucketNotifications) -> None:
        """A backend with native events must accept the rules first: a rejection changes
        nothing."""
        if self.store.native_events:
            arn = self.settings.s3_notification_arn
            self.store.put_notification_queues(bucket, rules_to_queues(config, arn))
        self.notifications.set(bucket, config)
        self.forget(bucket)

    # -- statistics ------------------------------------------------------------------------------
    def count_s3_bucket(self, bucket: str) -> None:
        """Re-count one S3 bucket from a listing into the index (the slow, exact path)."""
        rows = [
            (o.key, IndexedObject(o.size, int(o.last_modified.timestamp() * 1e9), o.etag))
            for o in self.store.iter_objects(bucket)
        ]
        self.index.replace_bucket(bucket, rows)
        with self._lock:
            self._counted.add(bucket)

    def record_write(self, bucket: str, key: str, size: int, etag: str) -> None:
        """The service's own write updates the stats at once, without a listing (locally the
        watcher is told through ``announce_write`` instead)."""
        if self.store.native_events:
            obj = IndexedObject(size, time.time_ns(), etag)
            self.index.apply([(bucket, key, obj)], [])

    def record_delete(self, bucket: str, key: str) -> None:
        if self.store.native_events:
            self.index.apply([], [(bucket, key)])

    def apply_events(self, events: list[BucketEvent]) -> None:
        """S3 only: MinIO's own notifications (any writer, not just us) keep the stats current.

        Locally the watcher owns the index (it compares file mtimes with it), so never there.
        """
        if not self.store.native_events:
            return
        upserts = [
            (e.bucket, e.key, IndexedObject(e.size, int(e.event_time.timestamp() * 1e9), e.etag))
            for e in events
            if e.is_created
        ]
        deletes = [(e.bucket, e.key) for e in events if e.is_removed]
        self.index.apply(upserts, deletes)

    def describe(self, bucket: str, created: datetime | None = None) -> dict[str, Any]:
        counted = True
        if self.store.native_events:
            with self._lock:
                counted = bucket in self._counted
        stats = self.index.stats(bucket)
        props = self.properties(bucket)
        last = (
            datetime.fromtimestamp(stats.last_modified_ns / 1e9, tz=UTC).isoformat()
            if stats.last_modified_ns
            else None
        )
        return {
            "name": bucket,
            "objects": stats.objects,
            "size": stats.size,
            "last_updated": last,
            "created": created.isoformat() if created else None,
            "encryption": {
                "enabled": props.encryption.enabled,
                "algorithm": props.encryption.algorithm,
                "supported": props.encryption.supported,
            },
            "versioning": props.versioning,
            "notifications": props.notifications,
            # S3 only: False until the background count has listed this bucket once.
            "stats_complete": counted,
        }

    def _notifications_summary(self, bucket: str) -> dict[str, Any]:
        try:
            rules = self.notification_config(bucket).rules
        except Exception as exc:  # a backend that cannot tell is reported, not fatal
            return {"enabled": None, "rules": 0, "error": str(exc)}
        return {"enabled": bool(rules), "rules": len(rules)}

    def ensure_default_buckets(self) -> None:
        """``lakewire up`` creates the common buckets; on S3 landing gets its NATS rule too."""
        for name in self.settings.default_buckets:
            created = False
            with contextlib.suppress(BucketExists):
                if not self.store.bucket_exists(name):
                    self.store.create_bucket(name)
                    created = True
            if created and self.store.native_events:
                default = self.notifications.defaults.get(name)
                if default is not None:
                    try:
                        self.set_notification_config(name, default)
                    except Exception as exc:
                        log.warning("could not apply notification rules to %s: %s", name, exc)

    def refresh_s3_stats(self) -> None:
        for bucket in self.store.list_buckets():
            try:
                self.count_s3_bucket(bucket.name)
            except Exception as exc:
                log.warning("could not count bucket %s: %s", bucket.name, exc)
