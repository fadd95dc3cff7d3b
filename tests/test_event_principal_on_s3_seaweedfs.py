"""On S3 the bucket notification names the store's writer (the storage service's credential),
so the API records its caller as object user metadata and the event parser prefers it.

The upload runs against SeaweedFS (a real S3 server: the point is what the store keeps). No
server here sends MinIO's notifications, so the record is built the way MinIO builds it: the
object's user metadata, under its canonical header names, in ``s3.object.userMetadata``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from storage_service.events import parse_message
from tests.helpers import NatsServer, Service, s3_settings
from tests.s3servers import SeaweedFS

pytestmark = pytest.mark.s3


def minio_record(bucket: str, key: str, head: Mapping[str, Any], writer: str) -> bytes:
    """A MinIO notification body for this object, as its NATS target publishes it."""
    meta = {f"X-Amz-Meta-{k.title()}": v for k, v in head["Metadata"].items()}
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventTime": "2026-11-30T10:00:00.000Z",
        "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": writer},
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "eTag": head["ETag"].strip('"'),
                "contentType": head.get("ContentType"),
                "userMetadata": {"content-type": head.get("ContentType"), **meta},
                "sequencer": "1877B0E5C2A4D1F0",
            },
        },
        "source": {"host": "", "port": "", "userAgent": "obstore"},
    }
    body = {"EventName": record["eventName"], "Key": f"{bucket}/{key}", "Records": [record]}
    return json.dumps(body).encode()


def test_an_api_upload_names_its_caller_in_the_object_and_the_event(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    with Service(s3_settings(tmp_path, nats, seaweed_s3)) as svc:
        c = svc.client
        key = c.post("/api/tenants", json={"id": "acme"}).json()["key"]
        put = c.put(
            "/api/buckets/landing/objects/acme/orders/a.csv",
            content=b"id\n1\n",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
        )
        assert put.status_code == 201, put.text
        assert (
            c.put("/api/buckets/landing/objects/orders/b.csv", content=b"id\n2\n").status_code
            == 201
        )
    s3 = seaweed_s3.client()
    head = s3.head_object(Bucket="landing", Key="acme/orders/a.csv")
    assert head["Metadata"] == {"lakewire-principal": "acme"}  # x-amz-meta-lakewire-principal
    assert head["ContentType"] == "text/csv"
    admin_head = s3.head_object(Bucket="landing", Key="orders/b.csv")
    assert admin_head["Metadata"] == {"lakewire-principal": "admin"}

    service_key = seaweed_s3.access_key  # what the store itself names as the writer
    (event,) = parse_message(minio_record("landing", "acme%2Forders%2Fa.csv", head, service_key))
    assert event.principal == "acme"
    assert event.to_record()["userIdentity"] == {"principalId": "acme"}  # republished as such
    (event,) = parse_message(minio_record("landing", "orders%2Fb.csv", admin_head, service_key))
    assert event.principal == "admin"


def test_without_the_metadata_the_stores_identity_stands(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    """A writer that bypasses the API (a MinIO client with its own credentials) is named by
    the store, as before."""
    s3 = seaweed_s3.client()
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="direct.csv", Body=b"id\n1\n")
    head = s3.head_object(Bucket="landing", Key="direct.csv")
    (event,) = parse_message(minio_record("landing", "direct.csv", head, "LWDIRECTUSER"))
    assert event.principal == "LWDIRECTUSER"
