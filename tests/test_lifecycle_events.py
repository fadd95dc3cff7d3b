"""Lifecycle-originated events never reach ingestion (DECISIONS, events and lifecycle).

A MinIO ILM expiry is an ordinary ``s3:ObjectRemoved:Delete`` whose ``source.userAgent`` is
``Internal: [ILM-Expiry]``; AWS names its own (``s3:LifecycleExpiration:*``,
``s3:LifecycleTransition``); Lakewire's lifecycle announces itself with its user agent.
"""

from __future__ import annotations

import json
from typing import Any

from lakehouse.routes import parse_routes
from lakehouse.settings import Settings
from pipelines.batches import pending_by_table
from storage_service.events import (
    ILM_EXPIRY_USER_AGENT,
    OBJECT_REMOVED_DELETE,
    OBJECT_TRANSITION_COMPLETE,
    BucketEvent,
    parse_message,
)

ROUTES = parse_routes(
    """
routes:
  - name: orders
    bucket: landing
    glob: "orders/*.csv"
    table: sales.orders
    on_delete: delete_rows
"""
)

# As MinIO sends an ILM expiry to its NATS target (keys URL-escaped, source.userAgent set).
MINIO_ILM_EXPIRY: dict[str, Any] = {
    "EventName": "s3:ObjectRemoved:Delete",
    "Key": "landing/orders/a.csv",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-11-30T05:00:00.000Z",
            "eventName": "s3:ObjectRemoved:Delete",
            "userIdentity": {"principalId": ""},
            "requestParameters": {"principalId": "", "region": "", "sourceIPAddress": ""},
            "responseElements": {
                "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
                "x-amz-request-id": "",
                "x-minio-deployment-id": "2b2d0d6c-8a4e-4a0f-9a6f-4f6d6f1f1f1f",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "landing",
                    "ownerIdentity": {"principalId": ""},
                    "arn": "arn:aws:s3:::landing",
                },
                "object": {"key": "orders%2Fa.csv", "sequencer": "187C8A3F0E2B1D40"},
            },
            "source": {"host": "", "port": "", "userAgent": "Internal: [ILM-Expiry]"},
        }
    ],
}

# As AWS S3 sends a lifecycle expiry (eventName without the s3: prefix, no source block).
AWS_LIFECYCLE_EXPIRY: dict[str, Any] = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-30T05:00:00.000Z",
            "eventName": "LifecycleExpiration:Delete",
            "userIdentity": {"principalId": "s3.amazonaws.com"},
            "requestParameters": {"sourceIPAddress": "s3.amazonaws.com"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "x"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "expiry",
                "bucket": {
                    "name": "landing",
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": "arn:aws:s3:::landing",
                },
                "object": {"key": "orders/b.csv", "sequencer": "0055AED6DCD90281E5"},
            },
        }
    ]
}


def _user_delete(key: str, seq: int) -> BucketEvent:
    return parse_message(
        BucketEvent(
            OBJECT_REMOVED_DELETE, "landing", key, 0, "", f"{seq:016X}", _now(), None
        ).to_message(),
        stream_seq=seq,
    )[0]


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 30, tzinfo=UTC)


def test_minio_ilm_expiry_record_is_lifecycle_and_ingestion_ignores_it() -> None:
    (ev,) = parse_message(json.dumps(MINIO_ILM_EXPIRY).encode(), stream_seq=1)
    assert ev.is_removed and ev.key == "orders/a.csv"
    assert ev.user_agent == ILM_EXPIRY_USER_AGENT and ev.is_lifecycle
    # a user delete of another object on the same delete_rows route still removes rows
    user = _user_delete("orders/c.csv", 2)
    assert not user.is_lifecycle
    pending = pending_by_table(Settings(), ROUTES, [ev, user])
    items = pending[("orders", "delta.sales.orders")]
    assert [(a, e.key) for a, e in items] == [("remove", "orders/c.csv")]


def test_minio_ilm_principal_without_user_agent_is_lifecycle() -> None:
    body = json.loads(json.dumps(MINIO_ILM_EXPIRY))
    rec = body["Records"][0]
    rec["source"] = {}
    rec["userIdentity"] = {"principalId": "Internal: [ILM-Transition]"}
    (ev,) = parse_message(json.dumps(body).encode())
    assert ev.is_lifecycle


def test_aws_lifecycle_expiration_and_transition_are_ignored() -> None:
    (expiry,) = parse_message(json.dumps(AWS_LIFECYCLE_EXPIRY).encode(), stream_seq=1)
    assert expiry.event_name == "s3:LifecycleExpiration:Delete" and expiry.is_lifecycle
    body = json.loads(json.dumps(AWS_LIFECYCLE_EXPIRY))
    body["Records"][0]["eventName"] = "LifecycleTransition"
    (transition,) = parse_message(json.dumps(body).encode(), stream_seq=2)
    assert transition.is_lifecycle
    assert pending_by_table(Settings(), ROUTES, [expiry, transition]) == {}


def test_lakewire_lifecycle_actions_are_ignored() -> None:
    moved = BucketEvent(
        OBJECT_TRANSITION_COMPLETE, "landing", "orders/d.csv", 3, "e", "01", _now(), None
    )
    expired = BucketEvent(
        OBJECT_REMOVED_DELETE,
        "landing",
        "orders/e.csv",
        0,
        "",
        "02",
        _now(),
        user_agent=ILM_EXPIRY_USER_AGENT,
    )
    copied_by_lakewire = BucketEvent(
        "s3:ObjectCreated:Copy",
        "landing",
        "orders/f.csv",
        3,
        "e",
        "03",
        _now(),
        user_agent="lakewire-lifecycle/0.1",
    )
    events = [
        parse_message(e.to_message(), i)[0]
        for i, e in enumerate([moved, expired, copied_by_lakewire])
    ]
    assert all(e.is_lifecycle for e in events)
    assert pending_by_table(Settings(), ROUTES, events) == {}
