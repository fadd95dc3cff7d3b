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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

from lakehouse.settings import Settings
from lakehouse.tenants import Tenant, tenant_kms_key

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
    def kms_key_create(self, key: str | None = None) -> str: ...


class MinioStepFailed(RuntimeError):
    """One admin call of a tenant's set-up failed; the message names the step and the object."""


@contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except MinioStepFailed:
        raise
    except Exception as exc:
        raise MinioStepFailed(f"{what}: {exc}") from exc


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
    """``kms``: the store has a KMS that creates keys (MinIO with KES), so each tenant gets its
    SSE-KMS key (``lakehouse.tenants.tenant_kms_key``) when it is created."""

    def __init__(self, admin: AdminClient, *, kms: bool = False) -> None:
        self.admin = admin
        self.kms = kms

    def create(self, tenant: Tenant) -> tuple[str, str]:
        """The tenant's S3 access key and secret key (the secret is shown once, never kept).

        The KMS key comes first: a store that cannot make it refuses the tenant before any user
        exists. A key left by an earlier, half-made attempt is taken as it is (keys are not
        deleted with tenants: objects encrypted with them may outlive the tenant).
        """
        access_key = "LW" + secrets.token_hex(9).upper()  # 20 characters, as MinIO allows
        secret_key = secrets.token_urlsafe(30)
        if self.kms:
            self.ensure_kms_key(tenant.id)
        name = policy_name(tenant.id)
        with _step(f"adding policy {name}"):
            self.admin.policy_add(name, policy=tenant_policy(tenant))
        with _step(f"adding user {access_key}"):
            self.admin.user_add(access_key, secret_key)
        with _step(f"attaching policy {name} to user {access_key}"):
            self.admin.attach_policy([name], user=access_key)
        return access_key, secret_key

    def ensure_kms_key(self, tenant_id: str) -> str:
        key = tenant_kms_key(tenant_id)
        try:
            self.admin.kms_key_create(key)
        except Exception as exc:
            if "already exist" not in str(exc).lower():
                raise MinioStepFailed(f"creating KMS key {key}: {exc}") from exc
        return key

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
    return MinioTenants(admin, kms=settings.minio_kms)
