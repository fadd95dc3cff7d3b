"""Bucket notification events in MinIO's exact message format.

Both ways to run emit this format (MinIO natively on the platform, the directory watcher on the
embedded default), so the consumer side has one parser. MinIO escapes record keys with Go's
``url.QueryEscape`` (space -> ``+``, ``/`` -> ``%2F``); ``quote_plus(safe="")`` is the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

OBJECT_CREATED_PUT = "s3:ObjectCreated:Put"
OBJECT_CREATED_COPY = "s3:ObjectCreated:Copy"
OBJECT_CREATED_MULTIPART = "s3:ObjectCreated:CompleteMultipartUpload"
OBJECT_REMOVED_DELETE = "s3:ObjectRemoved:Delete"
OBJECT_TRANSITION_COMPLETE = "s3:ObjectTransition:Complete"
LIFECYCLE_EXPIRATION_DELETE = "s3:LifecycleExpiration:Delete"
LIFECYCLE_USER_AGENT = "lakewire-lifecycle"
ILM_EXPIRY_USER_AGENT = "Internal: [ILM-Expiry]"
_LIFECYCLE_EVENT_PREFIXES = (
    "s3:LifecycleExpiration:",
    "s3:LifecycleTransition",
    "s3:ObjectTransition:",
)
_LIFECYCLE_AGENT_PREFIXES = ("Internal: [ILM-", LIFECYCLE_USER_AGENT)
# The API names an upload's caller in the object's user metadata: on S3 the notification's
# userIdentity is the storage service's own credential, never the caller.
PRINCIPAL_METADATA = "lakewire-principal"
_PRINCIPAL_NAMES = (PRINCIPAL_METADATA, f"x-amz-meta-{PRINCIPAL_METADATA}")


def is_lifecycle(event_name: str, user_agent: str | None) -> bool:
    """Whether an event was caused by lifecycle, not by a writer: AWS's
    ``s3:LifecycleExpiration:*``/``s3:LifecycleTransition``, any transition, MinIO's removals
    whose ``source.userAgent`` is ``Internal: [ILM-…]``, and Lakewire's own lifecycle actions
    (user agent ``lakewire-lifecycle/<version>``)."""
    if event_name.startswith(_LIFECYCLE_EVENT_PREFIXES):
        return True
    return bool(user_agent) and str(user_agent).startswith(_LIFECYCLE_AGENT_PREFIXES)


@dataclass(frozen=True)
class BucketEvent:
    """One record, decoded: what a consumer needs to act on it exactly once."""

    event_name: str
    bucket: str
    key: str
    size: int
    etag: str
    sequencer: str
    event_time: datetime
    version_id: str | None = None
    content_type: str | None = None
    user_agent: str | None = None
    stream_seq: int | None = None
    principal: str | None = None  # who wrote (a tenant id, "admin"); None: the service itself

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("s3:ObjectCreated:")

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith("s3:ObjectRemoved:")

    @property
    def is_lifecycle(self) -> bool:
        """Lifecycle-originated (expiry, transition): ingestion ignores it."""
        return is_lifecycle(self.event_name, self.user_agent)

    @property
    def msg_id(self) -> str:
        """``Nats-Msg-Id``: identical for a republish of the same change, so JetStream drops it."""
        return f"{self.bucket}/{self.key}/{self.sequencer}/{self.event_name}"

    @property
    def uri(self) -> str:
        return f"{self.bucket}/{self.key}"

    def to_record(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "key": quote_plus(self.key, safe=""),
            "sequencer": self.sequencer,
        }
        if self.is_created:
            obj.update(
                size=self.size,
                eTag=self.etag,
                contentType=self.content_type or "application/octet-stream",
                userMetadata={"content-type": self.content_type or "application/octet-stream"},
            )
        if self.version_id:
            obj["versionId"] = self.version_id
        return {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": self.event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "Z",
            "eventName": self.event_name,
            "userIdentity": {"principalId": self.principal or "lakewire"},
            "requestParameters": {
                "principalId": self.principal or "lakewire",
                "region": "",
                "sourceIPAddress": "",
            },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": self.bucket,
                    "ownerIdentity": {"principalId": "lakewire"},
                    "arn": f"arn:aws:s3:::{self.bucket}",
                },
                "object": obj,
            },
            "source": {"host": "", "port": "", "userAgent": self.user_agent or "lakewire"},
        }

    def to_message(self) -> bytes:
        body = {
            "EventName": self.event_name,
            "Key": f"{self.bucket}/{self.key}",
            "Records": [self.to_record()],
        }
        return json.dumps(body, separators=(",", ":")).encode()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ilm_principal(rec: dict[str, Any]) -> str | None:
    """MinIO also names the ILM actor as ``userIdentity.principalId`` on some versions."""
    principal = (rec.get("userIdentity") or {}).get("principalId")
    return (
        principal
        if isinstance(principal, str) and principal.startswith("Internal: [ILM-")
        else None
    )


def _writer(rec: dict[str, Any], obj: dict[str, Any]) -> str | None:
    """Who wrote the object: the API caller its user metadata names (MinIO repeats an object's
    user metadata in the record, as ``X-Amz-Meta-Lakewire-Principal``), else the record's
    ``userIdentity`` (the store's idea of the writer: its access key)."""
    meta = obj.get("userMetadata")
    if isinstance(meta, dict):
        for name, value in meta.items():
            if str(name).lower() in _PRINCIPAL_NAMES and isinstance(value, str) and value:
                return value
    principal = (rec.get("userIdentity") or {}).get("principalId")
    return principal if isinstance(principal, str) else None


def parse_message(data: bytes, stream_seq: int | None = None) -> list[BucketEvent]:
    """Decode a MinIO/AWS notification body; raises ``ValueError`` on anything malformed."""
    try:
        body = json.loads(data)
        records = body["Records"]
        out = []
        for rec in records:
            s3 = rec["s3"]
            obj = s3["object"]
            out.append(
                BucketEvent(
                    event_name=rec["eventName"]
                    if rec["eventName"].startswith("s3:")
                    else "s3:" + rec["eventName"],
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    size=int(obj.get("size") or 0),
                    etag=str(obj.get("eTag") or "").strip('"'),
                    sequencer=str(obj.get("sequencer") or ""),
                    event_time=_parse_time(rec["eventTime"]),
                    version_id=obj.get("versionId"),
                    content_type=obj.get("contentType"),
                    user_agent=(rec.get("source") or {}).get("userAgent") or _ilm_principal(rec),
                    stream_seq=stream_seq,
                    principal=_writer(rec, obj),
                )
            )
        return out
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a bucket notification: {exc}") from exc


def with_identity(event: BucketEvent) -> BucketEvent:
    """A record without a sequencer (some stores omit it) still gets a stable identity.

    The message id must differ between two writes of one key and repeat for a redelivery of
    the same write: event time, etag and version together do that.
    """
    if event.sequencer:
        return event
    ident = f"{event.event_time.isoformat()}|{event.etag}|{event.version_id or ''}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16].upper()
    return replace(event, sequencer=digest)


def sequencer_for(mtime_ns: int) -> str:
    """MinIO's sequencer is the event's nanosecond time in upper-case hex; so is ours."""
    return f"{mtime_ns:016X}"
