"""The Object Storage HTTP API on both backends: a local folder and S3 on a real S3 server
(SeaweedFS). Bucket notification configuration, which SeaweedFS does not implement, is checked
on moto's server mode (``on_s3_moto``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lakehouse.settings import Settings
from tests.helpers import (
    API_KEY,
    NatsServer,
    Service,
    free_port,
    local_settings,
    s3_settings,
    wait_for,
)
from tests.s3servers import MotoServer, SeaweedFS


def _stats(svc: Service, bucket: str) -> dict[str, Any]:
    return next(b for b in svc.client.get("/api/buckets").json() if b["name"] == bucket)


def _await_stats(svc: Service, bucket: str, objects: int) -> dict[str, Any]:
    # Local stats follow the directory watcher (the event path); S3 stats follow our writes.
    return wait_for(
        lambda: (s := _stats(svc, bucket))["objects"] == objects and s,
        timeout=10,
        what=f"{bucket} to count {objects} objects",
    )


# -- authentication -----------------------------------------------------------------------------
def test_missing_or_wrong_key_gets_401_and_changes_nothing(service: Service) -> None:
    raw = TestClient(service.client.app)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        assert raw.get("/api/buckets", headers=headers).status_code == 401
        assert raw.post("/api/buckets", json={"name": "sneaky"}, headers=headers).status_code == 401
        resp = raw.put("/api/buckets/landing/objects/x.csv", content=b"1", headers=headers)
        assert resp.status_code == 401
        resp = raw.delete("/api/buckets/landing?confirm=landing", headers=headers)
        assert resp.status_code == 401
    names = [b["name"] for b in service.client.get("/api/buckets").json()]
    assert "sneaky" not in names and "landing" in names
    assert service.client.head("/api/buckets/landing/objects/x.csv").status_code == 404


def test_page_is_served_without_the_key_inside(service: Service) -> None:
    html = TestClient(service.client.app).get("/").text
    assert "Object Storage" in html
    assert API_KEY not in html


# -- summary and buckets ----------------------------------------------------------------------
def test_summary_and_default_buckets(service: Service) -> None:
    summary = service.client.get("/api/summary").json()
    assert summary["status"] == "CONNECTED"
    names = {b["name"] for b in service.client.get("/api/buckets").json()}
    common = {"datasets", "co2-data", "results", "ais-data", "synthetic-data", "dagster"}
    assert common | {"landing", "lake", "models"} <= names
    assert summary["total_buckets"] == len(names)


def test_unreachable_s3_backend_reports_disconnected_on_s3_unreachable(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        storage_backend="s3",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_access_key=SecretStr("x"),
        s3_secret_key=SecretStr("y"),
        api_key=SecretStr(API_KEY),
    )
    with Service(settings) as svc:
        resp = svc.client.get("/api/summary")
        assert resp.status_code == 200
        assert resp.json()["status"] == "DISCONNECTED"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3-63 characters"),
        ("a" * 64, "3-63 characters"),
        ("Upper", "only lowercase letters, digits and hyphens"),
        ("under_score", "only lowercase letters, digits and hyphens"),
        ("-lead", "start and end"),
        ("trail-", "start and end"),
    ],
)
def test_invalid_bucket_name_is_422_naming_the_rule(service: Service, name: str, rule: str) -> None:
    resp = service.client.post("/api/buckets", json={"name": name})
    assert resp.status_code == 422
    assert rule in resp.json()["detail"]
    assert name not in [b["name"] for b in service.client.get("/api/buckets").json()]


def test_create_existing_bucket_is_409(service: Service) -> None:
    assert service.client.post("/api/buckets", json={"name": "reports"}).status_code == 201
    resp = service.client.post("/api/buckets", json={"name": "reports"})
    assert resp.status_code == 409
    assert "already exists" in resp.json()["detail"]


def test_bucket_list_shows_stats_and_properties(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "stats"})
    c.put("/api/buckets/stats/objects/a.csv", content=b"x" * 100)
    c.put("/api/buckets/stats/objects/dir/b.csv", content=b"y" * 23)
    row = _await_stats(service, "stats", 2)
    assert row["size"] == 123
    assert row["last_updated"] is not None
    assert set(row["encryption"]) == {"enabled", "algorithm", "supported"}
    if service.kind == "local":
        assert row["versioning"] == "Unsupported"
        assert row["encryption"]["supported"] is False
    else:
        assert row["versioning"] in ("Off", "Enabled", "Suspended")
    c.delete("/api/buckets/stats/objects/a.csv")
    assert _await_stats(service, "stats", 1)["size"] == 23


def test_delete_bucket_needs_matching_confirm(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "doomed"})
    c.put("/api/buckets/doomed/objects/f.txt", content=b"bye")
    assert c.delete("/api/buckets/doomed").status_code == 400
    assert c.delete("/api/buckets/doomed?confirm=other").status_code == 400
    assert c.head("/api/buckets/doomed/objects/f.txt").status_code == 200
    assert c.delete("/api/buckets/doomed?confirm=doomed").status_code == 204
    assert "doomed" not in [b["name"] for b in c.get("/api/buckets").json()]
    assert c.delete("/api/buckets/doomed?confirm=doomed").status_code == 404


# -- objects ----------------------------------------------------------------------------------
def test_put_get_head_delete_round_trip_with_md5_etag(service: Service) -> None:
    c = service.client
    body = os.urandom(50_000)
    resp = c.put(
        "/api/buckets/datasets/objects/raw/day 1/ünïcode.bin",
        content=body,
        headers={"Content-Type": "application/x-test"},
    )
    assert resp.status_code == 201
    md5 = hashlib.md5(body).hexdigest()
    assert resp.json()["etag"] == md5
    assert resp.headers["etag"] == f'"{md5}"'

    got = c.get("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin")
    assert got.status_code == 200 and got.content == body
    assert got.headers["etag"] == f'"{md5}"'
    head = c.head("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(body)
    assert head.headers["etag"] == f'"{md5}"'

    listed = c.get("/api/buckets/datasets/objects", params={"prefix": "raw/day 1/"}).json()
    assert [(o["key"], o["size"], o["etag"]) for o in listed["objects"]] == [
        ("raw/day 1/ünïcode.bin", len(body), md5)
    ]

    assert c.delete("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin").status_code == 204
    assert c.head("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin").status_code == 404
    assert c.get("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin").status_code == 404
    assert c.delete("/api/buckets/datasets/objects/raw/day 1/ünïcode.bin").status_code == 404


def test_object_in_missing_bucket_is_404(service: Service) -> None:
    c = service.client
    assert c.put("/api/buckets/nope-bucket/objects/a", content=b"1").status_code == 404
    assert c.get("/api/buckets/nope-bucket/objects/a").status_code == 404
    assert c.get("/api/buckets/nope-bucket/objects").status_code == 404


def test_range_downloads(service: Service) -> None:
    c = service.client
    body = bytes(range(256)) * 40
    c.put("/api/buckets/datasets/objects/r.bin", content=body)
    url = "/api/buckets/datasets/objects/r.bin"
    r = c.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == body[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(body)}"
    r = c.get(url, headers={"Range": "bytes=10000-"})
    assert r.status_code == 206 and r.content == body[10000:]
    r = c.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == body[-5:]
    r = c.get(url, headers={"Range": "bytes=10-99999999"})
    assert r.status_code == 206 and r.content == body[10:]
    assert c.get(url, headers={"Range": f"bytes={len(body)}-"}).status_code == 416
    # Several ranges are legal to ignore: the whole object comes back.
    r = c.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == body


def test_large_upload_streams_in_parts(make_settings: Callable[..., Settings]) -> None:
    part = 5 * 1024**2  # S3's smallest part
    with Service(make_settings(upload_part_bytes=part)) as svc:
        body = os.urandom(2 * part + 12345)

        def chunks() -> Iterator[bytes]:  # no Content-Length: a true stream
            for i in range(0, len(body), 256 * 1024):
                yield body[i : i + 256 * 1024]

        resp = svc.client.put("/api/buckets/datasets/objects/big.bin", content=chunks())
        assert resp.status_code == 201, resp.text
        assert resp.json()["size"] == len(body)
        if svc.kind == "local":
            assert resp.json()["etag"] == hashlib.md5(body).hexdigest()
        else:
            assert resp.json()["etag"].endswith("-3")  # multipart: S3's etag of 3 parts
        got = svc.client.get("/api/buckets/datasets/objects/big.bin")
        assert hashlib.md5(got.content).digest() == hashlib.md5(body).digest()


def test_upload_over_the_size_limit_is_413_and_stores_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    with Service(make_settings(max_object_bytes=1024**2)) as svc:
        c = svc.client
        resp = c.put("/api/buckets/datasets/objects/too-big.bin", content=b"x" * (1024**2 + 1))
        assert resp.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: caught while streaming
            for _ in range(20):
                yield b"y" * (128 * 1024)

        resp = c.put("/api/buckets/datasets/objects/too-big-stream.bin", content=chunks())
        assert resp.status_code == 413
        assert c.head("/api/buckets/datasets/objects/too-big.bin").status_code == 404
        assert c.head("/api/buckets/datasets/objects/too-big-stream.bin").status_code == 404
        assert c.get("/api/buckets/datasets/objects").json()["objects"] == []
        assert c.put("/api/buckets/datasets/objects/ok.bin", content=b"z" * 1024).status_code == 201


@pytest.mark.parametrize(
    ("raw_key", "rule"),
    [
        ("a/%2E%2E/b", "'..' segments"),
        ("%2E%2E/%2E%2E/etc/passwd", "'..' segments"),
        ("/etc/passwd", "must not start with '/'"),
        ("a%00b", "NUL"),
        ("k" * 1025, "at most 1024 bytes"),
    ],
)
def test_bad_keys_are_422_and_nothing_escapes(service: Service, raw_key: str, rule: str) -> None:
    c = service.client
    url = f"/api/buckets/datasets/objects/{raw_key}"
    for resp in (c.put(url, content=b"evil"), c.get(url), c.head(url), c.delete(url)):
        assert resp.status_code == 422, (resp.request.method, resp.text)
    assert rule in c.put(url, content=b"evil").json()["detail"]
    if service.kind == "local":
        root = service.settings.data_dir.resolve()
        written = [p for p in root.rglob("*") if p.is_file() and p.read_bytes() == b"evil"]
        assert written == []


def test_listing_pages_through_folders_and_objects(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "browse"})
    for i in range(25):
        c.put(f"/api/buckets/browse/objects/file-{i:03d}.txt", content=b"x")
    for folder in ("alpha", "beta"):
        for i in range(3):
            c.put(f"/api/buckets/browse/objects/{folder}/f{i}.txt", content=b"y")
    seen_objects: list[str] = []
    seen_folders: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = c.get("/api/buckets/browse/objects", params=params).json()
        pages += 1
        seen_objects += [o["key"] for o in page["objects"]]
        seen_folders += page["folders"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen_folders == ["alpha/", "beta/"]
    assert seen_objects == [f"file-{i:03d}.txt" for i in range(25)]
    inside = c.get("/api/buckets/browse/objects", params={"prefix": "alpha/"}).json()
    assert [o["key"] for o in inside["objects"]] == [f"alpha/f{i}.txt" for i in range(3)]
    assert c.get("/api/buckets/browse/objects", params={"limit": 0}).status_code == 422


# -- rename -----------------------------------------------------------------------------------
def test_rename_moves_every_object_and_verifies(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "old-name"})
    bodies = {f"d{i % 3}/obj-{i}.bin": os.urandom(1000 + i) for i in range(30)}
    for key, body in bodies.items():
        c.put(f"/api/buckets/old-name/objects/{key}", content=body)
    resp = c.post("/api/buckets/old-name/rename?wait=true", json={"new_name": "new-name"})
    assert resp.status_code == 200, resp.text
    state = resp.json()
    assert state["phase"] == "done"
    assert state["total_objects"] == 30
    assert state["total_bytes"] == sum(len(b) for b in bodies.values())
    names = [b["name"] for b in c.get("/api/buckets").json()]
    assert "old-name" not in names and "new-name" in names
    for key, body in bodies.items():
        assert c.get(f"/api/buckets/new-name/objects/{key}").content == body
    assert c.get("/api/buckets/old-name/rename").json()["phase"] == "done"
    row = _await_stats(service, "new-name", 30)
    assert row["size"] == state["total_bytes"] and row["stats_complete"]
    # A new bucket under the old name starts empty, with no leftovers in its stats.
    assert c.post("/api/buckets", json={"name": "old-name"}).status_code == 201
    assert _await_stats(service, "old-name", 0)["size"] == 0


def test_rename_errors(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "src-bucket"})
    assert c.post("/api/buckets/src-bucket/rename", json={"new_name": "Bad!"}).status_code == 422
    resp = c.post("/api/buckets/src-bucket/rename", json={"new_name": "landing"})
    assert resp.status_code == 409
    resp = c.post("/api/buckets/missing-bucket/rename", json={"new_name": "fine-name"})
    assert resp.status_code == 404
    assert "src-bucket" in [b["name"] for b in c.get("/api/buckets").json()]


def test_rename_in_background_reports_progress(service: Service) -> None:
    c = service.client
    c.post("/api/buckets", json={"name": "bg-src"})
    for i in range(20):
        c.put(f"/api/buckets/bg-src/objects/k{i}", content=b"z" * 10)
    resp = c.post("/api/buckets/bg-src/rename", json={"new_name": "bg-dst"})
    assert resp.status_code == 202
    assert resp.json()["phase"] in ("copying", "verifying", "deleting", "done")
    state = wait_for(
        lambda: (s := c.get("/api/buckets/bg-src/rename").json())["phase"] == "done" and s,
        timeout=30,
        what="rename to finish",
    )
    assert state["copied_objects"] == 20 and state["copied_bytes"] == 200


# -- presigned URLs ---------------------------------------------------------------------------
def test_presigned_get_and_put(service: Service) -> None:
    c = service.client
    c.put("/api/buckets/results/objects/out/report.csv", content=b"a,b\n1,2\n")
    get = c.post(
        "/api/buckets/results/presign", json={"key": "out/report.csv", "method": "GET"}
    ).json()
    # Local URLs are served by the service itself; S3 URLs by the store.
    anon = TestClient(c.app) if service.kind == "local" else httpx.Client()
    assert anon.get(get["url"]).content == b"a,b\n1,2\n"

    put = c.post(
        "/api/buckets/results/presign",
        json={"key": "in/upload.csv", "method": "PUT", "expires_in": 60},
    ).json()
    assert anon.put(put["url"], content=b"x,y\n").status_code in (200, 201)
    assert c.get("/api/buckets/results/objects/in/upload.csv").content == b"x,y\n"


def test_presign_expiry_is_bounded(service: Service) -> None:
    c = service.client
    c.put("/api/buckets/results/objects/a.txt", content=b"1")
    resp = c.post("/api/buckets/results/presign", json={"key": "a.txt", "expires_in": 3601})
    assert resp.status_code == 422
    assert "3600" in resp.json()["detail"]
    resp = c.post("/api/buckets/results/presign", json={"key": "a.txt", "method": "DELETE"})
    assert resp.status_code == 422
    resp = c.post("/api/buckets/results/presign", json={"key": "missing.txt"})
    assert resp.status_code == 404


def test_tampered_or_expired_local_presigned_url_is_403(tmp_path: Path, nats: NatsServer) -> None:
    # Local backend only: S3 stores check their own signatures.
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client
        anon = TestClient(c.app)
        c.put("/api/buckets/results/objects/secret.txt", content=b"s3cr3t")
        c.put("/api/buckets/results/objects/other.txt", content=b"other")
        url = c.post("/api/buckets/results/presign", json={"key": "secret.txt"}).json()["url"]
        assert anon.get(url).status_code == 200
        assert anon.get(url.replace("secret.txt", "other.txt")).status_code == 403
        assert anon.get(url[:-2] + ("00" if not url.endswith("00") else "11")).status_code == 403
        assert anon.put(url, content=b"overwrite").status_code == 403  # signed for GET only
        assert anon.get(url.split("?")[0]).status_code == 403
        assert anon.head(url).status_code == 200
        expired = svc.runtime.signer.sign("http://testserver", "GET", "results", "secret.txt", -5)
        resp = anon.get(expired)
        assert resp.status_code == 403 and "expired" in resp.json()["detail"]
        assert c.get("/api/buckets/results/objects/secret.txt").content == b"s3cr3t"


# -- versioning, notification rules, encryption: what each backend can do ----------------------
def test_versioning_is_reported_unsupported_on_local(tmp_path: Path, nats: NatsServer) -> None:
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client
        c.put("/api/buckets/datasets/objects/v.txt", content=b"1")
        assert c.get("/api/buckets/datasets/versioning").json() == {
            "supported": False,
            "status": "Unsupported",
            "detail": None,
        }
        resp = c.put("/api/buckets/datasets/versioning", json={"enabled": True})
        assert resp.status_code == 200
        assert resp.json()["supported"] is False and "versions" in resp.json()["detail"]
        resp = c.get("/api/buckets/datasets/versions", params={"key": "v.txt"})
        assert resp.json()["supported"] is False and resp.json()["versions"] == []
        resp = c.post(
            "/api/buckets/datasets/versions/restore", json={"key": "v.txt", "version_id": "x"}
        )
        assert resp.status_code == 200 and resp.json()["supported"] is False
        assert c.get("/api/buckets/datasets/objects/v.txt").content == b"1"


def test_versioning_enable_list_restore_on_s3_seaweedfs(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    with Service(s3_settings(tmp_path, nats, seaweed_s3)) as svc:
        c = svc.client
        assert c.get("/api/buckets/datasets/versioning").json()["status"] == "Off"
        assert c.put("/api/buckets/datasets/versioning", json={"enabled": True}).json() == {
            "supported": True,
            "status": "Enabled",
            "detail": None,
        }
        c.put("/api/buckets/datasets/objects/v.txt", content=b"first")
        c.put("/api/buckets/datasets/objects/v.txt", content=b"second")
        versions = c.get("/api/buckets/datasets/versions", params={"key": "v.txt"}).json()
        assert versions["supported"] is True
        assert [v["size"] for v in versions["versions"]] == [6, 5]
        oldest = versions["versions"][-1]
        assert oldest["is_latest"] is False
        resp = c.post(
            "/api/buckets/datasets/versions/restore",
            json={"key": "v.txt", "version_id": oldest["version_id"]},
        )
        assert resp.status_code == 200, resp.text
        assert c.get("/api/buckets/datasets/objects/v.txt").content == b"first"
        after = c.get("/api/buckets/datasets/versions", params={"key": "v.txt"}).json()
        assert len(after["versions"]) == 3  # restoring adds a version; nothing is lost
        resp = c.post(
            "/api/buckets/datasets/versions/restore", json={"key": "v.txt", "version_id": "nope"}
        )
        assert resp.status_code == 404
        assert (
            c.put("/api/buckets/datasets/versioning", json={"enabled": False}).json()["status"]
            == "Suspended"
        )


def test_notification_rules_round_trip_on_local(tmp_path: Path, nats: NatsServer) -> None:
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client
        assert c.get("/api/buckets/landing/notifications").json()["rules"] == [
            {"events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "prefix": "", "suffix": ""}
        ]
        rules = {"rules": [{"events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": ".csv"}]}
        assert c.put("/api/buckets/results/notifications", json=rules).status_code == 200
        assert c.get("/api/buckets/results/notifications").json()["rules"] == rules["rules"]
        bad = {"rules": [{"events": ["s3:ObjectExploded:*"]}]}
        resp = c.put("/api/buckets/results/notifications", json=bad)
        assert resp.status_code == 422 and "unknown event types" in resp.text
        assert c.get("/api/buckets/results/notifications").json()["rules"] == rules["rules"]
        row = next(b for b in c.get("/api/buckets").json() if b["name"] == "results")
        assert row["notifications"] == {"enabled": True, "rules": 1, "error": None}
        assert c.put("/api/buckets/no-such/notifications", json=rules).status_code == 404


def test_minio_nats_arn_rejected_by_moto_is_a_clear_error_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    # moto, like a MinIO without a NATS target, refuses MinIO's NATS ARN but takes other ARNs
    # (SeaweedFS refuses every notification configuration); the API must say so, change nothing.
    with Service(s3_settings(tmp_path, nats, moto_s3)) as svc:
        rules = {"rules": [{"events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": ""}]}
        resp = svc.client.put("/api/buckets/results/notifications", json=rules)
        assert resp.status_code == 502
        assert "arn:minio:sqs::_:nats" in resp.json()["detail"]
        assert svc.client.get("/api/buckets/results/notifications").json()["rules"] == []


def test_notification_rules_applied_as_queue_configuration_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    # SeaweedFS has no PutBucketNotificationConfiguration; moto stores what we send, so an ARN
    # it accepts shows the exact configuration.
    arn = "arn:aws:sqs:us-east-1:123456789012:lakewire"
    with Service(s3_settings(tmp_path, nats, moto_s3, s3_notification_arn=arn)) as svc:
        # Default buckets are created with the landing rule applied.
        landing = moto_s3.client().get_bucket_notification_configuration(Bucket="landing")
        assert landing["QueueConfigurations"][0]["QueueArn"] == arn
        rules = {
            "rules": [
                {"events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": ".csv"},
                {"events": ["s3:ObjectRemoved:Delete"], "prefix": "", "suffix": ""},
            ]
        }
        assert svc.client.put("/api/buckets/results/notifications", json=rules).status_code == 200
        got = moto_s3.client().get_bucket_notification_configuration(Bucket="results")
        queues = got["QueueConfigurations"]
        assert [q["QueueArn"] for q in queues] == [arn, arn]
        assert queues[0]["Events"] == ["s3:ObjectCreated:*"]
        assert queues[0]["Filter"]["Key"]["FilterRules"] == [
            {"Name": "prefix", "Value": "in/"},
            {"Name": "suffix", "Value": ".csv"},
        ]
        assert "Filter" not in queues[1]
        assert (
            svc.client.get("/api/buckets/results/notifications").json()["rules"] == rules["rules"]
        )


def test_bucket_encryption_is_reported_on_s3_seaweedfs(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    with Service(s3_settings(tmp_path, nats, seaweed_s3)) as svc:
        svc.client.post("/api/buckets", json={"name": "secure"})
        seaweed_s3.client().put_bucket_encryption(
            Bucket="secure",
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        svc.runtime.catalog.forget("secure")
        row = _stats(svc, "secure")
        assert row["encryption"] == {"enabled": True, "algorithm": "AES256", "supported": True}
        assert _stats(svc, "results")["encryption"]["enabled"] is False


def test_file_and_folder_of_the_same_name_is_409_on_local(tmp_path: Path, nats: NatsServer) -> None:
    # S3 keeps both "a" and "a/b"; a folder per bucket cannot, and says so instead of a 500.
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client
        assert c.put("/api/buckets/datasets/objects/a/b.txt", content=b"1").status_code == 201
        resp = c.put("/api/buckets/datasets/objects/a", content=b"2")
        assert resp.status_code == 409 and "is a folder" in resp.json()["detail"]
        resp = c.put("/api/buckets/datasets/objects/a/b.txt/c", content=b"3")
        assert resp.status_code == 409 and "cannot also be a folder" in resp.json()["detail"]
        assert c.get("/api/buckets/datasets/objects/a/b.txt").content == b"1"


def test_openapi_documents_the_api_paths(service: Service) -> None:
    assert TestClient(service.client.app).get("/docs").status_code == 200
    paths = service.client.get("/openapi.json").json()["paths"]
    obj = paths["/api/buckets/{name}/objects/{key}"]
    assert {"put", "get", "head", "delete"} <= set(obj)
    for path in (
        "/api/summary",
        "/api/buckets",
        "/api/buckets/{name}",
        "/api/buckets/{name}/objects",
        "/api/buckets/{name}/rename",
        "/api/buckets/{name}/presign",
        "/api/buckets/{name}/versioning",
        "/api/buckets/{name}/versions",
        "/api/buckets/{name}/versions/restore",
        "/api/buckets/{name}/notifications",
    ):
        assert path in paths, path
    assert not any(p.startswith("/presigned") for p in paths)


def test_deleting_a_versioned_bucket_removes_every_version_on_s3_seaweedfs(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    with Service(s3_settings(tmp_path, nats, seaweed_s3)) as svc:
        c = svc.client
        assert c.post("/api/buckets", json={"name": "kept"}).status_code == 201
        c.put("/api/buckets/kept/versioning", json={"enabled": True})
        for body in (b"one", b"two", b"three"):
            assert c.put("/api/buckets/kept/objects/v.txt", content=body).status_code == 201
        c.put("/api/buckets/kept/objects/gone.txt", content=b"x")
        c.delete("/api/buckets/kept/objects/gone.txt")  # leaves a delete marker
        assert c.delete("/api/buckets/kept", params={"confirm": "kept"}).status_code == 204
        assert c.get("/api/buckets/kept").status_code == 404
        names = [b["Name"] for b in seaweed_s3.client().list_buckets()["Buckets"]]
        assert "kept" not in names


def test_summary_says_disconnected_and_why_while_nats_is_away(
    tmp_path: Path, nats: NatsServer
) -> None:
    """Writes still succeed with NATS down (the outbox keeps their events), but the summary bar
    says DISCONNECTED with the reason until the publisher is connected again."""
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client

        def status() -> dict[str, Any]:
            return c.get("/api/summary").json()

        assert status()["status"] == "CONNECTED"
        nats.stop()
        assert c.put("/api/buckets/landing/objects/w/a.csv", content=b"id\n1\n").status_code == 201
        down = wait_for(
            lambda: (s := status())["status"] == "DISCONNECTED" and s, 30, "DISCONNECTED"
        )
        assert "NATS unreachable" in down["reason"] and "waiting in the outbox" in down["reason"]
        nats.start()
        up = wait_for(lambda: (s := status())["status"] == "CONNECTED" and s, 30, "CONNECTED")
        assert up["reason"] is None
