"""A tenant's MinIO user and policy, and its SSE-KMS key (DECISIONS "A real S3 server in
tests": moto, because no S3 server here runs MinIO's admin API, enforces IAM policies or keeps
bucket encryption).

What is checked: the policy document is valid IAM (moto's validator) and, evaluated by moto's
IAM policy engine, allows the tenant's objects and nothing else; and the admin calls the tenants
API makes, in order, for create, re-scope, disable, enable and delete. That a real MinIO
enforces the policy is left to ``make compose-smoke``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from lakehouse.settings import Settings
from lakehouse.tenants import Tenant
from storage_service.minio_users import (
    MinioTenants,
    open_minio_tenants,
    policy_name,
    tenant_policy,
)
from tests.helpers import NatsServer, Service, local_settings, s3_settings
from tests.s3servers import MotoServer


def allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    result = IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)
    return result == PermissionResult.PERMITTED


def test_policy_allows_the_scope_and_nothing_else() -> None:
    tenant = Tenant(id="acme", name="ACME", scopes=["datasets/acme/", "models"], created="now")
    policy = tenant_policy(tenant)
    IAMPolicyDocumentValidator(json.dumps(policy)).validate()  # raises on invalid IAM

    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::datasets/acme/x/y.csv")
    assert allowed(policy, "s3:PutObject", "arn:aws:s3:::datasets/acme/new.csv")
    assert allowed(policy, "s3:DeleteObject", "arn:aws:s3:::models/any/where.bin")
    for action, resource in (
        ("s3:GetObject", "arn:aws:s3:::datasets/other/x.csv"),
        ("s3:GetObject", "arn:aws:s3:::datasets/acme-evil/x.csv"),
        ("s3:PutObject", "arn:aws:s3:::datasets/x.csv"),
        ("s3:GetObject", "arn:aws:s3:::lake/acme/t/part.parquet"),
        ("s3:GetObject", "arn:aws:s3:::lakewire-system/tenants/acme.json"),
        ("s3:DeleteBucket", "arn:aws:s3:::models"),
        ("s3:PutBucketPolicy", "arn:aws:s3:::models"),
        ("s3:CreateBucket", "arn:aws:s3:::acme-new"),
    ):
        assert not allowed(policy, action, resource), (action, resource)
    # A shared bucket is listed only below the tenant's prefix (the condition moto cannot
    # evaluate, so the document itself is checked).
    (shared,) = [s for s in policy["Statement"] if s["Resource"] == ["arn:aws:s3:::datasets"]]
    assert shared["Condition"] == {"StringLike": {"s3:prefix": ["acme/", "acme/*"]}}
    (own,) = [s for s in policy["Statement"] if s["Resource"] == ["arn:aws:s3:::models"]]
    assert "Condition" not in own


class RecordingAdmin:
    """Stands in for MinIO's admin API, which no server here implements: records the calls."""

    def __init__(self, kms_error: str | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.kms_error = kms_error  # what MinIO answers to a key create, if it refuses

    def kms_key_create(self, key: str | None = None) -> str:
        self.calls.append(("kms_key_create", key))
        if self.kms_error is not None:
            raise RuntimeError(self.kms_error)
        return ""

    def policy_add(
        self, policy_name: str, policy_file: Any = None, policy: dict[str, Any] | None = None
    ) -> str:
        self.calls.append(("policy_add", (policy_name, policy)))
        return ""

    def policy_remove(self, policy_name: str) -> str:
        self.calls.append(("policy_remove", policy_name))
        return ""

    def user_add(self, access_key: str, secret_key: str) -> str:
        self.calls.append(("user_add", access_key))
        return ""

    def user_remove(self, access_key: str) -> str:
        self.calls.append(("user_remove", access_key))
        return ""

    def user_disable(self, access_key: str) -> str:
        self.calls.append(("user_disable", access_key))
        return ""

    def user_enable(self, access_key: str) -> str:
        self.calls.append(("user_enable", access_key))
        return ""

    def attach_policy(
        self, policies: list[str], user: str | None = None, group: str | None = None
    ) -> str:
        self.calls.append(("attach_policy", (policies, user)))
        return ""


@pytest.fixture
def with_minio(tmp_path: Path, nats: NatsServer) -> Iterator[tuple[Service, RecordingAdmin]]:
    admin = RecordingAdmin()
    with Service(local_settings(tmp_path, nats)) as svc:
        svc.runtime.minio_users = MinioTenants(admin)
        yield svc, admin


def test_tenants_api_makes_the_minio_calls_in_order(
    with_minio: tuple[Service, RecordingAdmin],
) -> None:
    svc, admin = with_minio
    c = svc.client
    made = c.post("/api/tenants", json={"id": "acme", "scopes": ["datasets/acme/"]}).json()
    ak, secret = made["s3_access_key"], made["s3_secret_key"]
    assert ak and secret and len(ak) == 20
    assert secret not in c.get("/api/tenants/acme").text
    assert c.get("/api/tenants/acme").json()["s3_access_key"] == ak
    name = policy_name("acme")
    assert [call for call, _ in admin.calls] == ["policy_add", "user_add", "attach_policy"]
    assert admin.calls[0][1][1]["Statement"][1]["Resource"] == ["arn:aws:s3:::datasets/acme/*"]
    assert admin.calls[1:] == [("user_add", ak), ("attach_policy", ([name], ak))]

    admin.calls.clear()
    assert c.patch("/api/tenants/acme", json={"scopes": ["results/acme/"]}).status_code == 200
    assert c.patch("/api/tenants/acme", json={"disabled": True}).status_code == 200
    assert c.patch("/api/tenants/acme", json={"disabled": False}).status_code == 200
    assert c.delete("/api/tenants/acme").status_code == 204
    rescoped = admin.calls[0][1][1]["Statement"][1]["Resource"]
    assert rescoped == ["arn:aws:s3:::results/acme/*"]
    assert [call for call, _ in admin.calls] == [
        "policy_add",
        "user_disable",
        "user_enable",
        "user_remove",
        "policy_remove",
    ]


def test_bucket_default_encryption_with_a_tenants_kms_key(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    """moto keeps bucket encryption configuration; SeaweedFS has none."""
    with Service(s3_settings(tmp_path, nats, moto_s3)) as svc:
        c = svc.client
        key = c.post("/api/tenants", json={"id": "acme"}).json()["key"]
        path = "/api/buckets/datasets/encryption"
        body = {"algorithm": "SSE-KMS", "tenant": "acme"}
        assert c.put(path, json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 403
        r = c.put(path, json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "enabled": True,
            "algorithm": "aws:kms",
            "supported": True,
            "detail": None,
        }
        config = moto_s3.client().get_bucket_encryption(Bucket="datasets")
        (rule,) = config["ServerSideEncryptionConfiguration"]["Rules"]
        assert (
            rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == "lakewire-tenant-acme"
        )
        card = next(b for b in c.get("/api/buckets").json() if b["name"] == "datasets")
        assert card["encryption"]["algorithm"] == "aws:kms"  # the bucket card shows it

        assert c.put(path, json={"algorithm": "SSE-S3"}).json()["algorithm"] == "AES256"
        assert c.put(path, json={"algorithm": "SSE-KMS"}).status_code == 422
        assert c.put(path, json={"algorithm": "SSE-KMS", "tenant": "nobody"}).status_code == 404
        assert c.put(path, json={"algorithm": "none"}).json()["enabled"] is False


@pytest.mark.parametrize("answer", [None, "key with name 'lakewire-tenant-acme' already exists"])
def test_with_a_kms_the_tenants_key_is_created_first(
    tmp_path: Path, nats: NatsServer, answer: str | None
) -> None:
    """A key left by an earlier, half-made attempt is taken as it is."""
    admin = RecordingAdmin(kms_error=answer)
    with Service(local_settings(tmp_path, nats)) as svc:
        svc.runtime.minio_users = MinioTenants(admin, kms=True)
        made = svc.client.post("/api/tenants", json={"id": "acme"})
        assert made.status_code == 201, made.text
    assert [call for call, _ in admin.calls] == [
        "kms_key_create",
        "policy_add",
        "user_add",
        "attach_policy",
    ]
    assert admin.calls[0] == ("kms_key_create", "lakewire-tenant-acme")


def test_a_kms_that_refuses_the_key_refuses_the_tenant_and_says_why(
    tmp_path: Path, nats: NatsServer
) -> None:
    admin = RecordingAdmin(kms_error="KMS is not configured")
    with Service(local_settings(tmp_path, nats)) as svc:
        svc.runtime.minio_users = MinioTenants(admin, kms=True)
        r = svc.client.post("/api/tenants", json={"id": "acme"})
        assert r.status_code == 502
        detail = r.json()["detail"]
        assert "creating KMS key lakewire-tenant-acme: KMS is not configured" in detail
        assert "not created" in detail
        assert svc.client.get("/api/tenants/acme").status_code == 404
    assert admin.calls == [("kms_key_create", "lakewire-tenant-acme")]  # no user was made


def test_the_kms_step_is_a_setting_off_by_default(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "storage_backend": "s3",
        "s3_endpoint": "http://minio.example:9000",
        "minio_admin_access_key": "admin-user",
        "minio_admin_secret_key": "admin-secret-value",
    }
    default = open_minio_tenants(Settings(**base))
    with_kms = open_minio_tenants(Settings(**base, minio_kms=True))
    assert default is not None and default.kms is False
    assert with_kms is not None and with_kms.kms is True
    assert open_minio_tenants(Settings(data_dir=tmp_path, minio_kms=True)) is None  # local store
