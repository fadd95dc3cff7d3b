"""Tenants as MinIO users: one user and one policy per tenant, limited to the tenant's scope.

The API enforces scope for everything that goes through it; this is for direct S3 access with
the tenant's own S3 credentials, which only the store itself can limit. Managing users needs
MinIO admin rights (``LAKEWIRE_MINIO_ADMIN_*``): DECISIONS keeps that credential with the
tenants endpoint alone, never in the storage service's everyday store client.

What moto cannot check (MinIO's admin API, policy enforcement) is tested as documents and as the
sequence of admin calls; enforcement by a real MinIO is left to ``make compose-smoke``.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol
from urllib.parse import urlsplit

from lakehouse.settings import Settings
from lakehouse.tenants import Tenant

OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUCKET_ACTIONS = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]


class AdminClient(Protocol):
    """The part of ``minio.MinioAdmin`` used here."""

    def policy_add(
        self, policy_name: str, policy_file: Any = None, policy: dict[str, Any] | None = None
    ) -> str: ...
    def policy_remove(self, policy_name: str) -> str: ...
    def user_add(self, access_key: str, secret_key: str) -> str: ...
    def user_remove(self, access_key: str) -> str: ...
    def user_disable(self, access_key: str) -> str: ...
    def user_enable(self, access_key: str) -> str: ...
    def attach_policy(
        self, policies: list[str], user: str | None = None, group: str | None = None
    ) -> str: ...


def policy_name(tenant_id: str) -> str:
    return f"lakewire-tenant-{tenant_id}"


def tenant_policy(tenant: Tenant) -> dict[str, Any]:
    """An IAM policy document that allows the tenant's scope and nothing else: objects under
    each prefix, and listings of a shared bucket only below the tenant's prefix."""
    statements: list[dict[str, Any]] = []
    for grant in tenant.grants():
        bucket_arn = f"arn:aws:s3:::{grant.bucket}"
        listing: dict[str, Any] = {
            "Effect": "Allow",
            "Action": BUCKET_ACTIONS,
            "Resource": [bucket_arn],
        }
        if grant.prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [grant.prefix, f"{grant.prefix}*"]}}
        statements.append(listing)
        statements.append(
            {
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": [f"{bucket_arn}/{grant.prefix}*"],
            }
        )
    statements.append({"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": ["*"]})
    return {"Version": "2012-10-17", "Statement": statements}


class MinioTenants:
    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin

    def create(self, tenant: Tenant) -> tuple[str, str]:
        """The tenant's S3 access key and secret key (the secret is shown once, never kept)."""
        access_key = "LW" + secrets.token_hex(9).upper()  # 20 characters, as MinIO allows
        secret_key = secrets.token_urlsafe(30)
        self.admin.policy_add(policy_name(tenant.id), policy=tenant_policy(tenant))
        self.admin.user_add(access_key, secret_key)
        self.admin.attach_policy([policy_name(tenant.id)], user=access_key)
        return access_key, secret_key

    def rescope(self, tenant: Tenant) -> None:
        self.admin.policy_add(policy_name(tenant.id), policy=tenant_policy(tenant))

    def set_disabled(self, access_key: str, disabled: bool) -> None:
        if disabled:
            self.admin.user_disable(access_key)
        else:
            self.admin.user_enable(access_key)

    def remove(self, tenant_id: str, access_key: str) -> None:
        self.admin.user_remove(access_key)
        self.admin.policy_remove(policy_name(tenant_id))


def open_minio_tenants(settings: Settings) -> MinioTenants | None:
    """Only with an S3 backend and the MinIO admin credential configured."""
    ak, sk = settings.minio_admin_access_key, settings.minio_admin_secret_key
    if settings.storage_backend != "s3" or not settings.s3_endpoint or ak is None or sk is None:
        return None
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    url = urlsplit(settings.s3_endpoint)
    admin = MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(ak.get_secret_value(), sk.get_secret_value()),
        region=settings.s3_region,
        secure=url.scheme == "https",
    )
    return MinioTenants(admin)
