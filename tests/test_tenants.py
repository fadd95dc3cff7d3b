"""Tenants and access control (issue 14) through the service's HTTP API, on both backends.

Every endpoint is called with another tenant's key, no key, a disabled tenant's key and an
expired key: 401/403, and the store (every object of every bucket, the system bucket's rules
and tenants included) and the notification rules are byte-for-byte what they were before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from lakehouse.routes import SYSTEM_BUCKET
from storage_service.audit import AuditLog
from storage_service.events import BucketEvent
from storage_service.stream import read_after_sync
from tests.helpers import API_KEY, NatsServer, Service, local_settings, wait_for

LIFECYCLE = {"Rules": [{"ID": "x", "Status": "Enabled", "Expiration": {"Days": 30}}]}


@pytest.fixture
def local(tmp_path: Path, nats: NatsServer) -> Iterator[Service]:
    """The service on the local backend only, for rules that do not depend on the store."""
    with Service(local_settings(tmp_path, nats)) as svc:
        yield svc


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


NO_KEY = {"Authorization": ""}
ADMIN = auth(API_KEY)


def create(client: Any, tenant_id: str, **extra: Any) -> str:
    r = client.post("/api/tenants", json={"id": tenant_id, **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def snapshot(svc: Service) -> dict[str, Any]:
    """Everything a call could change: every object of every bucket, and the local rules."""
    store = svc.runtime.store
    state: dict[str, Any] = {}
    for b in store.list_buckets():
        for o in store.iter_objects(b.name):
            state[f"{b.name}/{o.key}"] = o.etag
    rules = svc.runtime.settings.state_dir / "notifications.json"
    state["notifications.json"] = rules.read_text() if rules.exists() else None
    return state


def lifecycle(prefix: str) -> dict[str, Any]:
    rule = {"ID": f"r-{prefix.strip('/')}", "Status": "Enabled", "Filter": {"Prefix": prefix}}
    return {"Rules": [{**rule, "Expiration": {"Days": 30}}]}


# Tenant "bbb" reaching into tenant "aaa"'s data, or doing what only the admin may.
CROSS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/buckets/datasets/objects?prefix=aaa/", {}),
    ("GET", "/api/buckets/datasets/objects/aaa/x.csv", {}),
    ("HEAD", "/api/buckets/datasets/objects/aaa/x.csv", {}),
    ("PUT", "/api/buckets/datasets/objects/aaa/evil.csv", {"content": b"evil"}),
    ("PUT", "/api/buckets/datasets/objects/x.csv", {"content": b"evil"}),
    ("DELETE", "/api/buckets/datasets/objects/aaa/x.csv", {}),
    ("POST", "/api/buckets/datasets/presign", {"json": {"key": "aaa/x.csv"}}),
    ("POST", "/api/buckets/datasets/presign", {"json": {"key": "aaa/new.csv", "method": "PUT"}}),
    ("GET", "/api/buckets/datasets/versions?key=aaa/x.csv", {}),
    (
        "POST",
        "/api/buckets/datasets/versions/restore",
        {"json": {"key": "aaa/x.csv", "version_id": "v1"}},
    ),
    ("PUT", "/api/buckets/datasets/notifications", {"json": {"rules": [{"prefix": "aaa/"}]}}),
    ("PUT", "/api/buckets/datasets/notifications", {"json": {"rules": [{"prefix": ""}]}}),
    ("PUT", "/api/buckets/datasets/lifecycle", {"json": lifecycle("aaa/")}),
    ("PUT", "/api/buckets/datasets/lifecycle", {"json": LIFECYCLE}),
    ("DELETE", "/api/buckets/datasets/uploads?key=aaa/x.csv&upload_id=u1", {}),
    ("GET", "/api/buckets/lake/objects", {}),
    ("GET", f"/api/buckets/{SYSTEM_BUCKET}/objects", {}),
    ("GET", "/api/buckets/lake", {}),
    ("POST", "/api/buckets", {"json": {"name": "b-own"}}),
    ("DELETE", "/api/buckets/datasets?confirm=datasets", {}),
    ("POST", "/api/buckets/datasets/rename", {"json": {"new_name": "datasets-2"}}),
    ("GET", "/api/buckets/datasets/rename", {}),
    ("PUT", "/api/buckets/datasets/versioning", {"json": {"enabled": True}}),
    ("GET", "/api/routes", {}),
    ("PUT", "/api/routes", {"content": b"version: 2\nroutes: []\n"}),
    ("GET", "/api/tenants", {}),
    ("POST", "/api/tenants", {"json": {"id": "evil"}}),
    ("PATCH", "/api/tenants/aaa", {"json": {"scopes": ["datasets"]}}),
    ("POST", "/api/tenants/aaa/keys", {}),
    ("DELETE", "/api/tenants/aaa", {}),
    ("GET", "/metrics", {}),
    ("GET", "/api/audit", {}),
    ("POST", "/api/sql", {"json": {"statement": "SELECT * FROM delta.aaa.orders"}}),
    ("POST", "/api/sql", {"json": {"statement": "SELECT * FROM read_text('/etc/passwd')"}}),
]


def test_every_endpoint_refuses_other_tenants_and_bad_keys(service: Service) -> None:
    c = service.client
    key_a = create(c, "aaa")
    key_b = create(c, "bbb")
    key_off = create(c, "off")
    soon = datetime.now(UTC) + timedelta(hours=1)
    key_old = create(c, "old", expires_at=soon.isoformat())
    for who, key in (("aaa", key_a), ("bbb", key_b)):
        r = c.put(f"/api/buckets/datasets/objects/{who}/x.csv", content=b"1", headers=auth(key))
        assert r.status_code == 201, r.text
    assert c.patch("/api/tenants/off", json={"disabled": True}).status_code == 200
    service.runtime.tenants.clock = lambda: soon + timedelta(seconds=1)
    before = snapshot(service)

    for method, path, extra in CROSS:
        r = c.request(method, path, headers=auth(key_b), **extra)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        for headers, why in (
            (NO_KEY, "missing"),
            (auth(key_off), "disabled"),
            (auth(key_old), "expired"),
            (auth(key_a[:-2] + "xx"), "missing or wrong"),
        ):
            r = c.request(method, path, headers=headers, **extra)
            assert r.status_code == 401, (method, path, why, r.status_code)
            assert method == "HEAD" or why in r.json()["detail"]

    assert snapshot(service) == before
    refused = [e for e in AuditLog(service.runtime.settings.state_dir / "audit.jsonl").read()]
    by_b = [e for e in refused if e["principal"] == "bbb" and e["status"] == 403]
    assert len(by_b) == len(CROSS)
    assert all(e["detail"] for e in by_b if e["method"] != "HEAD")
    assert sum(e["status"] == 401 for e in refused) == 4 * len(CROSS)


def test_tenant_works_inside_its_scope_and_sees_only_its_prefix(service: Service) -> None:
    c = service.client
    key_a = create(c, "team-a", name="Team A")
    key_b = create(c, "team-b")
    a, b = auth(key_a), auth(key_b)
    r = c.put("/api/buckets/landing/objects/team-a/orders/1.csv", content=b"id\n1\n", headers=a)
    assert r.status_code == 201, r.text
    r = c.put("/api/buckets/landing/objects/team-b/o.csv", content=b"x", headers=b)
    assert r.status_code == 201
    assert c.put("/api/buckets/landing/objects/shared.csv", content=b"admin's").status_code == 201

    top = c.get("/api/buckets/landing/objects", headers=a).json()
    assert top["folders"] == ["team-a/"] and top["objects"] == []
    flat = c.get("/api/buckets/landing/objects", params={"delimiter": ""}, headers=a).json()
    assert [o["key"] for o in flat["objects"]] == ["team-a/orders/1.csv"]
    inside = c.get("/api/buckets/landing/objects?prefix=team-a/orders/", headers=a).json()
    assert [o["key"] for o in inside["objects"]] == ["team-a/orders/1.csv"]
    admin_view = c.get("/api/buckets/landing/objects").json()
    assert admin_view["folders"] == ["team-a/", "team-b/"]

    assert c.get("/api/buckets/landing/objects/team-a/orders/1.csv", headers=a).content == (
        b"id\n1\n"
    )
    buckets = {v["name"]: v for v in c.get("/api/buckets", headers=a).json()}
    assert "lake" not in buckets and SYSTEM_BUCKET not in buckets and "landing" in buckets
    assert buckets["landing"]["objects"] == 1 and buckets["landing"]["size"] == 5
    assert buckets["landing"]["routes"] == [] and buckets["landing"]["unrouted"] is None
    assert c.get("/api/summary", headers=a).json()["total_buckets"] == len(buckets)
    me = c.get("/api/whoami", headers=a).json()
    assert me["principal"] == "team-a" and not me["admin"] and me["schema_name"] == "team_a"
    assert "landing/team-a/" in me["scopes"]
    assert c.get("/api/whoami").json()["admin"] is True
    page = c.get("/", headers=NO_KEY)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"

    r = c.delete("/api/buckets/landing/objects/team-a/orders/1.csv", headers=a)
    assert r.status_code == 204
    assert c.get("/api/buckets/landing/objects/team-b/o.csv").status_code == 200


def test_registry_rules_and_key_storage(service: Service) -> None:
    c = service.client
    for bad, status in (("admin", 422), ("system", 422), ("Bad_Id", 422), ("ab", 422)):
        r = c.post("/api/tenants", json={"id": bad})
        assert r.status_code == status, (bad, r.text)
    key = create(c, "acme", scopes=["datasets/acme/", "models"])
    assert c.post("/api/tenants", json={"id": "acme"}).status_code == 409
    r = c.post("/api/tenants", json={"id": "other", "scopes": ["datasets/acme/sub/"]})
    assert r.status_code == 409 and "overlaps" in r.json()["detail"]
    for scope in ("lake", SYSTEM_BUCKET, "datasets/no-slash", "datasets/a//"):
        r = c.post("/api/tenants", json={"id": "other", "scopes": [scope]})
        assert r.status_code == 422, (scope, r.text)

    listed = c.get("/api/tenants").json()
    assert [t["id"] for t in listed] == ["acme"]
    assert "key" not in listed[0] and listed[0]["scopes"] == ["datasets/acme/", "models"]
    raw = b"".join(
        service.runtime.store.get_bytes(SYSTEM_BUCKET, o.key)
        for o in service.runtime.store.iter_objects(SYSTEM_BUCKET, "tenants/")
    )
    secret = key.rsplit(".", 1)[1]
    assert secret.encode() not in raw and b"scrypt$" in raw
    # the whole of an own bucket, and nothing of another bucket
    r = c.put("/api/buckets/models/objects/any/where.bin", content=b"m", headers=auth(key))
    assert r.status_code == 201
    assert c.get("/api/buckets/results/objects", headers=auth(key)).status_code == 403


def test_key_rotation_expiry_disable_and_delete(local: Service) -> None:
    c = local.client
    first = create(c, "rot", expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    path = "/api/buckets/datasets/objects?prefix=rot/"
    assert c.get(path, headers=auth(first)).status_code == 200

    r = c.post("/api/tenants/rot/keys", json={})
    assert r.status_code == 201
    second, second_id = r.json()["key"], r.json()["key_id"]
    assert c.get(path, headers=auth(first)).status_code == 200  # both work during a rotation
    assert c.get(path, headers=auth(second)).status_code == 200
    assert c.post("/api/tenants/rot/keys", json={}).status_code == 409  # two at most
    sse = c.put("/api/buckets/datasets/encryption", json={"algorithm": "SSE-S3"}).json()
    assert sse["supported"] is False and "local backend" in sse["detail"]

    first_id = first.split(".")[2]
    assert c.delete(f"/api/tenants/rot/keys/{first_id}").status_code == 204
    assert c.get(path, headers=auth(first)).status_code == 401
    assert c.get(path, headers=auth(second)).status_code == 200

    past = datetime.now(UTC) - timedelta(seconds=1)
    r = c.post("/api/tenants/rot/keys", json={"expires_at": past.isoformat()})
    assert r.status_code == 422
    later = datetime.now(UTC) + timedelta(days=2)
    local.runtime.tenants.clock = lambda: later  # the first key's day has passed
    third = c.post("/api/tenants/rot/keys", json={}).json()["key"]
    assert c.get(path, headers=auth(third)).status_code == 200
    assert c.get("/api/tenants/rot").json()["keys"][0]["key_id"] == second_id

    assert c.patch("/api/tenants/rot", json={"disabled": True}).status_code == 200
    r = c.get(path, headers=auth(third))
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert c.patch("/api/tenants/rot", json={"disabled": False}).status_code == 200
    assert c.get(path, headers=auth(third)).status_code == 200
    assert c.delete("/api/tenants/rot").status_code == 204
    assert c.get(path, headers=auth(third)).status_code == 401
    assert c.delete("/api/tenants/rot").status_code == 404


def test_presign_only_within_scope_and_short_lived(service: Service) -> None:
    c = service.client
    key = create(c, "pre")
    h = auth(key)
    r = c.put("/api/buckets/datasets/objects/pre/f.txt", content=b"hello", headers=h)
    assert r.status_code == 201
    r = c.post(
        "/api/buckets/datasets/presign", json={"key": "pre/f.txt", "expires_in": 3600}, headers=h
    )
    assert r.status_code == 422 and "900" in r.json()["detail"]
    r = c.post(
        "/api/buckets/datasets/presign", json={"key": "pre/f.txt", "expires_in": 900}, headers=h
    )
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    query = parse_qs(urlsplit(url).query)
    if service.kind == "s3":
        # signed by the store with the service's credentials: no revocation, a short life
        assert query["X-Amz-Expires"] == ["900"]
        assert httpx.get(url).content == b"hello"
        return
    assert query["X-Lakewire-Tenant"] == ["pre"]
    link = url.split("/presigned/", 1)[1]
    assert c.get(f"/presigned/{link}", headers=NO_KEY).content == b"hello"
    tampered = link.replace("X-Lakewire-Tenant=pre", "X-Lakewire-Tenant=pro")
    assert c.get(f"/presigned/{tampered}", headers=NO_KEY).status_code == 403
    # re-scoped: the link no longer falls inside the tenant's scope
    assert c.patch("/api/tenants/pre", json={"scopes": ["results/pre/"]}).status_code == 200
    assert c.get(f"/presigned/{link}", headers=NO_KEY).status_code == 403
    assert c.patch("/api/tenants/pre", json={"scopes": ["datasets/pre/"]}).status_code == 200
    assert c.get(f"/presigned/{link}", headers=NO_KEY).status_code == 200
    assert c.patch("/api/tenants/pre", json={"disabled": True}).status_code == 200
    r = c.get(f"/presigned/{link}", headers=NO_KEY)
    assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_rules_tenants_keep_their_own_share(local: Service) -> None:
    """Local backend: SeaweedFS keeps no bucket notification configuration."""
    c = local.client
    a, b = auth(create(c, "rra")), auth(create(c, "rrb"))
    notifications = "/api/buckets/datasets/notifications"
    mine = {"rules": [{"prefix": "rra/in/", "suffix": ".csv"}]}
    assert c.put(notifications, json=mine, headers=a).status_code == 200
    r = c.put(notifications, json={"rules": [{"prefix": "rrb/"}]}, headers=b)
    assert r.status_code == 200
    assert [r["prefix"] for r in c.get(notifications, headers=a).json()["rules"]] == ["rra/in/"]
    everything = c.get(notifications).json()["rules"]
    assert sorted(r["prefix"] for r in everything) == ["rra/in/", "rrb/"]

    rules = "/api/buckets/datasets/lifecycle"
    assert c.put(rules, json=lifecycle("rra/"), headers=a).status_code == 200
    assert c.put(rules, json=lifecycle("rrb/"), headers=b).status_code == 200
    assert [r["ID"] for r in c.get(rules, headers=a).json()["Rules"]] == ["r-rra"]
    assert len(c.get(rules).json()["Rules"]) == 2
    assert c.delete(rules, headers=a).status_code == 204
    assert [r["ID"] for r in c.get(rules).json()["Rules"]] == ["r-rrb"]
    assert c.get(rules, headers=a).status_code == 404


def test_writes_carry_the_principal_and_the_audit_has_no_keys(
    local: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Local backend: there the service emits the events itself (on S3 the store does)."""
    caplog.set_level("INFO")
    c = local.client
    key = create(c, "who")
    r = c.put("/api/buckets/landing/objects/who/a.csv", content=b"a", headers=auth(key))
    assert r.status_code == 201
    assert c.get("/api/buckets/landing/objects/x.csv", headers=auth(key)).status_code == 403
    settings = local.runtime.settings
    entries = AuditLog(settings.state_dir / "audit.jsonl").read()
    put = next(e for e in entries if e["method"] == "PUT")
    assert put["principal"] == "who" and put["status"] == 201 and put["key_id"] == key.split(".")[2]
    assert any(e["status"] == 403 and e["principal"] == "who" for e in entries)
    newest = c.get("/api/audit", params={"principal": "who", "limit": 1}).json()
    assert newest[0]["status"] == 403 and newest[0]["method"] == "GET"
    assert c.get("/api/audit", headers=auth(key)).status_code == 403
    text = (settings.state_dir / "audit.jsonl").read_text() + caplog.text
    assert key not in text and key.rsplit(".", 1)[1] not in text and API_KEY not in text

    def published() -> BucketEvent | None:
        events = read_after_sync(settings, 0, 1000, 2).events
        return next((e for e in events if e.key == "who/a.csv"), None)

    event = wait_for(published, 30, "the upload's event")
    record = json.loads(event.to_message())["Records"][0]
    assert record["userIdentity"]["principalId"] == "who" and event.principal == "who"
