"""Bucket notification configuration: the model of ``mc event add`` (events, prefix, suffix).

Kept in a JSON file under the service state on the local backend; on MinIO the same rules are
applied with PutBucketNotificationConfiguration to the NATS target ARN.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

MINIO_NATS_ARN = "arn:minio:sqs::_:nats"
KNOWN_EVENTS = (
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectTransition:*",
    "s3:ObjectTransition:Complete",
)


class NotificationRule(BaseModel):
    events: list[str] = Field(default_factory=lambda: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])
    prefix: str = ""
    suffix: str = ""

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in KNOWN_EVENTS]
        if unknown or not value:
            raise ValueError(f"unknown event types {unknown}; use one of {list(KNOWN_EVENTS)}")
        return value

    def matches(self, event_name: str, key: str) -> bool:
        return (
            key.startswith(self.prefix)
            and key.endswith(self.suffix)
            and any(fnmatch.fnmatchcase(event_name, pattern) for pattern in self.events)
        )


class BucketNotifications(BaseModel):
    rules: list[NotificationRule] = Field(default_factory=list)

    def wants(self, event_name: str, key: str) -> bool:
        return any(rule.matches(event_name, key) for rule in self.rules)


class NotificationStore:
    """Per-bucket rules; a bucket with no entry gets the defaults (landing: everything)."""

    def __init__(self, path: Path, defaults: dict[str, BucketNotifications]) -> None:
        self.path = path
        self.defaults = defaults
        self._lock = threading.Lock()
        self._data: dict[str, BucketNotifications] = {}
        if path.exists():
            raw = json.loads(path.read_text())
            self._data = {k: BucketNotifications.model_validate(v) for k, v in raw.items()}

    def get(self, bucket: str) -> BucketNotifications:
        with self._lock:
            return self._data.get(bucket) or self.defaults.get(bucket) or BucketNotifications()

    def set(self, bucket: str, config: BucketNotifications) -> None:
        with self._lock:
            self._data[bucket] = config
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({k: v.model_dump() for k, v in self._data.items()}))
            tmp.replace(self.path)

    def configured(self) -> list[str]:
        with self._lock:
            return list(self._data)

    def drop(self, bucket: str) -> None:
        with self._lock:
            if self._data.pop(bucket, None) is not None:
                self.path.write_text(json.dumps({k: v.model_dump() for k, v in self._data.items()}))


def default_notifications(landing_bucket: str) -> dict[str, BucketNotifications]:
    return {landing_bucket: BucketNotifications(rules=[NotificationRule()])}
